"""The espeak-ng engine: speech-like audio, streaming, abort, phoneme timing, voice checks."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from presence.framework.errors import ConfigError
from presence.processors.tts.engines.espeak import (
    EspeakEngine,
    available_variants,
    available_voices,
)
from presence.processors.tts.visemes import viseme_for

SENTENCE = (
    "The museum opens at nine in the morning and closes at six, "
    "except on public holidays when it stays closed all day."
)
LONG = " ".join([SENTENCE] * 20)  # about two minutes of speech


@pytest.fixture(scope="module")
def engine() -> EspeakEngine:
    return EspeakEngine()


def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


def test_audio_is_speech_like_and_grows_with_text(engine):
    short = engine.render("Hello there.")
    longer = engine.render(SENTENCE)
    assert short.sample_rate == 22050
    assert 0.4 < short.duration < 3.0
    assert rms(short.audio) > 500 and rms(longer.audio) > 500  # not silence
    assert longer.duration > 3 * short.duration
    # speech has pauses: a sizeable share of 20 ms windows is much quieter than the loudest
    windows = longer.audio[: len(longer.audio) // 441 * 441].reshape(-1, 441)
    energy = np.sqrt(np.mean(windows.astype(np.float64) ** 2, axis=1))
    assert (energy < 0.1 * energy.max()).mean() > 0.05


def test_rate_changes_duration():
    slow = EspeakEngine(rate=120).render(SENTENCE)
    fast = EspeakEngine(rate=300).render(SENTENCE)
    assert fast.duration < 0.6 * slow.duration


def test_phoneme_onsets_are_ordered_and_inside_the_audio(engine):
    utterance = engine.render("Hello mama, how are you doing today?")
    samples = [p.sample for p in utterance.phonemes]
    spoken = [p.phoneme for p in utterance.phonemes if p.phoneme]
    assert len(spoken) >= 15
    assert samples == sorted(samples)
    assert 0 <= samples[0] and samples[-1] <= len(utterance.audio)
    # the first phoneme starts near the start, the last spoken one well before the end
    assert samples[0] < 0.1 * len(utterance.audio)


def test_mama_has_closed_lips_between_open_vowels(engine):
    phonemes = [p.phoneme for p in engine.render("mama").phonemes if p.phoneme]
    visemes = [viseme_for(p) for p in phonemes]
    assert visemes.count("closed") == 2
    assert "open" in visemes
    assert visemes.index("closed") < visemes.index("open")


def test_chunks_are_contiguous_and_phonemes_arrive_with_their_audio(engine):
    chunks = []
    total = engine.synthesize(SENTENCE, chunks.append)
    assert len(chunks) > 10  # streamed in pieces, not one block
    position = 0
    for chunk in chunks:
        assert chunk.start_sample == position
        position += chunk.num_samples
        for phoneme in chunk.phonemes:
            assert phoneme.sample <= position  # never announced before its audio is handed over
    assert position == total


def test_handler_returning_false_stops_synthesis(engine):
    seen = []
    total = engine.synthesize(SENTENCE, lambda chunk: seen.append(chunk) or len(seen) < 3)
    assert len(seen) == 3
    assert total == sum(c.num_samples for c in seen)
    assert total < 0.3 * len(engine.render(SENTENCE).audio)


async def test_stream_yields_first_chunk_long_before_synthesis_ends(engine):
    started = time.perf_counter()
    engine.render(LONG)
    full = time.perf_counter() - started

    started = time.perf_counter()
    stream = engine.stream(LONG)
    first = await anext(stream)
    to_first = time.perf_counter() - started
    await stream.aclose()  # abandon the rest: espeak must stop at its next chunk
    started = time.perf_counter()
    after = await asyncio.to_thread(engine.render, "OK.")  # waits for the espeak lock
    to_free = time.perf_counter() - started

    assert first.start_sample == 0 and first.num_samples > 0
    assert to_first < full / 5
    assert to_free < full / 5
    assert after.duration > 0.1  # espeak still works after an aborted text


async def test_stream_matches_blocking_synthesis(engine):
    streamed = [chunk async for chunk in engine.stream(SENTENCE)]
    whole = engine.render(SENTENCE)
    audio = np.frombuffer(b"".join(c.pcm for c in streamed), dtype=np.int16)
    # espeak adds a little random pitch flutter: lengths differ by a few samples between runs
    assert abs(len(audio) - len(whole.audio)) < 0.001 * len(whole.audio)
    assert [p.phoneme for c in streamed for p in c.phonemes] == [p.phoneme for p in whole.phonemes]


def test_unknown_voice_names_allowed_voices():
    with pytest.raises(ConfigError) as caught:
        EspeakEngine(voice="klingon")
    message = str(caught.value)
    assert "klingon" in message and "en-us" in message and "fr-fr" in message
    assert caught.value.field == "voice"


def test_voices_and_variants():
    voices = available_voices()
    assert {"en-us", "en-gb", "fr-fr", "de", "zh"} <= set(voices)
    assert "fo" not in voices  # listed by espeak, but its dictionary is not shipped
    assert "f3" in available_variants()
    female = EspeakEngine(voice="en-us+f3").render("Hello there.")
    assert female.duration > 0.4
    with pytest.raises(ConfigError, match="variant"):
        EspeakEngine(voice="en-us+nosuchvariant")


def test_every_allowed_voice_speaks():
    silent = []
    for voice in available_voices():
        utterance = EspeakEngine(voice=voice).render("ok 1")
        if utterance.duration < 0.1 or rms(utterance.audio) < 100:
            silent.append(voice)
    assert silent == []


@pytest.mark.parametrize("kwargs", [{"rate": 20}, {"rate": 1000}, {"pitch": 101}])
def test_out_of_range_settings_fail(kwargs):
    with pytest.raises(ConfigError):
        EspeakEngine(**kwargs)


def test_blank_text_gives_no_speech(engine):
    blank = engine.render("   ")
    assert blank.duration < 0.05
    assert not np.any(blank.audio)
    assert all(p.phoneme == "" for p in blank.phonemes)
