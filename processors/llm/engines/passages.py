"""Knowledge-base passages and the tokens ``retrieval.KnowledgeIndex`` indexes for each.

Pure Python (no pipecat). A passage's tokens, with a weight each (a BM25 term frequency):

* its content terms (``text.terms``): the first ``spoken_sentences`` sentences — what the
  responder says aloud — at full weight, later sentences and code blocks at ``unspoken_weight``;
* the terms of the questions it answers (``Passage.questions``), once each at
  ``question_weight``, outside its length;
* its heading's terms (twice for the first passage of a section) and, for the other sections
  of a document, the document's first heading at ``document_weight``;
* ``"a b"``: two content words that stand together ("cloud account"), for phrase matches;
* ``"!t"``: a term the passage negates ("no cloud account" → ``!cloud``, ``!account``);
* ``"~name"``: a concept of the lexicon the passage mentions.

Only plain terms count in the passage's length. ``find_definitions`` indexes the "X is ..."
clauses that answer "what is X?"; ``build_postings`` turns the tokens into BM25 postings.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from presence.processors.llm.engines.lexicon import ConceptLexicon
from presence.processors.llm.engines.text import (
    STOPWORDS,
    negated_positions,
    split_sentences,
    stem,
    terms,
    words,
)

# "Presence is ...", "The warp renderer is ...": the subject of a defining clause (≤ 5 words).
_DEFINITION = re.compile(r"^((?:[\w'-]+ ){1,5}?)(?:is|are)\b", re.IGNORECASE)
# "Stt is speech to text, llm is the language model and tts is text to speech": three clauses.
_CLAUSE = re.compile(r"\s*[,;:]\s+|\s+and\s+")


@dataclass(frozen=True)
class Passage:
    """One retrievable unit of the knowledge base.

    Attributes:
        id: Position in the index.
        source: Name of the document it came from (file stem).
        title: The nearest heading above it (empty when none).
        text: Speakable text (markdown stripped, code blocks removed).
        keywords: Extra indexed text that is not spoken (code blocks).
        questions: How visitors ask for what it says (indexed and embedded, never spoken).

    """

    id: int
    source: str
    title: str
    text: str
    keywords: str = ""
    questions: tuple[str, ...] = ()


def _add_concepts(lexicon: ConceptLexicon, text: str, weight: float, out: Counter) -> None:
    for _, _, name in lexicon.find([stem(w) for w in words(text)]):
        out[f"~{name}"] += weight


def _add_terms(text: str, weight: float, out: Counter) -> None:
    ts = terms(text)
    for t in ts:
        out[t] += weight
    for pair in zip(ts, ts[1:], strict=False):  # adjacent content words, for phrase matches
        out[" ".join(pair)] += weight


def passage_tokens(
    passages: Sequence[Passage],
    *,
    spoken_sentences: int,
    unspoken_weight: float,
    document_weight: float,
    lexicon: ConceptLexicon | None,
    question_weight: float = 0.5,
) -> tuple[list[Counter[str]], np.ndarray, list[Counter[str]]]:
    """Weighted tokens of each passage, its length, and its heading's tokens.

    Returns:
        ``(tokens, lengths, headings)``: per passage, token → weight; the summed weight of its
        plain terms; its heading's terms and concepts.

    """
    tokens: list[Counter[str]] = []
    headings: list[Counter[str]] = []
    lengths = np.zeros(len(passages), dtype=np.float64)
    previous: tuple[str, str] | None = None
    doc_titles: dict[str, str] = {}
    for n, p in enumerate(passages):
        c: Counter[str] = Counter()
        sentences = split_sentences(p.text)
        weights = [1.0 if i < spoken_sentences else unspoken_weight for i in range(len(sentences))]
        for sentence, w in zip(sentences, weights, strict=True):
            _add_terms(sentence, w, c)
        for t in terms(p.keywords):
            c[t] += unspoken_weight
        # A heading word says what the passage is about; the lead paragraph of a section
        # gets it twice, so that it answers a question that repeats the heading.
        lead = (p.source, p.title) != previous
        previous = (p.source, p.title)
        title_weight = 2.0 if lead else 1.0
        doc_title = doc_titles.setdefault(p.source, p.title)
        if doc_title != p.title:  # every section is also about the document ("Benchmarks")
            for t in terms(doc_title):
                c[t] += document_weight
        _add_terms(p.title, title_weight, c)
        lengths[n] = sum(v for t, v in c.items() if " " not in t)
        # Its questions name what it answers in visitors' words: each of their terms once (not
        # per question, so many questions do not outweigh the text) and outside the length.
        asked: Counter[str] = Counter()
        for question in p.questions:
            _add_terms(question, 1.0, asked)
            if lexicon:
                _add_concepts(lexicon, question, 1.0, asked)
        for t in asked:
            c[t] += question_weight
        for sentence, w in zip(sentences, weights, strict=True):  # what a passage says is *not* so
            ws = words(sentence)
            for j in negated_positions(ws):
                c[f"!{stem(ws[j])}"] += w
        heading: Counter[str] = Counter(terms(p.title))
        if lexicon:
            _add_concepts(lexicon, p.title, title_weight, c)
            _add_concepts(lexicon, p.title, 1.0, heading)
            for sentence, w in zip(sentences, weights, strict=True):
                _add_concepts(lexicon, sentence, w, c)
        tokens.append(c)
        headings.append(heading)
    return tokens, lengths, headings


def find_definitions(
    passages: Sequence[Passage],
) -> tuple[dict[tuple[str, ...], list[tuple[int, float]]], list[str]]:
    """Index "<subject> is/are ..." clauses: a passage's opening fully, later clauses at half.

    A short clause ("Vad is voice activity detection") also defines its predicate, at half.

    Returns:
        ``(defines, main_subject)``: sorted subject terms → ``[(passage id, share)]``; the
        words of the first subject the base defines (what the base is about), or ``[]``.

    """
    defines: dict[tuple[str, ...], list[tuple[int, float]]] = defaultdict(list)
    main_subject: list[str] = []
    for p in passages:
        clauses = (c for s in split_sentences(p.text) for c in _CLAUSE.split(s))
        for i, clause in enumerate(clauses):
            opening = _DEFINITION.match(clause)
            subject_words = words(opening.group(1)) if opening else []
            subject = tuple(sorted({stem(w) for w in subject_words if w not in STOPWORDS}))
            if not subject:  # "It is ..." defines nothing
                continue
            defines[subject].append((p.id, 1.0 if i == 0 else 0.5))
            if i == 0 and not main_subject:
                main_subject = [w for w in subject_words if w not in STOPWORDS]
            predicate = terms(clause[opening.end() :])
            if len(subject) == 1 and 1 <= len(predicate) <= 3:
                defines[tuple(sorted(set(predicate)))].append((p.id, 0.5))
    return dict(defines), main_subject


class Postings(Mapping[str, tuple[np.ndarray, np.ndarray]]):
    """Token → (passage ids, BM25 contributions): slices of two flat arrays, sorted by token."""

    def __init__(self, spans: dict[str, tuple[int, int]], ids: np.ndarray, contrib: np.ndarray):
        self._spans = spans
        self._ids = ids
        self._contrib = contrib

    def __getitem__(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        start, end = self._spans[token]
        return self._ids[start:end], self._contrib[start:end]

    def __contains__(self, token: object) -> bool:
        return token in self._spans

    def __iter__(self) -> Iterator[str]:
        return iter(self._spans)

    def __len__(self) -> int:
        return len(self._spans)


def build_postings(
    counts: list[Counter[str]], norm: np.ndarray, k1: float
) -> tuple[dict[str, float], Postings]:
    """Each token's idf, and its postings: passage ids (ascending) and BM25 contributions.

    Built from one flat array of (token, passage, weight) entries sorted by token, so that a
    base of 10,000 passages (over a million entries) is indexed without a Python step per token.
    """
    n = len(counts)
    token_ids: dict[str, int] = {}
    tok_a = np.asarray(
        [token_ids.setdefault(t, len(token_ids)) for c in counts for t in c], dtype=np.int64
    )
    tf_a = np.asarray([tf for c in counts for tf in c.values()], dtype=np.float64)
    ids = np.repeat(np.arange(n, dtype=np.int64), [len(c) for c in counts])
    order = np.argsort(tok_a, kind="stable")  # passages stay ascending within a token
    tok_a, tf_a, ids = tok_a[order], tf_a[order], ids[order]
    df = np.bincount(tok_a, minlength=len(token_ids))
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    # Precomputed per-posting BM25 contribution: a query is a sum of gathers.
    contrib = idf[tok_a] * tf_a * (k1 + 1.0) / (tf_a + norm[ids])
    ends = np.cumsum(df)
    names = list(token_ids)
    spans = dict(zip(names, zip((ends - df).tolist(), ends.tolist(), strict=True), strict=True))
    return dict(zip(names, idf.tolist(), strict=True)), Postings(spans, ids, contrib)
