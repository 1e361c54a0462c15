"""ElevenLabs TTS through pipecat's real service and our factory, against a local wire fake."""

from pathlib import Path

import numpy as np
import pytest
from fakes.elevenlabs import SAMPLE, FakeElevenLabs
from pipecat.frames.frames import ErrorFrame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework import registry
from presence.framework.config import StageConfig
from presence.framework.errors import ProviderTimeout
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext
from presence.processors.resilience import build_with_fallback
from presence.processors.tts.elevenlabs import letters_to_visemes
from presence.processors.tts.visemes import VISEMES

CTX = BuildContext(persona=Persona(), base_dir=Path("."))


def spec(stage: str, name: str, **params) -> StageConfig:
    provider = registry.get(stage, name)
    return StageConfig(stage, provider, provider.params.model_validate(params))


def eleven(fake, **extra) -> StageConfig:
    return spec("tts", "elevenlabs", api_key="xi-test", base_url=fake.url, voice="v123", **extra)


def audio(frames) -> list[TTSAudioRawFrame]:
    return [f for f in frames if isinstance(f, TTSAudioRawFrame)]


def is_fake_voice(frame: TTSAudioRawFrame) -> bool:
    return bool(np.all(np.frombuffer(frame.audio, dtype=np.int16) == SAMPLE))


async def test_audio_arrives_with_visemes_from_the_alignment():
    async with FakeElevenLabs(char_ms=20) as fake:
        s = eleven(fake, model="eleven_flash_v2_5")
        tts = s.provider.factory(s.params, CTX)
        down, up = await run_test(
            tts, frames_to_send=[TTSSpeakFrame("Hello mom."), SleepFrame(0.3)]
        )
    frames = audio(down)
    assert frames and all(is_fake_voice(f) for f in frames)
    assert sum(len(f.audio) for f in frames) == len("Hello mom.") * 480 * 2  # 20 ms/char at 24 kHz
    visemes = [v for f in frames for v in f.metadata["visemes"]]
    names = [v[1] for v in visemes]
    assert set(names) <= set(VISEMES) and "closed" in names  # the m's of "mom"
    for f in frames:
        offsets = [v[0] for v in f.metadata["visemes"]]
        assert offsets == sorted(offsets) and offsets[-1] < f.num_frames / f.sample_rate
    assert (
        "model_id=eleven_flash_v2_5" in fake.paths[0]
        and "/v1/text-to-speech/v123/" in fake.paths[0]
    )
    assert fake.headers[0]["xi-api-key"] == "xi-test"
    assert not [f for f in up if isinstance(f, ErrorFrame)]


def test_letters_map_to_sounds_not_letters():
    chars = list("the shop")
    got = letters_to_visemes(chars, [i * 10.0 for i in range(len(chars))])
    assert [g[2] for g in got] == ["th", "e", " ", "sh", "o", "p"]
    assert [g[1] for g in got] == ["th", "mid", "rest", "ch", "round", "closed"]


async def test_malformed_message_is_reported_and_the_sentence_still_plays():
    async with FakeElevenLabs(malformed_contexts={1}) as fake:
        s = eleven(fake)
        tts = s.provider.factory(s.params, CTX)
        down, up = await run_test(
            tts, frames_to_send=[TTSSpeakFrame("Hello there."), SleepFrame(0.3)]
        )
    assert sum(len(f.audio) for f in audio(down)) == len("Hello there.") * 480 * 2
    assert any("malformed" in f.error for f in up if isinstance(f, ErrorFrame))


async def test_stall_without_fallback_reports_a_timeout_and_the_next_sentence_plays():
    async with FakeElevenLabs(stall_contexts={1}) as fake:
        s = eleven(fake, stall_timeout_s=0.3)
        tts = s.provider.factory(s.params, CTX)
        frames = [
            TTSSpeakFrame("Lost words."),
            SleepFrame(0.6),
            TTSSpeakFrame("Fine."),
            SleepFrame(0.3),
        ]
        down, up = await run_test(tts, frames_to_send=frames)
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and isinstance(errors[0].exception, ProviderTimeout)
    assert sum(len(f.audio) for f in audio(down)) == len("Fine.") * 480 * 2


async def test_stall_falls_back_to_the_offline_voice_for_the_unspoken_text():
    pytest.importorskip("presence.processors.tts.espeak")
    async with FakeElevenLabs(stall_contexts={1}) as fake:
        specs = [eleven(fake, stall_timeout_s=0.3), spec("tts", "espeak")]
        tts = build_with_fallback("tts", specs, CTX)
        frames = [TTSSpeakFrame("Hello from the backup voice."), SleepFrame(1.5)]
        down, up = await run_test(tts, frames_to_send=frames)
    spoken = audio(down)
    assert spoken and not any(is_fake_voice(f) for f in spoken)
    seconds = sum(f.num_frames / f.sample_rate for f in spoken)
    assert seconds > 1.0  # the whole sentence, not a blip
    assert any(f.metadata.get("visemes") for f in spoken)  # espeak's phoneme visemes


async def test_a_dropped_socket_says_the_lost_sentence_again_once_on_the_new_one():
    async with FakeElevenLabs(drop_contexts={1}) as fake:
        s = eleven(fake, stall_timeout_s=1.0)
        tts = s.provider.factory(s.params, CTX)
        frames = [TTSSpeakFrame("Lost words."), SleepFrame(1.5)]
        down, up = await run_test(tts, frames_to_send=frames)
    assert fake.dropped == 1
    said = [t for ctx in fake.contexts.values() for t in ctx.texts]
    assert [t.strip() for t in said] == ["Lost words.", "Lost words."]  # sent again, once
    assert sum(len(f.audio) for f in audio(down)) == len("Lost words.") * 480 * 2  # heard once
    (error,) = [f for f in up if isinstance(f, ErrorFrame)]
    assert "dropped" in error.error and not error.fatal
