"""Deepgram STT through pipecat's real service and our factory, against a local wire fake."""

from pathlib import Path

import pytest
from fakes.deepgram import FakeDeepgram, encode_words, silence
from pipecat.frames.frames import (
    ErrorFrame,
    InputAudioRawFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework import registry
from presence.framework.errors import ConfigError, ProviderTimeout
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext
from presence.framework.yamlio import validate_model
from presence.processors.stt.deepgram import NOT_HEARD

VOCAB = ["hello", "world", "what", "time", "is", "it", "now"]
CHUNK = 640  # 20 ms at 16 kHz


def build(base_url: str, **extra):
    provider = registry.get("stt", "deepgram")
    params = provider.params.model_validate(
        {"api_key": "test-key", "base_url": base_url, "reconnect_wait_s": 0.05, **extra}
    )
    return provider.factory(params, BuildContext(persona=Persona(), base_dir=Path(".")))


def paced(pcm: bytes) -> list:
    frames = []
    for i in range(0, len(pcm), CHUNK):
        frames.append(InputAudioRawFrame(pcm[i : i + CHUNK], sample_rate=16000, num_channels=1))
        frames.append(SleepFrame(0.004))
    return frames


def transcripts(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, TranscriptionFrame)]


async def test_transcript_arrives_with_the_configured_query_and_key():
    async with FakeDeepgram(VOCAB) as fake:
        stt = build(fake.base_url, model="nova-3-general")
        pcm = encode_words(["hello", "world"], VOCAB) + silence(400)
        down, _ = await run_test(stt, frames_to_send=[*paced(pcm), SleepFrame(0.2)])
    assert transcripts(down) == ["hello world"]
    conn = fake.connections[0]
    assert conn.query["model"] == "nova-3-general"
    assert conn.query["encoding"] == "linear16" and conn.query["sample_rate"] == "16000"
    assert conn.headers["authorization"] == "Token test-key"


async def test_socket_dropped_mid_utterance_loses_and_repeats_nothing():
    first = encode_words(["hello", "world"], VOCAB) + silence(400)
    second = encode_words(["what", "time", "is", "it", "now"], VOCAB) + silence(400)
    drop_ms = len(first) // 32 + 500  # inside "is" of the second utterance
    async with FakeDeepgram(VOCAB, drop_after_ms={1: drop_ms}) as fake:
        stt = build(fake.base_url)
        down, up = await run_test(stt, frames_to_send=[*paced(first + second), SleepFrame(0.3)])
    assert fake.connections[0].dropped and len(fake.connections) == 2
    assert stt.reconnects == 1
    assert transcripts(down) == ["hello world", "what time is it now"]
    assert any(isinstance(f, ErrorFrame) for f in up)  # the drop is reported, not hidden


async def test_malformed_message_reports_an_error_and_transcription_goes_on():
    async with FakeDeepgram(VOCAB, malformed_on={1}) as fake:
        stt = build(fake.base_url)
        pcm = silence(100) + encode_words(["hello", "world"], VOCAB) + silence(400)
        down, up = await run_test(stt, frames_to_send=[*paced(pcm), SleepFrame(0.3)])
    assert any(isinstance(f, ErrorFrame) for f in up)
    assert transcripts(down) == ["hello world"]


def stopped(pcm: bytes) -> list:
    """The user's speech, then VAD's "stopped speaking" (which asks Deepgram to finalize)."""
    return [*paced(pcm), VADUserStoppedSpeakingFrame()]


async def test_a_silent_socket_is_replaced_and_the_speech_replayed():
    pcm = encode_words(["what", "time", "is", "it"], VOCAB) + silence(100)
    async with FakeDeepgram(VOCAB, stall_on={1}) as fake:
        stt = build(fake.base_url, stall_timeout_s=0.3)
        down, up = await run_test(stt, frames_to_send=[*stopped(pcm), SleepFrame(1.0)])
    assert fake.connections[0].stalled and len(fake.connections) == 2
    assert transcripts(down) == ["what time is it"]  # once, from the replay
    assert not [f for f in down if isinstance(f, TTSSpeakFrame)]  # recovered: nothing to say
    (error,) = [f for f in up if isinstance(f, ErrorFrame)]
    assert "no transcript" in error.error and not error.fatal
    assert isinstance(error.exception, ProviderTimeout) and stt.stalls == 1


async def test_a_second_stall_has_the_persona_say_it_did_not_catch_that():
    pcm = encode_words(["hello", "world"], VOCAB) + silence(100)
    async with FakeDeepgram(VOCAB, stall_on={1, 2}) as fake:
        stt = build(fake.base_url, stall_timeout_s=0.3)
        down, up = await run_test(stt, frames_to_send=[*stopped(pcm), SleepFrame(1.5)])
    said = [f.text for f in down if isinstance(f, TTSSpeakFrame)]
    assert said == [NOT_HEARD] and stt.stalls == 2
    assert transcripts(down) == ["hello world"]  # the third socket got the kept audio


async def test_a_user_who_speaks_on_after_a_pause_is_not_cut_off_by_a_stalled_socket():
    start = encode_words(["what"], VOCAB) + silence(100)
    rest = encode_words(["time", "is", "it", "now"], VOCAB) + silence(100)
    real_time = []  # the rest at its real pace: the stall timeout passes while a word sounds
    for i in range(0, len(rest), CHUNK):
        real_time += [InputAudioRawFrame(rest[i : i + CHUNK], 16000, 1), SleepFrame(0.02)]
    frames = [*stopped(start), VADUserStartedSpeakingFrame(), *real_time]
    frames += [VADUserStoppedSpeakingFrame(), SleepFrame(1.0)]
    async with FakeDeepgram(VOCAB, stall_on={1}) as fake:
        stt = build(fake.base_url, stall_timeout_s=0.3)
        down, up = await run_test(stt, frames_to_send=frames)
    assert transcripts(down) == ["what time is it now"]  # one utterance, no word cut in two
    assert stt.stalls == 1 and len(fake.connections) == 2  # the stall after the real stop


async def test_a_quiet_user_is_not_a_stall():
    async with FakeDeepgram(VOCAB) as fake:
        stt = build(fake.base_url, stall_timeout_s=0.3)
        pcm = encode_words(["hello"], VOCAB) + silence(400)
        down, up = await run_test(stt, frames_to_send=[*stopped(pcm), SleepFrame(0.8)])
    assert transcripts(down) == ["hello"] and stt.stalls == 0 and len(fake.connections) == 1
    assert not [f for f in up if isinstance(f, ErrorFrame)]


def test_missing_key_names_the_environment_variable(monkeypatch):
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    provider = registry.get("stt", "deepgram")
    with pytest.raises(ConfigError, match="DEEPGRAM_API_KEY"):
        validate_model(
            {"model": "nova-3-general"}, provider.params, source="p.yaml", prefix="stages.stt"
        )
