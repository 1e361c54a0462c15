"""The shorter encoder window: padded to the speech plus a margin, only where asked."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from faster_whisper import transcribe

from presence.processors.stt.engines.whisper_window import (
    TEMPERATURES,
    available,
    collapse_repeats,
    decode,
    encoder_window,
    looks_looped,
    max_tokens,
)


def padded_frames(frames: int) -> int:
    """How many frames faster-whisper's encoder would get for ``frames`` of speech features."""
    return transcribe.pad_or_trim(np.zeros((80, frames), np.float32)).shape[-1]


def test_the_window_is_the_speech_plus_the_margin_in_whole_seconds_inside_the_block_only():
    assert available()
    assert padded_frames(250) == 3000  # as published
    with encoder_window(3.0):
        assert padded_frames(250) == 600  # 2.5 s + 3 s, rounded up to 6 s
        assert padded_frames(2900) == 3000  # never past the model's window
        assert padded_frames(3400) == 3000  # a longer segment is still cut at 30 s
        other: list[int] = []
        worker = threading.Thread(target=lambda: other.append(padded_frames(250)))
        worker.start()
        worker.join()
        assert other == [3000]  # another thread's decode is untouched
    assert padded_frames(250) == 3000
    with encoder_window(None):
        assert padded_frames(250) == 3000


def test_a_margin_must_be_positive():
    with pytest.raises(ValueError, match="pad_s"), encoder_window(0.0):
        pass


def test_a_looped_utterance_is_spotted_and_a_repeated_sentence_dropped():
    looped = "Okay, how does the face work? Okay, how does the face work? Okay, how does the"
    assert looks_looped(looped)
    assert not looks_looped("Can I run it on my own server? On my own hardware, I mean.")
    assert collapse_repeats("What is a persona? What is a persona?") == "What is a persona?"
    assert collapse_repeats("Hi. Hi. What is it? Is it free?") == "Hi. What is it? Is it free?"


class _RecordingModel:
    """Stands in for faster-whisper's ``WhisperModel``: records what each decode was allowed."""

    def __init__(self):
        self.calls: list[dict] = []

    def transcribe(self, audio, **kwargs):
        self.calls.append(kwargs)
        return iter(()), None


def test_a_decode_is_bounded_in_retries_and_tokens_by_its_audio_length():
    """A garbled half-sentence must not hold the decoder for seconds (six retries × 448 tokens)."""
    model = _RecordingModel()
    decode(model, np.zeros(2 * 16000, np.float32), language="en", beam_size=5, prompt=None,
           pad_s=5.0)  # fmt: skip
    (call,) = model.calls
    assert call["temperature"] == TEMPERATURES and len(TEMPERATURES) <= 2
    assert call["max_new_tokens"] == max_tokens(2 * 16000) < 448
    assert max_tokens(16000 * 10) > max_tokens(16000 * 2)  # longer speech may say more
    assert max_tokens(16000 * 10) >= 10 * 4 * 2  # 4 words a second, two tokens each, still fit
