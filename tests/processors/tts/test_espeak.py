"""The espeak TTS service in a pipecat pipeline: frames, 24 kHz audio, visemes, interruption."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipecat.frames.frames import (
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSUpdateSettingsFrame,
)
from pipecat.services.settings import TTSSettings
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework import registry
from presence.framework.errors import ConfigError
from presence.framework.persona import Persona
from presence.framework.yamlio import validate_model
from presence.processors.tts.engines.espeak import EspeakEngine
from presence.processors.tts.espeak import EspeakParams, EspeakTTSService
from presence.processors.tts.visemes import VISEMES

OUT_RATE = 24000
TEXT = "Hello mama, how are you doing today?"
LONG = " ".join(["The museum opens at nine and closes at six, except on public holidays."] * 30)


def audio_frames(frames) -> list[TTSAudioRawFrame]:
    return [f for f in frames if isinstance(f, TTSAudioRawFrame)]


def seconds(frame: TTSAudioRawFrame) -> float:
    return len(frame.audio) / 2 / frame.sample_rate


def timeline(frames: list[TTSAudioRawFrame]) -> list[tuple[float, str, str]]:
    """Visemes on the utterance's clock: frame start + offset within the frame."""
    events, start = [], 0.0
    for frame in frames:
        for offset, viseme, phoneme in frame.metadata["visemes"]:
            assert 0.0 <= offset < seconds(frame)
            events.append((start + offset, viseme, phoneme))
        start += seconds(frame)
    return events


async def test_speak_frame_streams_24k_audio_with_visemes():
    down, _ = await run_test(
        EspeakTTSService(sample_rate=OUT_RATE), frames_to_send=[TTSSpeakFrame(TEXT)]
    )
    kinds = [type(f) for f in down]
    audio = audio_frames(down)
    assert len(audio) > 10
    first_audio = kinds.index(TTSAudioRawFrame)
    assert TTSStartedFrame in kinds[:first_audio]
    assert kinds.index(TTSStoppedFrame) > max(
        i for i, k in enumerate(kinds) if k is TTSAudioRawFrame
    )
    assert all(f.sample_rate == OUT_RATE and f.num_channels == 1 for f in audio)
    assert all(len(f.audio) % 2 == 0 and "visemes" in f.metadata for f in audio)

    # Same text at espeak's native rate: the resampled audio keeps its length and the viseme
    # times keep the phoneme onsets (espeak jitters lengths by a few samples between runs).
    native = EspeakEngine().render(TEXT)
    total = sum(seconds(f) for f in audio)
    assert total == pytest.approx(native.duration, abs=0.005)
    events = timeline(audio)
    times = [t for t, _, _ in events]
    assert times == sorted(times)
    assert times[-1] < total
    spoken = [(t, p) for t, _, p in events if p]
    expected = [(p.sample / native.sample_rate, p.phoneme) for p in native.phonemes if p.phoneme]
    assert [p for _, p in spoken] == [p for _, p in expected]
    assert max(abs(a - b) for (a, _), (b, _) in zip(spoken, expected, strict=True)) < 0.005
    visemes = [v for _, v, _ in events]
    assert {"closed", "open", "round"} <= set(visemes) <= set(VISEMES)


async def test_llm_text_is_spoken_sentence_by_sentence():
    down, _ = await run_test(
        EspeakTTSService(sample_rate=OUT_RATE),
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("Hello there. "),
            LLMTextFrame("Nice to meet you."),
            LLMFullResponseEndFrame(),
        ],
    )
    kinds = [type(f) for f in down]
    assert kinds.count(TTSStartedFrame) == 1 and kinds.count(TTSStoppedFrame) == 1  # one turn
    audio = audio_frames(down)
    assert sum(seconds(f) for f in audio) > 1.5  # both sentences, not just the first
    assert sum(1 for _, v, _ in timeline(audio) if v == "closed") >= 1  # the m of "meet"


async def test_interruption_stops_a_long_sentence():
    native_seconds = EspeakEngine().render(LONG).duration
    down, _ = await run_test(
        EspeakTTSService(sample_rate=OUT_RATE),
        frames_to_send=[TTSSpeakFrame(LONG), SleepFrame(0.05), InterruptionFrame()],
    )
    kinds = [type(f) for f in down]
    assert InterruptionFrame in kinds
    cut = kinds.index(InterruptionFrame)
    assert TTSAudioRawFrame not in kinds[cut:]  # nothing of the old sentence after the cut
    assert sum(seconds(f) for f in audio_frames(down)) < 0.6 * native_seconds

    # the service speaks normally again afterwards
    down, _ = await run_test(
        EspeakTTSService(sample_rate=OUT_RATE), frames_to_send=[TTSSpeakFrame("OK.")]
    )
    assert sum(seconds(f) for f in audio_frames(down)) > 0.2


async def test_voice_can_change_at_run_time():
    service = EspeakTTSService(sample_rate=OUT_RATE)
    down, _ = await run_test(
        service,
        frames_to_send=[
            TTSUpdateSettingsFrame(delta=TTSSettings(voice="en-gb")),
            TTSSpeakFrame("Hello."),
            TTSUpdateSettingsFrame(delta=TTSSettings(voice="klingon")),  # refused, kept en-gb
            TTSSpeakFrame("Goodbye."),
        ],
    )
    assert service.engine.voice == "en-gb"
    assert [type(f) for f in down].count(TTSStoppedFrame) == 2


def test_unknown_voice_in_a_pipeline_file_names_allowed_voices():
    with pytest.raises(ConfigError) as caught:
        validate_model({"voice": "klingon"}, EspeakParams, source="local.yaml", prefix="stages.tts")
    assert caught.value.field == "stages.tts.voice"
    assert "klingon" in str(caught.value) and "en-gb" in str(caught.value)


def test_unknown_voice_given_to_the_service():
    with pytest.raises(ConfigError, match="allowed voices: .*en-us"):
        EspeakTTSService(voice="klingon")


def test_params_validate_ranges():
    with pytest.raises(ConfigError):
        validate_model({"rate": 5}, EspeakParams, source="local.yaml", prefix="stages.tts")
    params = validate_model({"voice": "en-gb", "rate": 200}, EspeakParams, source="local.yaml")
    assert (params.voice, params.rate, params.pitch) == ("en-gb", 200, 50)


def test_registered_factory_builds_a_service_at_the_pipeline_rate():
    provider = registry.get("tts", "espeak")
    assert provider is not None and provider.params is EspeakParams
    ctx = registry.BuildContext(
        persona=Persona(), base_dir=Path("."), audio_out_sample_rate=OUT_RATE
    )
    service = provider.factory(EspeakParams(voice="en-gb"), ctx)
    assert isinstance(service, EspeakTTSService)
    assert service.engine.voice == "en-gb"
