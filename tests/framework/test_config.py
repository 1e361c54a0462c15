"""Pipeline files: valid ones load, and each class of mistake names the file, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from presence.framework.config import load_pipeline
from presence.framework.errors import ConfigError, MissingSecretError


def write(tmp_path: Path, repo: Path, stages: dict | None = None, **top) -> Path:
    data = {
        "name": "t",
        "persona": str(repo / "pipelines/personas/guide/persona.yaml"),
        "transport": {"kind": "webrtc"},
        "stages": stages
        or {
            "stt": {"provider": "pocketsphinx"},
            "llm": {"provider": "knowledge-base"},
            "tts": {"provider": "espeak"},
        },
        **top,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_local_pipeline_loads_with_defaults(repo):
    loaded = load_pipeline(repo / "pipelines/local.yaml")
    assert loaded.persona.name
    assert loaded.persona.knowledge_files(), "default persona must ship a knowledge base"
    assert loaded.persona.replica is not None and loaded.persona.replica.is_file()
    assert {s: c.provider.name for s, c in loaded.stages.items()}["stt"] == "whisper"
    assert set(loaded.stages) >= {"vad", "turn", "stt", "llm", "tts", "renderer"}


def test_unknown_provider_names_field_and_allowed_values(tmp_path, repo):
    path = write(
        tmp_path,
        repo,
        {
            "stt": {"provider": "whispr"},
            "llm": {"provider": "knowledge-base"},
            "tts": {"provider": "espeak"},
        },
    )
    with pytest.raises(ConfigError) as err:
        load_pipeline(path)
    msg = str(err.value)
    assert str(path) in msg and "stages.stt.provider" in msg
    assert "whispr" in msg and "pocketsphinx" in msg


def test_unknown_param_key_is_named(tmp_path, repo):
    path = write(
        tmp_path,
        repo,
        {
            "stt": {"provider": "pocketsphinx"},
            "llm": {"provider": "knowledge-base"},
            "tts": {"provider": "espeak", "colour": "blue"},
        },
    )
    with pytest.raises(ConfigError, match=r"stages\.tts\.colour.*unknown key 'colour'"):
        load_pipeline(path)


def test_wrong_type_is_named(tmp_path, repo):
    path = write(
        tmp_path,
        repo,
        {
            "vad": {"provider": "silero", "stop_secs": "soon"},
            "stt": {"provider": "pocketsphinx"},
            "llm": {"provider": "knowledge-base"},
            "tts": {"provider": "espeak"},
        },
    )
    with pytest.raises(ConfigError, match=r"stages\.vad\.stop_secs.*'soon'"):
        load_pipeline(path)


def test_missing_secret_names_the_variable(tmp_path, repo, monkeypatch):
    monkeypatch.delenv("PRESENCE_TEST_VOICE", raising=False)
    path = write(
        tmp_path,
        repo,
        {
            "stt": {"provider": "pocketsphinx"},
            "llm": {"provider": "knowledge-base"},
            "tts": {"provider": "espeak", "voice": "${PRESENCE_TEST_VOICE}"},
        },
    )
    with pytest.raises(MissingSecretError) as err:
        load_pipeline(path)
    assert "PRESENCE_TEST_VOICE" in str(err.value) and "stages.tts.voice" in str(err.value)
    monkeypatch.setenv("PRESENCE_TEST_VOICE", "en-us")
    assert load_pipeline(path).stages["tts"].params.voice == "en-us"


def test_env_default_is_used_when_unset(tmp_path, repo, monkeypatch):
    monkeypatch.delenv("PRESENCE_TEST_VOICE", raising=False)
    path = write(
        tmp_path,
        repo,
        {
            "stt": {"provider": "pocketsphinx"},
            "llm": {"provider": "knowledge-base"},
            "tts": {"provider": "espeak", "voice": "${PRESENCE_TEST_VOICE:-en-us}"},
        },
    )
    assert load_pipeline(path).stages["tts"].params.voice == "en-us"


def test_malformed_yaml_gives_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nstages: {stt: [\n")
    with pytest.raises(ConfigError, match=r"malformed YAML at line \d+"):
        load_pipeline(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_pipeline(tmp_path / "nope.yaml")


def test_unknown_stage_and_top_level_key(tmp_path, repo):
    stages = {
        "stt": {"provider": "pocketsphinx"},
        "llm": {"provider": "knowledge-base"},
        "tts": {"provider": "espeak"},
        "lipsync": {"provider": "warp"},
    }
    with pytest.raises(ConfigError, match=r"stages\.lipsync.*stages are: vad, turn"):
        load_pipeline(write(tmp_path, repo, stages))
    with pytest.raises(ConfigError, match=r"unknown key 'colour'"):
        load_pipeline(write(tmp_path, repo, colour="red"))


def test_missing_required_stage_lists_providers(tmp_path, repo):
    path = write(
        tmp_path, repo, {"stt": {"provider": "pocketsphinx"}, "tts": {"provider": "espeak"}}
    )
    with pytest.raises(ConfigError, match=r"stages\.llm.*knowledge-base"):
        load_pipeline(path)


def test_missing_persona_file(tmp_path, repo):
    path = write(tmp_path, repo, persona="nowhere/persona.yaml")
    with pytest.raises(ConfigError, match=r"persona.*not found"):
        load_pipeline(path)


def test_set_override_is_validated_like_the_file(repo):
    local = repo / "pipelines/local.yaml"
    loaded = load_pipeline(
        local, ["stages.turn={provider: speech-timeout, user_speech_timeout: 0.4}"]
    )
    assert loaded.stages["turn"].provider.name == "speech-timeout"
    assert loaded.stages["turn"].params.user_speech_timeout == 0.4
    # swapping only the provider keeps the old provider's keys, which the new one rejects by name
    with pytest.raises(ConfigError, match=r"stages\.turn\.stop_secs.*unknown key"):
        load_pipeline(local, ["stages.turn.provider=speech-timeout"])
    loaded = load_pipeline(local, ["stages.vad.stop_secs=0.5"])
    assert loaded.stages["vad"].params.stop_secs == 0.5
    with pytest.raises(ConfigError, match=r"stages\.vad\.stop_secs"):
        load_pipeline(local, ["stages.vad.stop_secs=later"])
    with pytest.raises(ConfigError, match="PATH=VALUE"):
        load_pipeline(local, ["stages.vad.stop_secs"])
    with pytest.raises(ConfigError, match="unknown provider 'nope'"):
        load_pipeline(local, ["stages.tts.provider=nope"])


def _with_llm(tmp_path, repo, llm: dict) -> Path:
    stages = {"stt": {"provider": "pocketsphinx"}, "llm": llm, "tts": {"provider": "espeak"}}
    return write(tmp_path, repo, stages)


def test_recover_after_s_goes_beside_a_fallback_list(tmp_path, repo):
    backup = [{"provider": "knowledge-base"}]
    llm = {"provider": "knowledge-base", "fallback": backup, "recover_after_s": 30}
    assert load_pipeline(_with_llm(tmp_path, repo, llm)).stages["llm"].recover_after_s == 30.0
    llm["recover_after_s"] = "never"
    assert load_pipeline(_with_llm(tmp_path, repo, llm)).stages["llm"].recover_after_s == float(
        "inf"
    )
    llm["recover_after_s"] = 0  # back to the primary at the very next turn, not "never"
    assert load_pipeline(_with_llm(tmp_path, repo, llm)).stages["llm"].recover_after_s == 0.0
    alone = {"provider": "knowledge-base", "recover_after_s": 30}
    with pytest.raises(ConfigError, match=r"stages\.llm\.recover_after_s.*beside a fallback"):
        load_pipeline(_with_llm(tmp_path, repo, alone))
    llm["recover_after_s"] = -1
    with pytest.raises(ConfigError, match=r"recover_after_s.*a number ≥ 0\) or 'never', got -1"):
        load_pipeline(_with_llm(tmp_path, repo, llm))


@pytest.mark.parametrize(
    ("floor", "says"),
    [({"grace_s": 0.35, "doubt_s": 0.2}, "doubt_s"), ("maybe", "valid dictionary")],
)
def test_an_error_inside_a_union_names_the_key_in_the_file_not_pydantics_member(
    tmp_path, repo, floor, says
):
    stages = {
        "turn": {"provider": "smart-turn", "floor": floor},
        "stt": {"provider": "pocketsphinx"},
        "llm": {"provider": "knowledge-base"},
        "tts": {"provider": "espeak"},
    }
    with pytest.raises(ConfigError, match=says) as err:
        load_pipeline(write(tmp_path, repo, stages))
    assert err.value.field == "stages.turn.floor"
