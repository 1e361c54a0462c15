"""A shorter encoder window for faster-whisper: the speech plus a few seconds, not always 30 s.

Whisper's encoder is trained on 30 s windows, and faster-whisper pads every segment's features
to 3,000 frames (10 ms each) before encoding. For a 2–4 s question that is most of the decode
time: tiny.en int8 on two cores encoded 30 s in ~350 ms, 10 s in ~36 ms. CTranslate2 encodes a
shorter window as it is; the decoder then attends to the speech and the silence padded after it.

Measured on the conversation benchmark's 82 cached questions (9 synthetic voices, beam 5, a
domain prompt): the full 30 s window gave word error 0.157 at a median 416 ms per question; the
speech plus 0.5 s of padding 0.159, plus 1 s 0.132, plus 3 s 0.113 (~160–200 ms), plus 5 s 0.123,
plus 10 s 0.119. The padding after the speech is what keeps Whisper from truncating or inventing
its last words, so ``pad_s`` should stay at a second or more.

faster-whisper (1.x) has no option for it: ``encoder_window`` swaps the ``pad_or_trim`` its
``transcribe`` module calls for one that, only inside the ``with`` block and only on the calling
thread, pads to the speech plus ``pad_s`` (rounded up to whole seconds, at most the model's
window). Outside the block, or on other threads, faster-whisper behaves as published. When the
installed faster-whisper lacks that hook, the window stays 30 s (``available()`` is False).

No pipecat here.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
from collections.abc import Iterator
from typing import Any

FRAMES_PER_SECOND = 100  # Whisper's mel features: a 160-sample hop at 16 kHz
FULL_WINDOW = 3000  # frames the model was trained on

_local = threading.local()
_lock = threading.Lock()
_original: Any = None


def _windowed(array: Any, length: int = FULL_WINDOW, *, axis: int = -1) -> Any:
    pad = getattr(_local, "pad_frames", None)
    if pad is None or length != FULL_WINDOW:
        return _original(array, length, axis=axis)
    frames = array.shape[axis]
    target = math.ceil((frames + pad) / FRAMES_PER_SECOND) * FRAMES_PER_SECOND
    return _original(array, min(length, target), axis=axis)


def available() -> bool:
    """Whether the installed faster-whisper can encode a shorter window (installs the hook)."""
    global _original
    with _lock:
        if _original is not None:
            return True
        try:
            from faster_whisper import transcribe
        except ImportError:
            return False
        original = getattr(transcribe, "pad_or_trim", None)
        if original is None:
            return False
        _original = original
        transcribe.pad_or_trim = _windowed
        return True


@contextlib.contextmanager
def encoder_window(pad_s: float | None) -> Iterator[None]:
    """Encode ``pad_s`` seconds past the speech (None: the full 30 s) within this block.

    Consume ``transcribe``'s segment generator inside the block: decoding happens as it is read.

    Raises:
        ValueError: ``pad_s`` is not positive.
    """
    if pad_s is None or not available():
        yield
        return
    if pad_s <= 0:
        raise ValueError(f"pad_s must be positive, got {pad_s}")
    before = getattr(_local, "pad_frames", None)
    _local.pad_frames = round(pad_s * FRAMES_PER_SECOND)
    try:
        yield
    finally:
        _local.pad_frames = before


_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def _norm(sentence: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", sentence.lower()).split())


def collapse_repeats(text: str) -> str:
    """Drop a sentence that repeats the one before it ("Is it free? Is it free? Is it free?").

    A short window sometimes makes Whisper loop on the whole utterance; a person almost never
    says the same sentence twice in a row within one turn.
    """
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        if out and _norm(sentence) and _norm(sentence) == _norm(out[-1]):
            continue
        out.append(sentence)
    return " ".join(out)


def looks_looped(text: str, n: int = 4) -> bool:
    """Whether some ``n`` words in a row come twice: the sign of a loop in a short utterance."""
    words = _norm(text).split()
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        if gram in seen:
            return True
        seen.add(gram)
    return False


# A bound on what one decode may cost. faster-whisper's default retries a decode that fails its
# compression or log-probability checks at six temperatures (0.0 … 1.0), each free to generate up
# to 448 tokens; on a garbled half of a sentence (the speculative decode of a pause inside a word)
# that took up to 2.9 s here and held the decoder while the real transcript waited (a turn decided
# 5 s after the user stopped). Two temperatures and ~8 tokens per second of audio (people say 2–4
# words a second) bounded the worst prefix of that question to 0.9 s, and left word error on the
# benchmark's 81 cached questions unchanged (0.1357 with and without).
TEMPERATURES = (0.0, 0.4)
TOKENS_PER_SECOND = 8
MIN_TOKENS = 16


def max_tokens(samples: int, rate: int = 16000) -> int:
    """The most tokens a decode of ``samples`` of audio may generate (see ``TOKENS_PER_SECOND``)."""
    return MIN_TOKENS + int(TOKENS_PER_SECOND * samples / rate)


def decode(model: Any, audio: Any, *, language: str | None, beam_size: int, prompt: str | None,
           pad_s: float | None) -> tuple[list, bool]:  # fmt: skip
    """faster-whisper's segments for ``audio`` (float32, 16 kHz) in a window of speech + ``pad_s``.

    A short-window decode that loops is done again in the full window, as the model was trained.
    Its cost is bounded (``TEMPERATURES``, ``max_tokens``). Blocking: call it off the event loop.

    Returns:
        The segments, and whether the full window had to be used after a loop.
    """

    def run(pad: float | None) -> list:
        with encoder_window(pad):  # decoding runs as the segments are read
            segments, _info = model.transcribe(
                audio, language=language, beam_size=beam_size, initial_prompt=prompt,
                without_timestamps=True, vad_filter=False, condition_on_previous_text=False,
                temperature=TEMPERATURES, max_new_tokens=max_tokens(len(audio)),
            )  # fmt: skip
            return list(segments)

    segments = run(pad_s)
    if pad_s is not None and looks_looped(" ".join(s.text for s in segments)):
        return run(None), True
    return segments, False


def speech_text(segments: list, no_speech_prob: float | None) -> str:
    """The transcript of ``segments``, without those judged silence or noise.

    A segment at least ``no_speech_prob`` likely to be non-speech is dropped, and so is very
    unlikely text in a segment that may be silence (Whisper's usual hallucination).
    """

    def is_speech(segment: Any) -> bool:
        if no_speech_prob is not None and segment.no_speech_prob >= no_speech_prob:
            return False
        return not (segment.avg_logprob < -1.0 and segment.no_speech_prob > 0.3)

    return collapse_repeats(" ".join(s.text.strip() for s in segments if is_speech(s)).strip())
