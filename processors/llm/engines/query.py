"""Resolving a cleaned question into scoring slots for ``retrieval.KnowledgeIndex``.

Pure Python (no pipecat, no numpy). A *slot* is one content word of the question (or several
words glued into one known term): it is counted once in the normalisation, with ``ref`` — the
idf it would contribute if it matched — and it may be matched by any of its ``alternatives``
(index tokens with a weight): the word itself, a fuzzy stand-in for a misheard word, or a
concept token (``"~name"``) from the lexicon. The index scores each passage by the best
alternative of each slot.

Rules, in order, for each position of the question:

1. up to four adjacent words that join into a known term become one slot (``pipe cat`` →
   ``pipecat``; spoken letters too: ``web our tea sea`` → ``webrtc``); two words, one of them
   unknown, that join into a word spelled like a known term become a fuzzy slot (``pipe kat``);
2. a stopword or a stray letter is no slot (but may still be part of a concept phrase);
3. a known word is an exact slot; an everyday word (``lexicon.GENERIC``) counts at
   ``generic_weight`` (in the match and in the normalisation) and cannot make a match alone;
4. an unknown word that no concept phrase explains is replaced by a known word that is
   spelled or sounds alike (never for everyday words, which are not misheard domain words);
5. a word the question negates ("without the cloud") matches a passage that negates it too
   ("no cloud account") fully, and one that states it at ``negated_weight``;
6. concept phrases add their concept token to every slot they cover, at ``concept_weight``
   for a single word (a synonym) and ``explained_weight`` for a phrase ("own server") or a word
   the base does not use ("wifi"): then the concept is what the words mean. A phrase that
   covers no slot ("know when") becomes a slot of its own, worth ``concept_weight`` of the
   concept's idf.

An unknown word counts with the base's highest idf (a maximally informative word that did not
match) unless a concept explains it, in which case it counts with that concept's idf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from presence.processors.llm.engines.fuzzy import FuzzyMatcher
from presence.processors.llm.engines.lexicon import GENERIC, LETTER_SOUNDS, ConceptLexicon
from presence.processors.llm.engines.text import STOPWORDS, negated_positions, stem


@dataclass
class Slot:
    """One unit of a question for scoring.

    Attributes:
        term: The index term the words resolved to ("" when none: unknown or concept-only).
        ref: Idf the slot contributes to the normalisation.
        alternatives: ``(index token, weight)`` pairs; a passage scores the best of them.
        generic: An everyday word: it counts little and cannot make a match on its own.

    """

    term: str
    ref: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)
    generic: bool = False


class QueryResolver:
    """Turns cleaned question words into ``Slot``s against one index's vocabulary.

    Args:
        idf: Index token -> idf (terms and ``"~concept"`` tokens).
        max_idf: The highest idf possible in the index (an unknown word's reference).
        fuzzy: Finds known terms for misheard words.
        lexicon: Concept phrases; empty or ``concept_weight == 0`` disables concepts.
        fuzzy_weight: Weight of a fuzzy stand-in.
        concept_weight: Weight of a concept match for a word the base knows (a synonym).
        explained_weight: Weight of a concept match for a word the base does not know but the
            lexicon does ("wifi" ~ offline): the concept is all the word can match.
        generic_weight: Weight of an exact match on an everyday word.
        negated_weight: Weight of an exact match on a word the question negates ("without the
            cloud") in a passage that does not negate it too.
        unknown_weight: Share of the base's highest idf that a word neither the base nor the
            lexicon knows costs in the normalisation.

    """

    def __init__(
        self,
        *,
        idf: Mapping[str, float],
        max_idf: float,
        fuzzy: FuzzyMatcher,
        lexicon: ConceptLexicon,
        fuzzy_weight: float,
        concept_weight: float,
        explained_weight: float,
        generic_weight: float,
        negated_weight: float = 0.5,
        unknown_weight: float = 1.0,
    ):
        self._idf = idf
        self._max_idf = max_idf
        self._fuzzy = fuzzy
        self._lexicon = lexicon if concept_weight > 0 else None
        self._generic = GENERIC
        self.fuzzy_weight = fuzzy_weight
        self.concept_weight = concept_weight
        self.explained_weight = explained_weight
        self.generic_weight = generic_weight
        self.negated_weight = negated_weight
        self.unknown_weight = unknown_weight

    def _known(self, term: str) -> bool:
        return term in self._idf and term[0] not in "~!" and " " not in term

    def _glue(self, ws: list[str], i: int) -> tuple[str, int] | None:
        """A known term made of the 2–4 words from ``i`` ("pipe cat", "web our tea sea")."""
        for span in (4, 3, 2):
            if i + span > len(ws):
                continue
            piece = ws[i : i + span]
            glued = stem("".join(piece))
            if self._known(glued):
                return glued, span
            lettered = "".join(LETTER_SOUNDS.get(w, w) for w in piece)
            if lettered != "".join(piece) and self._known(stem(lettered)):
                return stem(lettered), span
        return None

    def _glue_near(self, ws: list[str], i: int) -> str | None:
        """A known term spelled like two words joined, one of them unknown ("pipe kat")."""
        if i + 2 > len(ws):
            return None
        a, b = ws[i], ws[i + 1]
        if any(w in STOPWORDS or w in self._generic or len(w) < 2 for w in (a, b)):
            return None
        if self._known(stem(a)) and self._known(stem(b)):
            return None  # two known words: a phrase, not a misheard compound
        joined = a + b
        if len(joined) < 6:
            return None
        near = self._fuzzy.near(joined, stem(joined))
        return near if near not in (stem(a), stem(b)) else None

    def resolve(self, ws: list[str]) -> list[Slot]:
        """Return the slots of the cleaned question words ``ws``."""
        concepts_at: dict[int, list[tuple[str, bool]]] = {}
        spans: list[tuple[int, int, str]] = []
        if self._lexicon is not None:
            for first, last, name in self._lexicon.find([stem(w) for w in ws]):
                token = f"~{name}"
                if token in self._idf:
                    spans.append((first, last, token))
                    for pos in range(first, last + 1):
                        concepts_at.setdefault(pos, []).append((token, last > first))
        negated = set(negated_positions(ws))
        slots: list[Slot] = []
        covered: set[int] = set()  # positions that belong to a slot
        i = 0
        while i < len(ws):
            glued = self._glue(ws, i)
            near = None
            if glued is None and not (i in concepts_at and i + 1 in concepts_at):
                near = self._glue_near(ws, i)
            if near is not None:
                positions = range(i, i + 2)
                slot = Slot(near, self._idf[near], [(near, self.fuzzy_weight)])
                generic = False
                i += 2
            elif glued is not None:
                term, span = glued
                positions = range(i, i + span)
                slot = Slot(term, self._idf[term], [(term, 1.0)])
                generic = False
                i += span
            else:
                positions = range(i, i + 1)
                slot = self._word_slot(ws[i], i in concepts_at)
                generic = ws[i] in self._generic
                i += 1
            if slot is None:
                continue
            if slot.term and negated.intersection(positions):
                self._negate(slot)
            # an everyday word takes a concept only from a phrase ("response time", not "time")
            tokens = {
                t
                for pos in positions
                for t, phrase in concepts_at.get(pos, ())
                if phrase or not generic
            }
            if not slot.term and tokens:  # an unknown word a concept explains: its meaning
                slot.ref = max(self._idf[t] for t in tokens)
            phrased = {t for pos in positions for t, phrase in concepts_at.get(pos, ()) if phrase}
            if phrased:
                slot.generic = False  # "get going": the phrase means something
            for t in sorted(tokens):
                # an unknown word's concept, or a phrase's ("own server"), is what it means;
                # a synonym never counts for more than the word itself would
                strong = not slot.term or t in phrased
                weight = self.explained_weight if strong else self.concept_weight
                slot.alternatives.append((t, weight * min(1.0, slot.ref / self._idf[t])))
            covered.update(positions)
            slots.append(slot)
        orphans: dict[tuple[int, int], list[str]] = {}
        for first, last, token in spans:
            if not covered.intersection(range(first, last + 1)):
                orphans.setdefault((first, last), []).append(token)
        for tokens in orphans.values():  # "know when", "who you are": a concept of stopwords
            ref = self.concept_weight * max(self._idf[t] for t in tokens)
            slots.append(Slot("", ref, [(t, self.concept_weight) for t in tokens]))
        return slots

    def _negate(self, slot: Slot) -> None:
        """Make a negated slot ("without the cloud") prefer passages that negate it too.

        Passages that say "no cloud" match fully; passages that say "cloud" only at
        ``negated_weight``.
        """
        slot.alternatives = [
            (t, w * self.negated_weight) if t == slot.term else (t, w) for t, w in slot.alternatives
        ]
        if f"!{slot.term}" in self._idf:
            slot.alternatives.append((f"!{slot.term}", 1.0))

    def _word_slot(self, w: str, explained: bool) -> Slot | None:
        if w in STOPWORDS:
            return None
        t = stem(w)
        if self._known(t):
            if w in self._generic:
                g = self.generic_weight
                return Slot(t, g * self._idf[t], [(t, g)], generic=True)
            return Slot(t, self._idf[t], [(t, 1.0)])
        if len(w) == 1:
            return None  # a stray letter from speech recognition says nothing
        if w in self._generic:  # an everyday word the base does not use: little lost
            return Slot("", self.generic_weight * self._max_idf, [], generic=True)
        if not explained:
            near = self._fuzzy.near(w, t)
            if near:
                return Slot(near, self._idf[near], [(near, self.fuzzy_weight)])
        return Slot("", self.unknown_weight * self._max_idf, [])
