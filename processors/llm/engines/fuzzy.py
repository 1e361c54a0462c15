"""Fuzzy word matching for misheard words: a known term spelled or sounding alike.

Pure Python (no pipecat). Speech recognition swaps words for near-homophones ("sink" for
"sync", "presents" for "presence", "right" for "write"); ``FuzzyMatcher.near`` maps such a word
to the knowledge base's term whose stem or rough phonetic key (``text.sound_key``) is most alike
by ``difflib`` ratio, if that ratio reaches the cutoff.

Cost: candidates are bucketed by initial letter and length, and only lengths that can reach the
cutoff are compared (``2·min/(len_a+len_b) ≥ cutoff``); one ``SequenceMatcher`` caches the
query side. A cold look-up over a 5,000-term vocabulary takes well under a millisecond; results
are cached (bounded).
"""

from __future__ import annotations

import difflib
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from presence.processors.llm.engines.text import sound_key


class _Buckets:
    """Strings grouped by (initial, length) for cutoff-bounded scans."""

    def __init__(self, items: Iterable[str]):
        self._by: dict[tuple[str, int], list[str]] = defaultdict(list)
        for s in items:
            if s:
                self._by[(s[0], len(s))].append(s)

    def best(self, s: str, cutoff: float) -> tuple[float, str] | None:
        if not s:
            return None
        n = len(s)
        lo = max(1, math.ceil(n * cutoff / (2.0 - cutoff) - 1e-9))
        hi = math.floor(n * (2.0 - cutoff) / cutoff + 1e-9)
        m = difflib.SequenceMatcher(None, autojunk=False)
        m.set_seq2(s)
        best: tuple[float, str] | None = None
        for length in range(lo, hi + 1):
            for candidate in self._by.get((s[0], length), ()):
                m.set_seq1(candidate)
                if m.quick_ratio() >= cutoff:
                    r = m.ratio()
                    if r >= cutoff and (best is None or r > best[0]):
                        best = (r, candidate)
        return best


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


class FuzzyMatcher:
    """Maps an unknown word to a known term that is spelled or sounds alike.

    Args:
        terms: Known index terms (stems).
        sounds: Sound key -> the term it came from (``text.sound_key`` of the unstemmed word).
        cutoff: ``difflib`` ratio a candidate needs; ``1.0`` disables matching.
        spelling_cutoff: The (higher) ratio a candidate needs when only the spelling is alike.
        cache_size: Look-ups remembered before the cache is cleared.

    """

    def __init__(
        self,
        terms: Iterable[str],
        sounds: Mapping[str, str],
        *,
        cutoff: float = 0.8,
        spelling_cutoff: float = 0.85,
        cache_size: int = 4096,
    ):
        self.cutoff = cutoff
        self.spelling_cutoff = spelling_cutoff
        self._terms = _Buckets(terms)
        self._sound_to_term = dict(sounds)
        self._sounds = _Buckets(self._sound_to_term)
        self._cache: dict[str, str | None] = {}
        self._cache_size = cache_size

    def clear_cache(self) -> None:
        """Forget cached look-ups (benchmarks time cold look-ups this way)."""
        self._cache.clear()

    def near(self, word: str, term: str) -> str | None:
        """Return the known term most like ``word`` (whose stem is ``term``), or None.

        Words shorter than three letters never match: too many short words look alike.
        """
        if self.cutoff >= 1.0 or len(word) < 3 or not term:
            return None
        if word not in self._cache:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[word] = self._search(word, term)
        return self._cache[word]

    def _search(self, word: str, term: str) -> str | None:
        # a spelling neighbour must be closer than a sound-alike: "weath(er)" is not "watch"
        best = self._terms.best(term, max(self.cutoff, self.spelling_cutoff))
        key = sound_key(word)
        if len(key) >= 2:
            # short keys collide easily ("prs" ~ "prsn"): below five letters, demand more
            cutoff = self.cutoff if len(key) >= 5 else max(self.cutoff, 0.9)
            by_sound = self._sounds.best(key, cutoff)
            if by_sound and (best is None or by_sound[0] > best[0]):
                candidate = self._sound_to_term[by_sound[1]]
                # the stems must sound alike too: "sing" ~ "swaying" (both "sng"), not ~ "sway"
                if _ratio(sound_key(term), sound_key(candidate)) >= self.cutoff:
                    best = (by_sound[0], candidate)
        return best[1] if best else None
