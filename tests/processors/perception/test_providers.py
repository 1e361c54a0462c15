"""Registry entries and the describer's error mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes.anthropic_vision import FakeAnthropicVision
from pydantic import ValidationError

from presence.framework import registry
from presence.framework.errors import MissingSecretError, ProviderError, ProviderUnavailable
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext
from presence.processors.perception.engines.describer import AnthropicDescriber
from presence.processors.perception.processor import PerceptionProcessor


def ctx(**kwargs) -> BuildContext:
    return BuildContext(persona=Persona(), base_dir=Path("."), **kwargs)


def build(name: str, raw: dict, **ctx_kwargs):
    provider = registry.get("perception", name)
    assert provider is not None
    return provider.factory(provider.params.model_validate(raw), ctx(**ctx_kwargs))


def test_opencv_builds_a_processor_and_off_builds_nothing():
    processor = build(
        "opencv",
        {"every_ms": 100, "triggers": [{"when": "looking_away", "for_s": 5, "say": "Hi?"}]},
    )
    assert isinstance(processor, PerceptionProcessor)
    assert processor.analysis()["every_ms"] == 100
    assert build("off", {}) is None
    assert {"opencv", "anthropic", "off"} <= set(registry.provider_names("perception"))


@pytest.mark.parametrize(
    "trigger, message",
    [
        ({"when": "dancing", "say": "x"}, "when must be one of"),
        ({"when": "looking_away", "say": "x", "ask": "y"}, "exactly one of say"),
        ({"when": "nod", "for_s": 2, "say": "x"}, "instantaneous"),
        ({"when": "looking_away", "say": "x", "after": 5}, "Extra inputs"),
    ],
)
def test_bad_triggers_are_config_errors_that_say_what_to_change(trigger, message):
    provider = registry.get("perception", "opencv")
    with pytest.raises(ValidationError, match=message):
        provider.params.model_validate({"triggers": [trigger]})


def test_anthropic_without_a_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingSecretError, match="ANTHROPIC_API_KEY"):
        build("anthropic", {})


def test_anthropic_builds_with_describer_settings():
    processor = build(
        "anthropic",
        {"describer": {"api_key": "k", "base_url": "http://127.0.0.1:9", "interval_s": 5}},
    )
    assert processor.analysis()["engine"] == "opencv+anthropic"


def test_fast_file_runs_count_time_in_camera_frames():
    processor = build("opencv", {}, fast=True, extras={"camera_fps": 30})
    assert processor._media_fps == 30.0


@pytest.mark.parametrize("status, error", [(401, ProviderError), (503, ProviderUnavailable)])
async def test_describer_maps_http_failures_to_presence_errors(status, error):
    with FakeAnthropicVision(status=status) as fake:
        describer = AnthropicDescriber(api_key="bad", model="m", base_url=fake.url)
        with pytest.raises(error):
            await describer.describe(np.zeros((48, 64, 3), np.uint8))
        await describer.close()
