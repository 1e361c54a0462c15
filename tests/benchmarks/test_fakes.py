"""The scripted providers: usable from YAML, seeded delay distributions."""

from __future__ import annotations

import random
import statistics

import pytest

import presence.benchmarks.fakes  # noqa: F401  (registers the scripted providers)
from presence.benchmarks.fakes import (
    NormalDelay,
    ScriptedLLMService,
    ScriptedTTSService,
    UniformDelay,
    sample_delay,
)
from presence.framework.builder import build_stage, make_context
from presence.framework.config import load_pipeline
from presence.framework.errors import ConfigError

SCRIPTED = "benchmarks/latency/scripted.yaml"


def test_distributions_are_seeded_and_centred():
    spec = NormalDelay(dist="normal", mean=300, std=30)
    a = [sample_delay(spec, random.Random(7)) for _ in range(3)]
    b = [sample_delay(spec, random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    draws = [sample_delay(spec, rng) for _ in range(2000)]
    assert statistics.mean(draws) / 300 == pytest.approx(1.0, abs=0.02)
    uniform = [
        sample_delay(UniformDelay(dist="uniform", low=100, high=200), rng) for _ in range(500)
    ]
    assert 100 <= min(uniform) and max(uniform) <= 200


def test_yaml_builds_the_fakes_with_distributions(repo):
    loaded = load_pipeline(
        repo / SCRIPTED,
        ["stages.llm.ttft_ms={dist: normal, mean: 250, std: 10}", "stages.tts.ttfb_ms=120"],
    )
    ctx = make_context(loaded)
    llm = build_stage(loaded.stages["llm"], ctx)
    tts = build_stage(loaded.stages["tts"], ctx)
    assert isinstance(llm, ScriptedLLMService) and isinstance(tts, ScriptedTTSService)
    assert loaded.stages["llm"].params.ttft_ms.mean == 250


def test_wrong_distribution_is_a_config_error(repo):
    with pytest.raises(ConfigError, match="ttft_ms"):
        load_pipeline(repo / SCRIPTED, ["stages.llm.ttft_ms={dist: poisson, mean: 3}"])
