"""Interactions in a live conversation, through the real offline pipeline (``FileLauncher``).

The user stays silent; a server-side caller drives the conversation with
``POST /v2/conversations/{id}/interactions`` (the same messages the page sends on its data
channel): ``echo`` makes the replica say a sentence, ``respond`` gets an answer as if the user
asked. The events the page would receive (``conversation.utterance``, speaking events) are
checked on the session's processor; the transcript holds the respond as the user's turn.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from helpers.service import KEY_A, KEY_B, FileLauncher, make_settings
from helpers.speech import synthesize

from presence.service.app import create_app

SIZE = 128
ECHO_TEXT = "The sky is green on Tuesdays."


def mic(path: Path, question: str, seconds: float) -> Path:
    """Silence while the greeting plays, the user's question, then silence up to ``seconds``."""
    audio, rate = synthesize(question)
    lead = np.zeros(int(rate * 3), np.int16)
    tail = np.zeros(max(0, int(rate * seconds) - lead.size - audio.size), np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate([lead, audio, tail]).tobytes())
    return path


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_echo_and_respond_drive_a_live_conversation(tmp_path):
    wav = mic(tmp_path / "mic.wav", "what does the renderer do?", 40)
    launcher = FileLauncher([wav], tmp_path / "out", fast=False)
    app = create_app(make_settings(tmp_path), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as api:
        persona = api.post(
            "/v2/personas",
            json={
                "persona_name": "guide",
                "greeting": "Hello.",
                "layers": {"transport": {"video": {"width": SIZE, "height": SIZE}}},
            },
        ).json()
        cid = api.post("/v2/conversations", json={"persona_id": persona["persona_id"]}).json()[
            "conversation_id"
        ]
        url = f"/v2/conversations/{cid}/interactions"

        def assistant_turns(*, finished: bool = False):
            turns = api.get(f"/v2/conversations/{cid}").json()["transcript"]
            return [
                t["content"]
                for t in turns
                if t["role"] == "assistant" and not (finished and t.get("ended_ms") is None)
            ]

        # the greeting, then the user's spoken question is answered
        wait(lambda: len(assistant_turns(finished=True)) >= 2, 40, "the answer to the user")
        assert assistant_turns()[0] == "Hello."

        # refused before anything runs: what to change is named
        bad = api.post(url, json={"event_type": "conversation.echo", "properties": {}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "properties", "text"]
        unknown = api.post(url, json={"event_type": "conversation.dance"})
        assert unknown.status_code == 422
        assert unknown.json()["detail"][0]["loc"] == ["body", "event_type"]
        assert "conversation.echo" in unknown.text  # the allowed values are listed
        no_level = api.post(url, json={"event_type": "conversation.sensitivity", "properties": {}})
        assert no_level.status_code == 422
        assert "participant_pause_sensitivity" in no_level.text
        # Tavus's live sensitivity change is accepted (its effect: tests/processors/turns)
        patient = {
            "participant_pause_sensitivity": "low",
            "participant_interrupt_sensitivity": "low",
        }
        changed = api.post(
            url, json={"event_type": "conversation.sensitivity", "properties": patient}
        )
        assert changed.status_code == 200, changed.text
        assert (
            api.post(
                url, json={"event_type": "conversation.interrupt"}, headers={"x-api-key": KEY_B}
            ).status_code
            == 403
        )

        echo = api.post(
            url, json={"event_type": "conversation.echo", "properties": {"text": ECHO_TEXT}}
        )
        assert echo.status_code == 200, echo.text
        assert echo.json()["event_type"] == "conversation.echo"
        wait(lambda: len(assistant_turns(finished=True)) >= 3, 30, "the echo")
        assert "green on tuesdays" in assistant_turns()[2].lower()

        respond = api.post(
            url,
            json={
                "event_type": "conversation.respond",
                "properties": {"text": "How do I swap a provider?"},
            },
        )
        assert respond.status_code == 200, respond.text
        answers = wait(lambda: (a := assistant_turns())[3:] and a, 30, "an answer")
        answer = answers[3].lower()
        print("\nanswer:", answer)
        assert answer and "green" not in answer and answer != "hello."
        # the respond is the user's turn in the transcript, once, between the echo and the answer
        turns = [
            (t["role"], t["content"])
            for t in api.get(f"/v2/conversations/{cid}").json()["transcript"]
        ]
        said = ("user", "How do I swap a provider?")
        assert turns.count(said) == 1, turns
        at = turns.index(said)
        assert "green on tuesdays" in turns[at - 1][1].lower(), turns
        assert turns[at + 1][0] == "assistant" and "green" not in turns[at + 1][1].lower(), turns

        sent = launcher.interactions[cid].sent
        utterances = [
            (e["properties"]["role"], e["properties"]["speech"])
            for e in sent
            if e["event_type"] == "conversation.utterance"
        ]
        assert ("replica", ECHO_TEXT) in utterances
        assert ("user", "How do I swap a provider?") in utterances
        assert any(role == "user" and "render" in text for role, text in utterances), utterances
        kinds = [e["event_type"] for e in sent]
        assert kinds.count("conversation.user.started_speaking") >= 1
        assert kinds.count("conversation.replica.started_speaking") >= 3
        assert kinds.count("conversation.replica.stopped_speaking") >= 2
        assert all(e["conversation_id"] == cid for e in sent)

        assert api.post(f"/v2/conversations/{cid}/end").status_code == 200
        late = api.post(url, json={"event_type": "conversation.interrupt"})
        assert late.status_code == 409
