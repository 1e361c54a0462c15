"""Tavus drop-in compatibility: requests from Tavus's docs replay, and their fields take effect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from helpers.service import KEY_A, PipecatLauncher, make_settings
from loguru import logger

from presence.service.app import create_app
from presence.service.db import ReplicaRow, new_id
from presence.service.settings import owner_of
from presence.service.tavus import base_providers, translate_layers

pytestmark = pytest.mark.background

REPO = Path(__file__).resolve().parents[2]
REPLAY = Path(__file__).parent / "data" / "tavus_requests.yaml"
PORTRAIT = REPO / "pipelines" / "personas" / "guide" / "replica.png"
LOCAL = base_providers(REPO / "pipelines" / "local.yaml")


@pytest.fixture
def launcher():
    return PipecatLauncher(join=False)


@pytest.fixture
def tavus_client(tmp_path, launcher, monkeypatch):
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    app = create_app(make_settings(tmp_path, max_sessions=10), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        rid = new_id("r")
        with app.state.sessions.begin() as db:
            db.add(
                ReplicaRow(id=rid, owner=owner_of(KEY_A), replica_name="Stock", status="ready",
                           progress=1.0, source_path=str(PORTRAIT))
            )  # fmt: skip
        client.replica_id = rid
        yield client


def _fill(value: Any, saved: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name in sorted(saved, key=len, reverse=True):
            value = value.replace(f"${name}", saved[name])
        return value
    if isinstance(value, list):
        return [_fill(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, saved) for k, v in value.items()}
    return value


def test_requests_from_tavus_docs_replay_with_their_documented_answers(tavus_client):
    saved = {"replica": tavus_client.replica_id}
    for case in yaml.safe_load(REPLAY.read_text()):
        name = case["name"]
        kwargs = {"json": _fill(case["body"], saved)} if "body" in case else {}
        answer = tavus_client.request(case["method"], _fill(case["path"], saved), **kwargs)
        assert answer.status_code == case["status"], (name, answer.text)
        body = answer.json() if answer.content else {}
        for key, field in (case.get("save") or {}).items():
            saved[key] = body[field]
        warnings = body.get("warnings", []) if isinstance(body, dict) else []
        for expected in case.get("warnings", []):
            assert any(expected in w for w in warnings), (name, expected, warnings)
        if case.get("no_warnings"):
            assert warnings == [], (name, warnings)
        for field, expected in _fill(case.get("fields") or {}, saved).items():
            assert body[field] == expected, (name, field, body[field])
        if "error_field" in case:
            locs = [e["loc"] for e in body["detail"]]
            assert any(case["error_field"] in map(str, loc) for loc in locs), (name, locs)
        if "page" in case:
            assert len(body["data"]) == case["page"]["size"], (name, body)
            assert body["total_count"] >= case["page"]["total_at_least"], (name, body)


def _create(client: TestClient, layers: dict[str, Any], **fields) -> dict[str, Any]:
    answer = client.post(
        "/v2/personas", json={"persona_name": "T", "system_prompt": "x", "layers": layers, **fields}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _overrides(client: TestClient, launcher: PipecatLauncher, persona_id: str) -> dict[str, Any]:
    answer = client.post("/v2/conversations", json={"persona_id": persona_id})
    assert answer.status_code == 200, answer.text
    spec = launcher.sessions[answer.json()["conversation_id"]].spec
    return {k: json.loads(v) for k, v in (o.split("=", 1) for o in spec.overrides)}


def test_tavus_elevenlabs_voice_reaches_the_conversation(tavus_client, launcher):
    persona = _create(
        tavus_client,
        {"tts": {"tts_engine": "elevenlabs", "api_key": "k", "external_voice_id": "v1",
                 "tts_model_name": "eleven_turbo_v2_5", "voice_settings": {"stability": 0.4}}},
    )  # fmt: skip
    assert persona["warnings"] == []
    assert persona["layers"]["tts"]["external_voice_id"] == "v1"  # given back as sent
    tts = _overrides(tavus_client, launcher, persona["persona_id"])["stages.tts"]
    assert tts["provider"] == "elevenlabs" and tts["voice_id"] == "v1"
    assert tts["model"] == "eleven_turbo_v2_5" and tts["stability"] == 0.4
    assert tts["fallback"] == [{"provider": "piper"}]  # the offline voice covers an outage


def test_elevenlabs_without_a_key_keeps_the_pipeline_voice_and_says_why(tavus_client, launcher):
    persona = _create(tavus_client, {"tts": {"tts_engine": "elevenlabs"}})
    assert any("ELEVENLABS_API_KEY" in w for w in persona["warnings"]), persona["warnings"]
    assert "stages.tts" not in _overrides(tavus_client, launcher, persona["persona_id"])


def test_an_engine_presence_lacks_is_accepted_and_names_the_ones_it_has(tavus_client):
    persona = _create(tavus_client, {"tts": {"tts_engine": "cartesia", "external_voice_id": "x"}})
    (warning,) = [w for w in persona["warnings"] if "cartesia" in w]
    assert "piper" in warning and "elevenlabs" in warning


def test_turn_taking_fields_tune_the_turn_and_vad_stages(tavus_client, launcher):
    patient = _create(
        tavus_client,
        {"conversational_flow": {"turn_taking_patience": "high", "replica_interruptibility": "low"},
         "llm": {"speculative_inference": True}},
    )  # fmt: skip
    overrides = _overrides(tavus_client, launcher, patient["persona_id"])
    assert overrides["stages.turn.stop_secs"] == 2.0  # smart-turn waits longer
    assert overrides["stages.turn.speculative"] is True
    assert overrides["stages.vad.start_secs"] == 0.5  # harder to interrupt

    timed = _create(tavus_client, {"stt": {"smart_turn_detection": False,
                                           "participant_pause_sensitivity": "high",
                                           "participant_interrupt_sensitivity": "high"}})  # fmt: skip
    overrides = _overrides(tavus_client, launcher, timed["persona_id"])
    assert overrides["stages.turn"] == {"provider": "speech-timeout", "user_speech_timeout": 0.4}
    assert overrides["stages.vad.start_secs"] == 0.1  # Tavus: stops as soon as the user talks

    slow = _create(tavus_client, {"stt": {"participant_pause_sensitivity": "superlow",
                                          "participant_interrupt_sensitivity": "verylow"}})  # fmt: skip
    overrides = _overrides(tavus_client, launcher, slow["persona_id"])
    assert overrides["stages.turn.stop_secs"] == 2.0 and overrides["stages.vad.start_secs"] == 0.5


def test_own_keys_still_work_and_win_over_tavus_fields():
    out = translate_layers(
        {"tts": {"provider": "espeak", "voice": "en-gb", "tts_engine": "elevenlabs"},
         "conversational_flow": {"turn_taking_patience": "low", "turn": {"stop_secs": 3.0}}},
        LOCAL,
    )  # fmt: skip
    assert out.layers["tts"] == {"provider": "espeak", "voice": "en-gb"}
    assert out.layers["conversational_flow"]["turn"] == {"stop_secs": 3.0}


def test_an_openai_compatible_llm_is_selected_with_the_offline_one_as_fallback():
    out = translate_layers(
        {"llm": {"model": "llama3", "base_url": "http://127.0.0.1:11434/v1",
                 "extra_body": {"temperature": 0.2}}},
        LOCAL,
    )  # fmt: skip
    assert out.layers["llm"] == {
        "provider": "openai", "fallback": [{"provider": "knowledge-base"}],
        "base_url": "http://127.0.0.1:11434/v1", "model": "llama3", "temperature": 0.2,
    }  # fmt: skip
    assert out.warnings == []


def test_each_warning_is_logged_once(tavus_client):
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(m.record["message"]), level="WARNING")
    try:
        for _ in range(3):
            _create(tavus_client, {"tts": {"tts_engine": "azure"}})
    finally:
        logger.remove(sink)
    assert len([m for m in seen if "'azure'" in m]) <= 1  # once per process (maybe earlier)
    assert not any("'azure'" in m for m in seen[1:])
