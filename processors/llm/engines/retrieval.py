"""Knowledge-base retrieval: markdown → passages → BM25 index → ranked passages.

Pure Python + numpy, no pipecat. Built for spoken questions that arrive through speech
recognition, so matching is on keywords and tolerant of small recognition errors (text
normalisation lives in ``text``):

* text is lowercased, split into ``[a-z0-9]+`` words, stopwords (including question words) are
  dropped and a light suffix stemmer folds ``provider``/``providers``/``provide``;
* a query word the knowledge base never uses is mapped to a known word that is spelled or sounds
  alike (``difflib`` ratio ≥ ``fuzzy_cutoff`` on the stem or on a rough phonetic key: ``sink`` →
  ``sync``, ``right`` → ``write``), at reduced weight;
* up to four adjacent query words that join into a known word count as that word (``pipe cat``
  → ``pipecat``, ``web r t c`` → ``webrtc``);
* a "what is X?" question gives a bonus to passages that open by defining X ("X is ...").

Scores are normalised per query to ``[0, 1]``: the BM25 score divided by the best score the
query's words could reach, where a word the knowledge base does not know counts as a maximally
informative word that did not match. ``1.0`` means every content word of the question matched a
short passage; nonsense scores ``0``. This makes one threshold (``min_score``) meaningful across
knowledge bases of any size.

Constraints: a passage is a paragraph (or list) under its heading; headings are indexed with the
passage (twice for a section's first passage) but not spoken. Fenced code blocks are indexed but
never spoken.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presence.processors.llm.engines.text import (
    STOPWORDS,
    sound_key,
    split_markdown,
    stem,
    terms,
    words,
)

__all__ = ["KnowledgeIndex", "Passage", "ScoredPassage", "split_markdown", "stem", "terms", "words"]

# "Presence is ...", "The warp renderer is ...": the subject of a defining sentence (≤ 5 words).
_DEFINITION = re.compile(r"^((?:[\w'-]+ ){1,5}?)(?:is|are)\b", re.IGNORECASE)
# "what is X", "what's an X", "who are X", "what does X do": the subject asked about.
_QUESTIONS = (
    re.compile(r"^(?:what|who)\s+(?:does|do)\s+(?:a |an |the )?(.+?)\s+do\s*\??$", re.IGNORECASE),
    re.compile(
        r"^(?:so |and |ok |okay )?(?:what|who|whats|what's)\s*(?:is|are|'s|s)?\s+(?:a |an |the )?(.+?)\s*\??$",
        re.IGNORECASE,
    ),
)


def _asked_subject(query: str) -> str | None:
    for pattern in _QUESTIONS:
        found = pattern.match(query.strip())
        if found:
            return found.group(1)
    return None


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of the knowledge base.

    Attributes:
        id: Position in the index.
        source: Name of the document it came from (file stem).
        title: The nearest heading above it (empty when none).
        text: Speakable text (markdown stripped, code blocks removed).
        keywords: Extra indexed text that is not spoken (code blocks).

    """

    id: int
    source: str
    title: str
    text: str
    keywords: str = ""


@dataclass(frozen=True)
class ScoredPassage:
    """A passage with its normalised score in ``[0, 1]`` and its raw BM25 score."""

    passage: Passage
    score: float
    raw: float


class KnowledgeIndex:
    """A BM25 index over knowledge-base passages.

    Args:
        passages: The passages, in order; their ``id`` is their position.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        fuzzy_cutoff: ``difflib`` similarity a query word needs to stand in for an unknown
            word; ``1.0`` disables fuzzy matching.
        fuzzy_weight: Weight of a fuzzy stand-in relative to an exact match.
        definition_bonus: Added to the normalised score of a passage that opens by defining
            exactly what a "what is X?" question asks about.

    Query cost is O(postings of the query's terms): well under a millisecond for a thousand
    passages. Build cost is linear in the size of the knowledge base.

    """

    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        fuzzy_cutoff: float = 0.8,
        fuzzy_weight: float = 0.6,
        definition_bonus: float = 0.25,
    ):
        self.passages: list[Passage] = list(passages)
        self.k1 = k1
        self.fuzzy_cutoff = fuzzy_cutoff
        self.fuzzy_weight = fuzzy_weight
        self.definition_bonus = definition_bonus
        n = len(self.passages)
        counts: list[Counter[str]] = []
        previous: tuple[str, str] | None = None
        for p in self.passages:
            c = Counter(terms(p.text) + terms(p.keywords))
            # A heading word says what the passage is about; the lead paragraph of a section
            # gets it twice, so that it answers a question that repeats the heading.
            lead = (p.source, p.title) != previous
            previous = (p.source, p.title)
            for t in terms(p.title):
                c[t] += 2 if lead else 1
            counts.append(c)
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        avgdl = float(lengths.mean()) if n and lengths.sum() else 1.0
        postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        for i, c in enumerate(counts):
            for t, tf in c.items():
                ids, tfs = postings[t]
                ids.append(i)
                tfs.append(tf)
        self._max_idf = float(np.log1p((n - 0.5) / 1.5)) if n else 0.0
        self._idf: dict[str, float] = {}
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        norm = k1 * (1.0 - b + b * lengths / avgdl)
        for t, (ids, tfs) in postings.items():
            ids_a = np.asarray(ids, dtype=np.int64)
            tf_a = np.asarray(tfs, dtype=np.float64)
            idf = float(np.log1p((n - len(ids) + 0.5) / (len(ids) + 0.5)))
            self._idf[t] = idf
            # Precomputed per-posting BM25 contribution: a query is a sum of gathers.
            self._postings[t] = (ids_a, idf * tf_a * (k1 + 1.0) / (tf_a + norm[ids_a]))
        # Definitions: passages whose text opens with "<subject> is/are ..." answer "what is X?".
        self._defines: dict[tuple[str, ...], list[int]] = defaultdict(list)
        for p in self.passages:
            opening = _DEFINITION.match(p.text)
            subject = tuple(sorted(set(terms(opening.group(1))))) if opening else ()
            if subject:  # "It is ..." defines nothing
                self._defines[subject].append(p.id)
        # Fuzzy candidates, grouped by initial letter: spellings (stems) and sound keys.
        self._by_initial: dict[str, list[str]] = defaultdict(list)
        for t in self._postings:
            self._by_initial[t[0]].append(t)
        self._sound_to_term: dict[str, str] = {}
        for p in self.passages:
            for w in words(f"{p.title} {p.text}"):
                t = stem(w)
                if w not in STOPWORDS and t in self._postings:
                    self._sound_to_term.setdefault(sound_key(w), t)
        self._near_cache: dict[str, str | None] = {}
        self._sounds_by_initial: dict[str, list[str]] = defaultdict(list)
        for key in self._sound_to_term:
            self._sounds_by_initial[key[0]].append(key)

    @classmethod
    def from_markdown(cls, documents: Iterable[tuple[str, str]], **kwargs) -> KnowledgeIndex:
        """Build an index from ``(source_name, markdown_text)`` pairs."""
        passages: list[Passage] = []
        for source, text in documents:
            for title, body, keywords in split_markdown(text):
                passages.append(Passage(len(passages), source, title, body, keywords))
        return cls(passages, **kwargs)

    @classmethod
    def from_paths(cls, paths: Iterable[Path], **kwargs) -> KnowledgeIndex:
        """Build an index from markdown files and folders (searched recursively for ``*.md``).

        Raises:
            FileNotFoundError: A path does not exist.

        """
        files: list[Path] = []
        for path in paths:
            path = Path(path)
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*.md") if p.is_file()))
            elif path.is_file():
                files.append(path)
            else:
                raise FileNotFoundError(path)
        return cls.from_markdown(((f.stem, f.read_text(encoding="utf-8")) for f in files), **kwargs)

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def vocabulary_size(self) -> int:
        """Number of distinct index terms."""
        return len(self._postings)

    def query_terms(self, query: str) -> list[tuple[str, float, float]]:
        """Resolve a query into ``(index_term, weight, reference_idf)`` triples.

        ``index_term`` is empty for a word the index cannot match even fuzzily; it still counts
        in the normalisation with the highest idf, so unmatched words lower the score.
        """
        raw = words(query)
        out: list[tuple[str, float, float]] = []
        i = 0
        while i < len(raw):
            for span in (4, 3, 2):  # "pipe cat" -> pipecat, "web r t c" -> webrtc
                glued = stem("".join(raw[i : i + span])) if i + span <= len(raw) else ""
                if glued in self._postings:
                    out.append((glued, 1.0, self._idf[glued]))
                    i += span
                    break
            else:
                out.extend(self._resolve(raw[i]))
                i += 1
        return out

    def _resolve(self, word: str) -> list[tuple[str, float, float]]:
        if word in STOPWORDS:
            return []
        t = stem(word)
        if t in self._postings:
            return [(t, 1.0, self._idf[t])]
        if len(word) == 1:
            return []  # a stray letter from speech recognition says nothing
        near = self._near(word, t)
        if near:
            return [(near, self.fuzzy_weight, self._idf[near])]
        return [("", 0.0, self._max_idf)]

    def _near(self, word: str, t: str) -> str | None:
        """Return a known term spelled or sounding like ``word`` (ratio ≥ ``fuzzy_cutoff``), or None."""
        if self.fuzzy_cutoff >= 1.0 or len(word) < 3:
            return None
        if word not in self._near_cache:
            if len(self._near_cache) >= 4096:
                self._near_cache.clear()
            self._near_cache[word] = self._search_near(word, t)
        return self._near_cache[word]

    def _search_near(self, word: str, t: str) -> str | None:
        best: tuple[float, str] | None = None
        for candidate in self._by_initial.get(t[0], ()):
            m = difflib.SequenceMatcher(None, t, candidate)
            if m.real_quick_ratio() >= self.fuzzy_cutoff and m.quick_ratio() >= self.fuzzy_cutoff:
                r = m.ratio()
                if r >= self.fuzzy_cutoff and (best is None or r > best[0]):
                    best = (r, candidate)
        key = sound_key(word)
        if len(key) >= 2:
            for candidate in self._sounds_by_initial.get(key[0], ()):
                m = difflib.SequenceMatcher(None, key, candidate)
                if (
                    m.real_quick_ratio() >= self.fuzzy_cutoff
                    and m.quick_ratio() >= self.fuzzy_cutoff
                ):
                    r = m.ratio()
                    if r >= self.fuzzy_cutoff and (best is None or r > best[0]):
                        best = (r, self._sound_to_term[candidate])
        return best[1] if best else None

    def score(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Normalised and raw scores of every passage for ``query`` (two arrays of ``len(self)``)."""
        raw_scores = np.zeros(len(self.passages), dtype=np.float64)
        best = 0.0
        for t, weight, ref_idf in self.query_terms(query):
            best += ref_idf * (self.k1 + 1.0)
            if t:
                ids, contrib = self._postings[t]
                raw_scores[ids] += weight * contrib
        if best <= 0.0:
            return np.zeros_like(raw_scores), raw_scores
        norm = raw_scores / best
        asked = _asked_subject(query) if self._defines else None
        if asked:
            subject = tuple(sorted({t for t, _, _ in self.query_terms(asked) if t}))
            ids = self._defines.get(subject) if subject else None
            if ids:
                norm[ids] += self.definition_bonus
        return np.clip(norm, 0.0, 1.0), raw_scores

    def top_passages(self, query: str, k: int = 3, min_score: float = 0.0) -> list[ScoredPassage]:
        """Return the ``k`` best passages for ``query``, best first, each scoring above ``min_score``.

        Args:
            query: Free text, e.g. a speech-recognised question.
            k: How many passages at most.
            min_score: Normalised score a passage must exceed (``0`` keeps any match).

        Returns:
            Up to ``k`` scored passages; empty when nothing matches.

        """
        if not self.passages or k <= 0:
            return []
        norm, raw_scores = self.score(query)
        k = min(k, len(self.passages))
        top = np.argpartition(-norm, k - 1)[:k] if k < len(norm) else np.arange(len(norm))
        top = top[np.lexsort((top, -norm[top]))]  # by score, then by position in the base
        return [
            ScoredPassage(self.passages[i], float(norm[i]), float(raw_scores[i]))
            for i in top
            if norm[i] > min_score
        ]
