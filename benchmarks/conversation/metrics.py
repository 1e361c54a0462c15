"""What the conversation benchmark measures, from what a user gets back: text and an MP4.

Pure functions on strings and numpy arrays (plus PyAV to read the MP4), each testable alone:

* ``word_error``: WER of what the pipeline heard against what was said, after ``normalize``
  (lower case, no punctuation, contractions expanded, digits spelled out, hesitations such as
  "um" dropped on both sides);
* ``judge_answer``: a reply is right when, among every passage of the knowledge base, the one
  whose words it shares most (as a share of the reply's content words) is an expected passage,
  and that share is at least ``MIN_OVERLAP``;
* ``decode_audio``: the MP4's audio track as mono float samples on the session timeline (each
  decoded frame placed at its pts, so encoder priming does not shift it);
* ``onsets``/``first_onset_after``: where persona speech starts: an audible sample
  (``|x| >= AUDIBLE``) after at least ``QUIET_S`` without one;
* ``overlap_s``: how much persona audio was audible while the user was speaking (talked over).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

AUDIBLE = 0.02  # |sample| (full scale 1.0) that counts as audible persona audio: −34 dBFS
QUIET_S = 0.15  # silence before an audible sample that makes it the onset of speech
WINDOW_S = 0.01
MIN_OVERLAP = 0.5
HESITATIONS = frozenset({"um", "uh", "er", "erm", "hmm", "mm", "ah", "uhm", "umm"})
_CONTRACTIONS = {
    "what's": "what is", "it's": "it is", "that's": "that is", "there's": "there is",
    "i'm": "i am", "i've": "i have", "i'd": "i would", "i'll": "i will", "you're": "you are",
    "don't": "do not", "doesn't": "does not", "can't": "can not", "cannot": "can not",
    "isn't": "is not", "won't": "will not", "let's": "let us", "how's": "how is",
    "where's": "where is", "who's": "who is", "okay": "ok",
}  # fmt: skip
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """``n`` (0–999,999) in English words: 21 → "twenty one"; larger numbers digit by digit."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + number_words(rest))
    if n < 1_000_000:
        rest = n % 1000
        return (
            number_words(n // 1000) + " thousand" + ("" if rest == 0 else " " + number_words(rest))
        )
    return " ".join(_ONES[int(d)] for d in str(n))


def normalize(text: str) -> list[str]:
    """Words for word error: lower case, punctuation dropped, numbers spelled, fillers removed."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(\d+)\.(\d+)", lambda m: f"{m[1]} point {' '.join(m[2])}", text)
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m[0]))} ", text)
    out: list[str] = []
    for word in re.findall(r"[a-z']+", text.replace("-", " ")):
        word = word.strip("'")
        for w in _CONTRACTIONS.get(word, word).split():
            if w and w not in HESITATIONS:
                out.append(w)
    return out


def word_error(reference: str, hypothesis: str) -> dict:
    """Word error of ``hypothesis`` against ``reference`` (both normalised).

    Returns:
        ``{"wer", "substitutions", "deletions", "insertions", "reference_words"}``; ``wer`` is
        (S + D + I) / N, so an empty hypothesis scores 1.0 and insertions can push it above 1.
    """
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return {"wer": float(bool(hyp)), "substitutions": 0, "deletions": 0,
                "insertions": len(hyp), "reference_words": 0}  # fmt: skip
    if not hyp:
        return {"wer": 1.0, "substitutions": 0, "deletions": len(ref), "insertions": 0,
                "reference_words": len(ref)}  # fmt: skip
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return {
        "wer": round(float(out.wer), 4),
        "substitutions": int(out.substitutions),
        "deletions": int(out.deletions),
        "insertions": int(out.insertions),
        "reference_words": len(ref),
    }


# -- answered right ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PassageRef:
    """A knowledge-base passage as the questions file names it: ``"<file stem>#<heading>"``."""

    key: str
    terms: frozenset[str]


def passage_refs(index) -> list[PassageRef]:
    """Every passage of a ``KnowledgeIndex`` with its content terms (heading included)."""
    from presence.processors.llm.engines.text import terms

    return [
        PassageRef(f"{p.source}#{p.title}", frozenset(terms(f"{p.title} {p.text}")))
        for p in index.passages
    ]


def judge_answer(reply: str, expect: Iterable[str], passages: list[PassageRef]) -> dict:
    """Whether ``reply`` answers from one of the ``expect`` passages.

    The reply's content terms (the retrieval module's ``terms``: stemmed, stopwords dropped) are
    compared with each passage's; the passage sharing the largest share of them is the one the
    reply came from. Right when an expected passage is among the best and the share is at least
    ``MIN_OVERLAP`` (a fallback answer or small talk shares little with any passage).

    Returns:
        ``{"right", "best", "overlap", "expected_overlap"}``: ``best`` the best passage's key
        (None for an empty reply), ``overlap`` its share, ``expected_overlap`` the best share
        among the expected passages.
    """
    from presence.processors.llm.engines.text import terms

    expect = set(expect)
    words = set(terms(reply or ""))
    if not words or not passages:
        return {"right": False, "best": None, "overlap": 0.0, "expected_overlap": 0.0}
    shares = [len(words & p.terms) / len(words) for p in passages]
    best = max(shares)
    winners = [p.key for p, s in zip(passages, shares, strict=True) if s == best]
    expected = max(
        (s for p, s in zip(passages, shares, strict=True) if p.key in expect), default=0.0
    )
    best_key = next((k for k in winners if k in expect), winners[0])
    return {
        "right": bool(best >= MIN_OVERLAP and best_key in expect),
        "best": best_key,
        "overlap": round(best, 3),
        "expected_overlap": round(expected, 3),
    }


# -- the persona's audio -----------------------------------------------------------------------


def decode_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """The first audio track of ``path`` as mono float32 on the media timeline, and its rate.

    Each decoded frame is placed at its presentation time (samples before 0 are dropped, gaps
    are zeros), so sample ``i`` is at ``i / rate`` seconds of the session.
    """
    import av

    pieces: list[tuple[int, np.ndarray]] = []
    rate = 0
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return np.zeros(0, np.float32), 0
        stream = container.streams.audio[0]
        for frame in container.decode(stream):
            rate = frame.sample_rate
            raw = frame.to_ndarray()
            data = raw.astype(np.float32) / (32768.0 if raw.dtype.kind in "iu" else 1.0)
            channels = len(frame.layout.channels)
            if frame.format.is_planar:
                mono = data.reshape(channels, -1).mean(axis=0)
            else:
                mono = data.reshape(-1, channels).mean(axis=1)
            start = (
                round(float(frame.pts * frame.time_base) * rate) if frame.pts is not None else None
            )
            pieces.append((start, mono))
    if not pieces:
        return np.zeros(0, np.float32), rate
    cursor, spans = 0, []
    for start, mono in pieces:
        start = cursor if start is None else start
        spans.append((start, mono))
        cursor = start + mono.size
    end = max(s + m.size for s, m in spans)
    out = np.zeros(max(0, end), np.float32)
    for start, mono in spans:
        if start < 0:
            mono, start = mono[-start:], 0
        out[start : start + mono.size] = mono
    return out, rate


def onsets(
    audio: np.ndarray, rate: int, *, level: float = AUDIBLE, quiet_s: float = QUIET_S
) -> np.ndarray:
    """Times (s) where speech starts: an audible sample after ``quiet_s`` of inaudible audio."""
    loud = np.flatnonzero(np.abs(audio) >= level)
    if loud.size == 0:
        return np.zeros(0)
    gaps = np.diff(loud) > quiet_s * rate
    starts = np.concatenate([loud[:1], loud[1:][gaps]])
    return starts / rate


def first_onset_after(audio: np.ndarray, rate: int, t: float, **kw) -> float | None:
    """The first speech onset at or after ``t`` seconds (see ``onsets``), or None."""
    found = onsets(audio, rate, **kw) if rate else np.zeros(0)
    later = found[found >= t - 1e-9]
    return float(later[0]) if later.size else None


def overlap_s(
    audio: np.ndarray, rate: int, start: float, end: float, *, level: float = AUDIBLE
) -> float:
    """Seconds of audible persona audio (10 ms windows with a sample at ``level``) in [start, end)."""
    if not rate or end <= start:
        return 0.0
    win = max(1, round(WINDOW_S * rate))
    a, b = max(0, round(start * rate)), min(audio.size, round(end * rate))
    seg = np.abs(audio[a:b])
    n = seg.size // win
    if n == 0:
        return 0.0
    loud = seg[: n * win].reshape(n, win).max(axis=1) >= level
    return float(loud.sum() * win / rate)


# -- summary -----------------------------------------------------------------------------------


def percentiles(values: Iterable[float | None]) -> dict:
    """p50/p95 (and mean, n) of the values that are not None."""
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return {"p50": None, "p95": None, "mean": None, "n": 0}
    p50, p95 = np.percentile(vals, [50, 95])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1),
            "mean": round(float(vals.mean()), 1), "n": int(vals.size)}  # fmt: skip
