"""A forbidden sentence from the LLM never reaches TTS, the transcript or the client.

The real offline pipeline (Whisper, the knowledge-base responder, Piper) over the file
transport: the user asks about prices; the persona's knowledge answers with three sentences,
the second naming an unreleased product that a guardrail forbids. The first sentence is spoken,
the replacement instead of the second, and the third is dropped.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from helpers.speech import synthesize
from pipecat.frames.frames import OutputTransportMessageUrgentFrame, TextFrame, TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed

import presence.pipelines
from presence.framework.config import load_pipeline
from presence.processors.guardrails.engines.rules import Guardrails
from presence.processors.guardrails.processor import make_guards
from presence.transports.file.session import run_file_session

LOCAL = Path(presence.pipelines.__file__).parent / "local.yaml"
KNOWLEDGE = """# Prices

Our plans start at ten dollars a month. Project Falcon will double the free tier next spring.
You can cancel any time from the settings page.
"""
REPLACEMENT = "I can't talk about unreleased products."


class Tap(BaseObserver):
    """Records the text every TTS receives and every message sent to the client."""

    def __init__(self, tts):
        super().__init__()
        self._tts = tts
        self.tts_text: list[str] = []
        self.client: list[dict] = []

    async def on_push_frame(self, data: FramePushed):
        frame = data.frame
        if data.destination is self._tts and isinstance(frame, (TextFrame, TTSSpeakFrame)):
            self.tts_text.append(frame.text)
        if isinstance(frame, OutputTransportMessageUrgentFrame) and data.first_push:
            self.client.append(frame.message)


def question(path: Path, text: str) -> Path:
    audio, rate = synthesize(text)
    silence = np.zeros(rate // 2, np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate([silence, audio, silence]).tobytes())
    return path


async def test_a_forbidden_sentence_is_never_spoken_captioned_or_transcribed(tmp_path):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    (knowledge / "prices.md").write_text(KNOWLEDGE)
    loaded = load_pipeline(
        LOCAL,
        ["transport.video={width: 64, height: 64, fps: 10}", "stages.perception={provider: off}"],
    )
    loaded.persona = loaded.persona.model_copy(update={"knowledge_base": knowledge})
    rules = Guardrails.from_dicts(
        [
            {
                "guardrail_name": "unreleased",
                "phrases": ["Project Falcon"],
                "replacement": REPLACEMENT,
            }
        ]
    )
    fired = []
    guards = make_guards(rules, conversation_id="c1", on_trigger=fired.append)
    # the TTS is the processor the output guard pushes to: tap what it receives from then on
    tap_holder: dict[str, Tap] = {}

    class Forward(BaseObserver):
        async def on_push_frame(self, data: FramePushed):
            if "tap" not in tap_holder and data.source is guards["before_tts"][0]:
                tap_holder["tap"] = Tap(data.destination)
            if "tap" in tap_holder:
                await tap_holder["tap"].on_push_frame(data)

    report = await run_file_session(
        loaded,
        question(tmp_path / "q.wav", "What are the prices?"),
        tmp_path / "reply.mp4",
        fast=True,
        observers=[Forward()],
        insert=guards,
    )
    tap = tap_holder["tap"]
    spoken = " ".join(tap.tts_text)
    said = " ".join(t["content"] for t in report["turns"] if t["role"] == "assistant")
    print("\nTTS got:", tap.tts_text, "\ntranscript:", said)

    assert "ten dollars" in spoken and REPLACEMENT in spoken
    assert "falcon" not in spoken.lower() and "cancel" not in spoken.lower()
    assert "ten dollars" in said and "falcon" not in said.lower() and "cancel" not in said.lower()
    to_client = [str(m) for m in tap.client]
    assert not [m for m in to_client if "falcon" in m.lower()]
    assert [(t.guardrail_name, t.side) for t in fired] == [("unreleased", "output")]
    events = [m for m in tap.client if m.get("event_type") == "conversation.guardrail_triggered"]
    assert events and events[0]["properties"]["guardrail_name"] == "unreleased"
