"""Pieces of Piper's text and audio (pure Python, no pipecat).

Where an answer's first phrase ends, the quiet before a chunk's voice, and the mouth shapes in
Piper's phoneme alignments.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

# Piper reports stress and length marks and word gaps as phonemes of their own: they are not
# mouth shapes, so the previous shape holds through them.
_NOT_A_SHAPE = frozenset("ˈˌːˑ ")
_REST = frozenset("^$_.,;:!?—-…\"'()")
_CLAUSE = re.compile(r"(?<=[,;:—])\s+")
# Words a phrase may start with: a long sentence without clause punctuation is split before one.
_PHRASE_STARTS = frozenset(
    "with without to for from in on at by about into through over under after before because "
    "and but or so which that when while where if than as like".split()
)
_LONG_SENTENCE_WORDS = 8


def piece_key(text: str) -> str:
    """``text`` with its whitespace collapsed: the key a piece's audio is kept under."""
    return " ".join(text.split())


def split_first_clause(text: str, min_words: int) -> list[str]:
    """``text`` as [first phrase, rest] when its first phrase has ``min_words`` or more words.

    Clause punctuation (comma, semicolon, colon, dash) splits first. A long sentence (8 words or
    more) without it splits before the first preposition or conjunction after ``min_words``
    words, where a speaker could pause. Anything else stays whole; ``min_words`` 0 never splits.
    """
    if min_words <= 0:
        return [text]
    text = text.strip()
    parts = _CLAUSE.split(text, maxsplit=1)
    if len(parts) == 2 and len(parts[0].split()) >= min_words and parts[1].strip():
        return parts
    words = text.split()
    if len(words) >= _LONG_SENTENCE_WORDS:
        for i in range(min_words, len(words) - 2):
            if words[i].lower() in _PHRASE_STARTS:
                return [" ".join(words[:i]), " ".join(words[i:])]
    return [text]


def leading_quiet(pcm: bytes, rate: int, *, threshold_dbfs: float = -40.0,
                  keep_s: float = 0.01) -> int:  # fmt: skip
    """Samples of quiet before the voice starts in 16-bit ``pcm``, less ``keep_s`` of lead-in.

    Returns 0 when nothing reaches ``threshold_dbfs`` (a silent chunk is left whole).
    """
    samples = np.frombuffer(pcm, dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) >= 32768 * 10 ** (threshold_dbfs / 20))
    if not loud.size:
        return 0
    return max(0, int(loud[0]) - int(keep_s * rate))


def shapes_of(alignments: Any) -> list[tuple[int, str]]:
    """``(onset_sample, phoneme)`` per mouth shape from Piper's ``phoneme_alignments``.

    Onsets count from the chunk's first sample; pauses and boundaries become ``""`` (rest).
    """
    out: list[tuple[int, str]] = []
    position = 0
    for item in alignments or []:
        phoneme = str(item.phoneme)
        if phoneme not in _NOT_A_SHAPE:
            out.append((position, "" if phoneme in _REST else phoneme))
        position += int(item.num_samples)
    return out
