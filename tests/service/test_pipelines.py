"""Persona layers become overrides; they may not name code to import (they come from API clients)."""

from __future__ import annotations

import pytest

from presence.framework.errors import ConfigError
from presence.service.pipelines import layer_overrides

pytestmark = pytest.mark.background


def test_layers_become_stage_overrides():
    out = layer_overrides({"tts": {"provider": "espeak"}, "llm": {"model": "m"}})
    assert out == ['stages.llm.model="m"', 'stages.tts={"provider": "espeak"}']


@pytest.mark.parametrize(
    ("layers", "field"),
    [
        ({"llm": {"provider": "os:system", "command": "true"}}, "layers.llm.provider"),
        (
            {"llm": {"fallback": [{"provider": "knowledge-base"}, {"provider": "os:system"}]}},
            "layers.llm.fallback.1.provider",
        ),
        (
            {"conversational_flow": {"turn": {"provider": "a.b:c"}}},
            "layers.conversational_flow.turn.provider",
        ),
    ],
)
def test_an_import_path_in_a_layer_is_refused(layers, field):
    with pytest.raises(ConfigError, match="not import paths like") as err:
        layer_overrides(layers)
    assert err.value.field == field
