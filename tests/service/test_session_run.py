"""A conversation's guardrails and objectives run in its real offline pipeline.

The persona knows its prices, and the same passage names an unreleased product its guardrail
forbids; its objective completes when the user asks about prices, which activates the next one.
The user (a WAV, through Whisper) asks "What are the prices?": the answer stops at the
forbidden sentence, the webhooks arrive, and the conversation shows both.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from helpers.service import KEY_A, FileLauncher, make_settings
from helpers.speech import synthesize

from presence.service.app import create_app

KNOWLEDGE = """# Prices

Our plans start at ten dollars a month. Project Falcon will double the free tier next spring.
You can cancel any time from the settings page.
"""
REPLACEMENT = "I can't talk about unreleased products."


def mic(path: Path, question: str) -> Path:
    """Half a second of silence, the question, a second of silence."""
    audio, rate = synthesize(question)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        silence = np.zeros(rate // 2, np.int16)
        w.writeframes(np.concatenate([silence, audio, silence, silence]).tobytes())
    return path


def test_guardrails_and_objectives_in_a_live_conversation(tmp_path, receiver):
    receiver.up()
    wav = mic(tmp_path / "mic.wav", "What are the prices?")
    launcher = FileLauncher([wav], tmp_path / "out", fast=True)
    app = create_app(make_settings(tmp_path), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as api:
        gid = api.post(
            "/v2/guardrails",
            json={
                "guardrail_name": "no_unreleased",
                "phrases": ["Project Falcon"],
                "replacement": REPLACEMENT,
            },
        ).json()["guardrails_id"]
        oid = api.post(
            "/v2/objectives",
            json=[
                {
                    "objective_name": "pricing_interest",
                    "criteria": [{"type": "keywords", "keywords": ["price"], "variable": "topic"}],
                    "next_required_objectives": ["get_email"],
                },
                {"objective_name": "get_email", "output_variables": ["email"]},
            ],
        ).json()["objectives_id"]
        persona = api.post(
            "/v2/personas",
            json={
                "persona_name": "seller",
                "greeting": "Hello.",
                "documents": [{"document_name": "prices", "content": KNOWLEDGE}],
                "guardrail_ids": [gid],
                "objectives_id": oid,
                "layers": {"transport": {"video": {"width": 64, "height": 64, "fps": 10}}},
            },
        )
        assert persona.status_code == 200, persona.text
        cid = api.post(
            "/v2/conversations",
            json={
                "persona_id": persona.json()["persona_id"],
                "callback_url": receiver.url,
                "properties": {"participant_left_timeout": 0},  # ends when the file does
            },
        ).json()["conversation_id"]

        events = receiver.wait_for(
            lambda es: "application.transcription_ready" in {e["event_type"] for e in es},
            timeout=90,
        )
        kinds = [e["event_type"] for e in events]
        print("\nwebhooks:", kinds)
        shown = api.get(f"/v2/conversations/{cid}").json()
        said = " ".join(t["content"] for t in shown["transcript"] if t["role"] == "assistant")
        print("persona said:", said)

        assert "ten dollars" in said and REPLACEMENT in said
        assert "falcon" not in said.lower() and "cancel" not in said.lower()
        fired = next(e for e in events if e["event_type"] == "application.guardrail_triggered")
        assert fired["properties"]["guardrail_name"] == "no_unreleased"
        assert fired["properties"]["side"] == "output"
        done = next(e for e in events if e["event_type"] == "application.objective_completed")
        assert done["properties"]["objective_name"] == "pricing_interest"
        assert done["properties"]["output_variables"] == {"topic": "price"}
        assert done["properties"]["next_objectives"] == ["get_email"]
        assert [(o["objective_name"], o["status"]) for o in shown["objectives"]] == [
            ("pricing_interest", "completed"),
            ("get_email", "active"),
        ]
        assert [g["guardrail_name"] for g in shown["guardrails_triggered"]] == ["no_unreleased"]
        transcript = next(e for e in events if e["event_type"] == "application.transcription_ready")
        assert "falcon" not in str(transcript["properties"]).lower()


def test_a_cloud_llm_judges_guardrails_and_objectives_and_an_offline_one_does_not():
    from presence.processors.guardrails.processor import OutputGuardProcessor
    from presence.processors.objectives.processor import ObjectivesProcessor
    from presence.service.session_run import conversation_processors
    from presence.service.session_spec import ConversationSpec

    pipelines = Path(__file__).parents[2] / "pipelines"
    items = {
        "guardrails": [{"guardrail_name": "g", "guardrail_prompt": "No medical advice."}],
        "objectives": [{"objective_name": "o", "objective_prompt": "Ask the colour."}],
    }
    cloud = ConversationSpec(
        "c1",
        pipelines / "byo-llm.yaml",
        ["stages.llm.base_url=http://127.0.0.1:9/v1", "stages.llm.model=judge-me"],
        **items,
    )
    points = conversation_processors(cloud, events=None)
    (guard,) = [p for p in points["before_tts"] if isinstance(p, OutputGuardProcessor)]
    judge = guard.checker.judge
    assert (judge.provider, judge.model, judge.base_url) == (
        "openai",
        "judge-me",
        "http://127.0.0.1:9/v1",
    )
    (objectives,) = [
        p for p in points["after_user_aggregator"] if isinstance(p, ObjectivesProcessor)
    ]
    assert objectives.judge.model == "judge-me"

    # offline: a prompt-only guardrail has nothing to enforce, the objectives no judge
    offline = conversation_processors(
        ConversationSpec("c2", pipelines / "local.yaml", **items), events=None
    )
    assert "before_tts" not in offline and "before_llm" not in offline
    assert offline["after_user_aggregator"][0].judge is None
