"""Faults inside a live WebRTC call: each stage fails, the persona copes, the call goes on.

``pipelines/cloud.yaml`` is served over WebRTC on loopback (``presence.transports.webrtc.loopback``)
with Deepgram, Anthropic and ElevenLabs pointed at the wire-protocol fakes in ``tests/fakes`` (the
real pipecat services talk to them), a persona without a greeting, and a 128 px, 15 fps face. A
Python WebRTC user speaks each question into the call (Opus, in real time) and judges what it
gets back over the data channel (RTVI transcripts, ``bot-output``, ``error``) and the media
tracks. Every test then asks a second question and gets its answer: the session survived.

What the persona said is read from RTVI ``bot-tts-text`` (the words the voice service timed
against the audio it produced): the ElevenLabs fake's voice is a constant sample, which Opus
filters out as DC, so the received audio cannot tell its speech from silence.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from fakes.anthropic import FakeAnthropic
from fakes.deepgram_speech import FakeSpokenDeepgram, spoken_words
from fakes.elevenlabs import FakeElevenLabs
from fakes.llm_script import Reply

from presence.framework import registry
from presence.framework.config import load_pipeline
from presence.framework.registry import Provider
from presence.processors.renderer.engines.layout import fit_portrait
from presence.processors.renderer.engines.warp import WarpEngine
from presence.processors.renderer.processor import RendererProcessor
from presence.processors.renderer.providers import WarpParams
from presence.processors.renderer.replica import register_replica
from presence.processors.resilience import DEFAULT_APOLOGY
from presence.processors.stt.deepgram import NOT_HEARD
from presence.transports.webrtc.loopback import LocalCall, local_call

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "pipelines/personas/guide"
QUESTION = "what is the weather in paris".split()
FOLLOW_UP = "thank you very much".split()
ANSWER = ["It is sunny ", "in Paris today."]
THANKS = ["You are welcome."]
SETTLE_S = 1.0


@pytest.fixture
def keys(monkeypatch):
    for name in ("DEEPGRAM_API_KEY", "ANTHROPIC_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.setenv(name, f"test-{name.lower()}")


def persona(tmp_path: Path) -> Path:
    path = tmp_path / "persona.yaml"
    path.write_text(
        "name: Weather Guide\nsystem_prompt: You are a weather guide. Answer in one sentence.\n"
        f"replica: {GUIDE / 'replica.png'}\nknowledge_base: {GUIDE / 'knowledge'}\n"
    )
    return path


def cloud(tmp_path: Path, deepgram, llm, tts, *extra: str):
    """``pipelines/cloud.yaml`` with every provider at its fake, light enough for two cores."""
    return load_pipeline(
        REPO / "pipelines/cloud.yaml",
        [
            f"persona={persona(tmp_path)}",
            "transport.video={width: 128, height: 128, fps: 15}",
            "stages.renderer={provider: still}",
            f"stages.stt.base_url={deepgram.base_url}",
            f"stages.llm.base_url={llm.base_url}",
            "stages.llm.timeout_s=3",
            f"stages.tts.base_url={tts.url}",
            *extra,
        ],
    )


def at_48k(pcm16k: np.ndarray) -> np.ndarray:
    """16 kHz int16 speech as the WebRTC microphone's 48 kHz."""
    x = np.arange(len(pcm16k) * 3) / 3
    return np.interp(x, np.arange(len(pcm16k)), pcm16k).astype(np.int16)


def texts(call: LocalCall, kind: str, start: int) -> list[str]:
    return [m.get("data", {}).get("text", "") for m in call.messages(kind, start)]


async def ask(call: LocalCall, words: list[str], timeout: float = 40.0) -> tuple[int, str]:
    """Speak ``words``; wait for the reply to end. Returns (message mark, what the bot said).

    A user speaks once the face has been up for a moment (``SETTLE_S``), not in the first
    milliseconds: the session's first VAD and turn-model inferences run on the silence before.
    """
    await asyncio.sleep(max(0.0, call.started + SETTLE_S - time.monotonic()))
    mark = len(call.user.received.messages)
    await asyncio.sleep(call.user.say(at_48k(spoken_words(words))))
    await call.wait_for("bot-stopped-speaking", start=mark, timeout=timeout)
    await asyncio.sleep(0.3)
    return mark, spoken(call, mark)


def spoken(call: LocalCall, start: int) -> str:
    """The words the persona's voice said since ``start`` (RTVI ``bot-tts-text``), joined."""
    return " ".join(" ".join(texts(call, "bot-tts-text", start)).split())


def heard(call: LocalCall, start: int) -> list[str]:
    """The user's final transcripts the server sent back since ``start``."""
    finals = [m for m in call.messages("user-transcription", start) if m["data"].get("final")]
    return [m["data"]["text"].strip() for m in finals]


def errors(call: LocalCall, start: int = 0) -> list[dict]:
    return [m["data"] for m in call.messages("error", start)]


async def test_llm_500s_get_an_apology_and_the_call_goes_on(tmp_path, keys):
    script = (Reply(fault="500"), Reply(fault="500"), Reply(text=THANKS))
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP) as deepgram,
        FakeAnthropic(*script) as llm,
        FakeElevenLabs() as tts,
    ):
        loaded = cloud(tmp_path, deepgram, llm, tts, "stages.llm.fallback=[]")
        async with local_call(loaded) as call:
            mark, said = await ask(call, QUESTION)
            assert heard(call, mark) == [" ".join(QUESTION)]
            assert said == DEFAULT_APOLOGY
            problems = errors(call, mark)
            assert problems and not any(p["fatal"] for p in problems)
            mark, said = await ask(call, FOLLOW_UP)
            assert said == " ".join("".join(THANKS).split())
    assert len(llm.requests) == 3  # the failed turn was tried twice, the next one once


async def test_llm_timeouts_are_answered_by_the_fallback_and_the_primary_comes_back(tmp_path, keys):
    words = "what is presence".split()
    script = (
        Reply(fault="stall", stall_s=10),
        Reply(fault="stall", stall_s=10),
        Reply(text=THANKS),
    )
    async with (
        FakeSpokenDeepgram(words + FOLLOW_UP) as deepgram,
        FakeAnthropic(*script) as llm,
        FakeElevenLabs() as tts,
    ):
        extra = ("stages.llm.timeout_s=0.5", "stages.llm.recover_after_s=0")
        async with local_call(cloud(tmp_path, deepgram, llm, tts, *extra)) as call:
            mark, said = await ask(call, words)
            assert heard(call, mark) == ["what is presence"]
            knowledge = " ".join(p.read_text() for p in (GUIDE / "knowledge").glob("*.md"))
            assert said and said != DEFAULT_APOLOGY  # the knowledge base answered in time
            assert said.split(".")[0] in " ".join(knowledge.split())
            mark, said = await ask(call, FOLLOW_UP)
            assert said == "You are welcome."  # back on the primary for the next turn
    assert len(llm.requests) == 3


async def test_a_dropped_tts_socket_still_speaks_the_whole_answer(tmp_path, keys):
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP) as deepgram,
        FakeAnthropic(Reply(text=ANSWER), Reply(text=THANKS)) as llm,
        FakeElevenLabs(drop_contexts={1}) as tts,
    ):
        extra = ("stages.tts.stall_timeout_s=1",)
        async with local_call(cloud(tmp_path, deepgram, llm, tts, *extra)) as call:
            mark, said = await ask(call, QUESTION)
            assert tts.dropped == 1
            assert any("dropped" in p["error"] and not p["fatal"] for p in errors(call, mark))
            assert said == " ".join("".join(ANSWER).split())  # every word, once
            mark, said = await ask(call, FOLLOW_UP)
            assert said == "You are welcome."


async def test_a_stalled_stt_keeps_the_transcript_and_the_question_is_answered(tmp_path, keys):
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP, stall_on={1}) as deepgram,
        FakeAnthropic(Reply(text=ANSWER), Reply(text=THANKS)) as llm,
        FakeElevenLabs() as tts,
    ):
        extra = ("stages.stt.stall_timeout_s=1",)
        async with local_call(cloud(tmp_path, deepgram, llm, tts, *extra)) as call:
            mark, said = await ask(call, QUESTION)
            assert deepgram.connections[0].stalled and len(deepgram.connections) >= 2
            assert heard(call, mark) == [" ".join(QUESTION)]  # replayed on the new socket
            assert said == " ".join("".join(ANSWER).split())
            assert any("deepgram" in p["error"] and not p["fatal"] for p in errors(call, mark))
            mark, said = await ask(call, FOLLOW_UP)
            assert said == "You are welcome."


class BreakingWarp(WarpEngine):
    """A warp engine that breaks for good on the 5th speaking frame (a GPU lost mid-answer)."""

    name = "breaking-warp"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.spoken_frames = 0

    def _draw(self, state):
        self.spoken_frames += state.speaking
        if self.spoken_frames >= 5:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super()._draw(state)


@pytest.fixture
def breaking_renderer(monkeypatch):
    """``renderer: {provider: breaking-warp}``, registered for this test only."""

    def build(params, ctx):
        engine = BreakingWarp((ctx.video.width, ctx.video.height), ctx.video.fps,
                              ctx.audio_out_sample_rate, params.seed, "cpu")  # fmt: skip
        engine.prepare(register_replica(ctx.persona.replica, ctx.persona.name, None))
        return RendererProcessor(engine)

    key = ("renderer", "breaking-warp")
    monkeypatch.setitem(registry._REGISTRY, key, Provider(*key, WarpParams, build, "test"))
    return "stages.renderer={provider: breaking-warp}"


async def test_a_renderer_that_raises_falls_back_to_the_still_portrait(
    tmp_path, keys, breaking_renderer
):
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP) as deepgram,
        FakeAnthropic(Reply(text=ANSWER), Reply(text=THANKS)) as llm,
        FakeElevenLabs() as tts,
    ):
        loaded = cloud(tmp_path, deepgram, llm, tts, breaking_renderer)
        async with local_call(loaded) as call:
            mark, said = await ask(call, QUESTION)
            assert said == " ".join("".join(ANSWER).split())  # the whole answer was spoken
            (problem,) = errors(call, mark)
            assert "renderer breaking-warp failed" in problem["error"] and not problem["fatal"]
            assert "still portrait" in problem["error"]
            mark, said = await ask(call, FOLLOW_UP)
            assert said == "You are welcome."
            now = time.monotonic()
            assert call.user.received.fps(now - 2, now) > 5  # the face is still on screen
            shown = call.user.received.last_video.to_ndarray(format="rgb24").astype(float)
            replica = register_replica(GUIDE / "replica.png", "Weather Guide", None)
            still = fit_portrait(replica.neutral, 128, 128).astype(float)
            assert np.abs(shown - still).mean() < 12  # the portrait, through VP8
            assert call.session.stages["renderer"].engine.failure is not None


async def test_an_stt_that_keeps_stalling_says_so_and_loses_no_words(tmp_path, keys):
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP, stall_on={1, 2, 3}) as deepgram,
        FakeAnthropic(Reply(text=ANSWER), Reply(text=THANKS)) as llm,
        FakeElevenLabs() as tts,
    ):
        extra = ("stages.stt.stall_timeout_s=1",)
        async with local_call(cloud(tmp_path, deepgram, llm, tts, *extra)) as call:
            mark, said = await ask(call, QUESTION)
            assert said == NOT_HEARD  # the user is not left in silence
            assert len([p for p in errors(call, mark) if "deepgram stalled" in p["error"]]) == 2
            assert len(deepgram.connections) == 3  # then it waits for the user: no retry storm
            mark, said = await ask(call, FOLLOW_UP)  # the fourth socket works
            words = " ".join(heard(call, mark)).split()
            assert words == QUESTION + FOLLOW_UP  # the first question was kept and replayed
            assert said == " ".join("".join(ANSWER).split())
    assert [c.stalled for c in deepgram.connections] == [True, True, True, False]
