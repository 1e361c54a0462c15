"""Knowledge-base retrieval: markdown → passages → BM25 index → ranked passages.

Pure Python + numpy, no pipecat. Built for spoken questions that arrive through speech
recognition (misheard words, fillers, greetings, paraphrases); the pieces live in sibling
modules, this one combines them:

* ``text``: lowercased ``[a-z0-9]+`` words, stopwords (question words included), a light
  stemmer (``provider``/``providers``/``provide``), sound keys, negation scope;
* ``question``: fillers, greetings and polite wrappers leave the question first; "what is X?"
  finds X, and "what is this project?" asks about the base's main subject;
* ``passages``: what each passage is indexed under (spoken sentences fully, the rest at
  ``unspoken_weight``; headings; word pairs; negated words; concepts);
* ``query``: each content word of the question is a *slot* that counts once — as itself, as a
  known word spelled or sounding alike (``fuzzy``) at ``fuzzy_weight``, through a concept it
  shares with the passage (``lexicon``: "own server" ~ "host it yourself"), or, when the
  question negates it ("without the cloud"), as a word the passage negates too — whichever
  scores best for that passage. Everyday words ("time") count at ``generic_weight`` and
  cannot make a match on their own.

Bonuses: two adjacent question words that stand together in a passage (``phrase_weight``), a
passage whose heading matches the question (``heading_bonus`` × an idf-weighted F1 overlap),
and a passage that defines exactly what a "what is X?" question asks about
(``definition_bonus``; half for a definition after the opening clause).

Scores are normalised per query to ``[0, 1]``: the BM25 score divided by the best score the
question's slots could reach — a word nobody knows counts as a maximally informative word that
did not match — plus the bonuses, clipped. ``1.0`` means every content word matched a short
passage; nonsense and off-topic questions score near ``0``. This makes one threshold
(``min_score``) meaningful across knowledge bases of any size.

Constraints: a passage is a paragraph (or list) under its heading; headings are indexed with the
passage but not spoken; fenced code blocks are indexed but never spoken. Query cost is
O(slots × passages) numpy work plus cached fuzzy look-ups: about a millisecond at a thousand
passages (``benchmarks/retrieval.py``).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presence.processors.llm.engines.fuzzy import FuzzyMatcher
from presence.processors.llm.engines.lexicon import DEFAULT_LEXICON, ConceptLexicon
from presence.processors.llm.engines.passages import (
    Passage,
    build_postings,
    find_definitions,
    passage_tokens,
)
from presence.processors.llm.engines.query import QueryResolver, Slot
from presence.processors.llm.engines.question import asked_subject, clean_words, is_deictic
from presence.processors.llm.engines.text import (
    STOPWORDS,
    sound_key,
    split_markdown,
    stem,
    terms,
    words,
)

_BUILT_SLOTS = 4  # indexes from_paths keeps (by files and settings)
_BUILT: OrderedDict[tuple, KnowledgeIndex] = OrderedDict()

__all__ = ["KnowledgeIndex", "Passage", "ScoredPassage", "split_markdown", "stem", "terms", "words"]


@dataclass(frozen=True)
class ScoredPassage:
    """A passage with its score in ``[0, 1]`` and its raw BM25 score.

    ``score`` is the normalised lexical score, or the hybrid score when the responder re-ranks
    with sentence embeddings; ``similarity`` is then the passage's semantic similarity (else None).
    """

    passage: Passage
    score: float
    raw: float
    similarity: float | None = None


class KnowledgeIndex:
    """A BM25 index over knowledge-base passages, tuned for spoken questions.

    Args:
        passages: The passages, in order; their ``id`` is their position.
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        fuzzy_cutoff: ``difflib`` similarity a word needs to stand in for an unknown word;
            ``1.0`` disables fuzzy matching.
        fuzzy_weight: Weight of a fuzzy stand-in relative to an exact match.
        concept_weight: Weight of a concept match (shared synonym group) relative to an exact
            match; ``0`` disables concept matching.
        explained_weight: Weight of a concept match for a word the base does not use but the
            lexicon knows ("wifi" ~ offline).
        generic_weight: Weight of an exact match on an everyday word (``lexicon.GENERIC``).
        unknown_weight: Share of the highest idf that a word nobody knows (neither the base nor
            the lexicon) costs in the normalisation: how much an unknown word lowers a score.
        spoken_sentences: Leading sentences of a passage at full weight (what is said aloud).
        unspoken_weight: Weight of the words after them and of code blocks.
        document_weight: Weight of the document's first heading in its other sections.
        phrase_weight: Extra weight (on top of the words' own) when two adjacent content words
            of the question also stand together in a passage ("cloud account").
        heading_bonus: Added to a passage's score times the overlap of its heading and the
            question (idf-weighted F1 in ``[0, 1]``).
        definition_bonus: Added to the score of a passage that opens by defining exactly what a
            "what is X?" question asks about (half for a definition later in the passage).
        lexicon: The concept lexicon (``lexicon.DEFAULT_LEXICON``).

    """

    def __init__(
        self,
        passages: Sequence[Passage],
        *,
        k1: float = 1.2,
        b: float = 0.75,
        fuzzy_cutoff: float = 0.8,
        fuzzy_weight: float = 0.6,
        concept_weight: float = 0.4,
        explained_weight: float = 0.8,
        generic_weight: float = 0.5,
        unknown_weight: float = 1.0,
        spoken_sentences: int = 2,
        unspoken_weight: float = 0.5,
        phrase_weight: float = 0.3,
        document_weight: float = 0.5,
        heading_bonus: float = 0.15,
        definition_bonus: float = 0.25,
        lexicon: ConceptLexicon = DEFAULT_LEXICON,
    ):
        self.passages: list[Passage] = list(passages)
        self.k1 = k1
        self.heading_bonus = heading_bonus
        self.phrase_weight = phrase_weight
        self.definition_bonus = definition_bonus
        n = len(self.passages)
        counts, lengths, headings = passage_tokens(
            self.passages,
            spoken_sentences=spoken_sentences,
            unspoken_weight=unspoken_weight,
            document_weight=document_weight,
            lexicon=lexicon,
        )
        avgdl = float(lengths.mean()) if n and lengths.sum() else 1.0
        self._max_idf = float(np.log1p((n - 0.5) / 1.5)) if n else 0.0
        norm = k1 * (1.0 - b + b * lengths / avgdl)
        self._idf, self._postings = build_postings(counts, norm, k1)
        # Headings: which passages' heading holds a term or concept, and each heading's weight.
        heading_ids: dict[str, list[int]] = defaultdict(list)
        self._heading_weight = np.zeros(n, dtype=np.float64)
        for i, heading in enumerate(headings):
            for t in heading:
                heading_ids[t].append(i)
                if not t.startswith("~"):
                    self._heading_weight[i] += self._idf.get(t, 0.0)
        self._heading_ids = {t: np.asarray(ids, dtype=np.int64) for t, ids in heading_ids.items()}
        self._defines, self._main_subject = find_definitions(self.passages)
        # Fuzzy stand-ins: spellings (stems) and sound keys of the base's own words.
        sounds: dict[str, str] = {}
        for p in self.passages:
            for w in words(f"{p.title} {p.text}"):
                t = stem(w)
                if w not in STOPWORDS and t in self._postings:
                    sounds.setdefault(sound_key(w), t)
        plain_terms = (t for t in self._postings if t[0] not in "~!" and " " not in t)
        self._fuzzy = FuzzyMatcher(plain_terms, sounds, cutoff=fuzzy_cutoff)
        self._resolver = QueryResolver(
            idf=self._idf,
            max_idf=self._max_idf,
            fuzzy=self._fuzzy,
            lexicon=lexicon,
            fuzzy_weight=fuzzy_weight,
            concept_weight=concept_weight,
            explained_weight=explained_weight,
            generic_weight=generic_weight,
            unknown_weight=unknown_weight,
        )

    @classmethod
    def from_markdown(cls, documents: Iterable[tuple[str, str]], **kwargs) -> KnowledgeIndex:
        """Build an index from ``(source_name, markdown_text)`` pairs."""
        passages: list[Passage] = []
        for source, text in documents:
            for part in split_markdown(text):
                passages.append(Passage(len(passages), source, *part))
        return cls(passages, **kwargs)

    @classmethod
    def from_paths(cls, paths: Iterable[Path], **kwargs) -> KnowledgeIndex:
        """Build an index from markdown files and folders (searched recursively for ``*.md``).

        The last few indexes built are kept, by their files' paths, sizes and modification times
        and by ``kwargs``: a session whose offline responder and cloud LLM both read the same
        knowledge base (a large one takes seconds to index) builds it once.

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
        stats = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        defaults = {
            name: param.default for name, param in inspect.signature(cls).parameters.items()
        }
        given = sorted(
            (k, id(v) if k == "lexicon" else v) for k, v in kwargs.items() if defaults.get(k) != v
        )
        key = (cls, stats, tuple(given))
        if key in _BUILT:
            _BUILT.move_to_end(key)
            return _BUILT[key]
        index = cls.from_markdown(
            ((f.stem, f.read_text(encoding="utf-8")) for f in files), **kwargs
        )
        _BUILT[key] = index
        while len(_BUILT) > _BUILT_SLOTS:
            _BUILT.popitem(last=False)
        return index

    def __len__(self) -> int:
        return len(self.passages)

    @property
    def vocabulary_size(self) -> int:
        """Number of distinct index terms (concept, negation and phrase tokens excluded)."""
        return sum(t[0] not in "~!" and " " not in t for t in self._postings)

    @property
    def main_subject(self) -> str:
        """What the knowledge base is about: the subject its first passage defines ("" if none)."""
        return " ".join(self._main_subject)

    def clear_cache(self) -> None:
        """Forget cached fuzzy look-ups."""
        self._fuzzy.clear_cache()

    def query_slots(self, query: str) -> tuple[list[Slot], tuple[str, ...] | None]:
        """Resolve a question into slots, and the terms a "what is X?" question asks about."""
        ws = clean_words(query)
        found = asked_subject(ws)
        subject: list[str] = []
        if found is not None:
            (start, end), frame = found
            subject = ws[start:end]
            if is_deictic(subject) and self._main_subject:
                # "what does this project do?" asks about what the knowledge base is about
                ws = ws[:start] + self._main_subject + ws[end:]
                subject = list(self._main_subject)
            if frame is not None:  # frame words come before the subject
                ws = ws[: frame[0]] + ws[frame[1] :]
        slots = self._resolver.resolve(ws)
        asked = None
        if subject:
            resolved = self._resolver.resolve(subject)
            if resolved and all(s.term for s in resolved):  # every subject word is known
                asked = tuple(sorted({s.term for s in resolved}))
        return slots, asked

    def score(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Normalised and raw scores of every passage for ``query`` (two arrays of ``len(self)``)."""
        n = len(self.passages)
        raw_scores = np.zeros(n, dtype=np.float64)
        slots, asked = self.query_slots(query)
        best = sum(s.ref for s in slots) * (self.k1 + 1.0)
        if best <= 0.0 or not n:
            return np.zeros_like(raw_scores), raw_scores
        overlap = np.zeros(n, dtype=np.float64)
        evidence = np.zeros(n, dtype=np.float64)  # from words that are not everyday words
        for slot in slots:
            contribution = self._slot_scores(slot, n)
            raw_scores += contribution
            if not slot.generic:
                evidence += contribution
            if self.heading_bonus:
                overlap += self._heading_overlap(slot, n)
        if self.phrase_weight:
            for a, b in zip(slots, slots[1:], strict=False):  # words that stand together
                pair = self._postings.get(f"{a.term} {b.term}") if a.term and b.term else None
                if pair is not None:
                    raw_scores[pair[0]] += self.phrase_weight * pair[1]
        norm = raw_scores / best
        if self.heading_bonus:
            query_weight = sum(s.ref for s in slots)
            denominator = self._heading_weight + query_weight
            f1 = np.divide(2.0 * overlap, denominator, out=np.zeros(n), where=denominator > 0)
            norm += self.heading_bonus * np.minimum(f1, 1.0)
        if asked and self.definition_bonus:
            for pid, share in self._defines.get(asked, ()):
                norm[pid] += self.definition_bonus * share
        norm[evidence <= 0.0] = 0.0  # bonuses or everyday words alone never make a match
        return np.clip(norm, 0.0, 1.0), raw_scores

    def _slot_scores(self, slot: Slot, n: int) -> np.ndarray:
        """Per-passage BM25 contribution of one slot: its best alternative for each passage."""
        out = np.zeros(n, dtype=np.float64)
        for token, weight in slot.alternatives:
            ids, contrib = self._postings[token]
            out[ids] = np.maximum(out[ids], weight * contrib)
        return out

    def _heading_overlap(self, slot: Slot, n: int) -> np.ndarray:
        """Per-passage share of one slot in the heading (idf units, concepts at their weight)."""
        out = np.zeros(n, dtype=np.float64)
        for token, weight in slot.alternatives:
            ids = self._heading_ids.get(token)
            if ids is not None:
                value = weight * (slot.ref if token.startswith("~") else self._idf[token])
                out[ids] = np.maximum(out[ids], value)
        return out

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
        return self.rank(norm, raw_scores, k, min_score)

    def rank(
        self,
        scores: np.ndarray,
        raw: np.ndarray,
        k: int = 3,
        min_score: float = 0.0,
        similarity: np.ndarray | None = None,
    ) -> list[ScoredPassage]:
        """Turn per-passage ``scores`` into the ``k`` best passages above ``min_score``, best first.

        Ties go to the passage that comes first in the base. ``raw`` and ``similarity`` (optional)
        are per-passage arrays carried into the result.
        """
        if not self.passages or k <= 0:
            return []
        k = min(k, len(self.passages))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]  # by score, then by position in the base
        return [
            ScoredPassage(
                self.passages[i],
                float(scores[i]),
                float(raw[i]),
                None if similarity is None else float(similarity[i]),
            )
            for i in top
            if scores[i] > min_score
        ]
