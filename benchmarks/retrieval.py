"""Retrieval latency of the offline knowledge-base responder on a synthetic 1,000-passage base.

Builds 100 markdown documents of 10 passages each (≈60 words per passage, a Zipf-distributed
vocabulary of pseudo-words), then times ``KnowledgeIndex.top_passages`` and
``Responder.answer`` over questions of three kinds: words taken from a passage, the same with a
misspelled word (the fuzzy-matching path, as speech recognition produces), and nonsense.

Usage::

    python -m presence.benchmarks.retrieval [--passages 1000] [--queries 300] [--json]

Prints p50/p95 milliseconds per call; the target is p50 ≤ 30 ms.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from presence.processors.llm.engines.responder import Responder
from presence.processors.llm.engines.retrieval import KnowledgeIndex

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def _pseudo_words(rng: np.random.Generator, n: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        w = "".join(rng.choice(_SYLLABLES, size=int(rng.integers(2, 5))))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def synthetic_base(
    passages: int = 1000, per_doc: int = 10, vocabulary: int = 6000, seed: int = 0
) -> tuple[list[tuple[str, str]], list[list[str]]]:
    """Markdown documents totalling ``passages`` passages, and each passage's words."""
    rng = np.random.default_rng(seed)
    vocab = _pseudo_words(rng, vocabulary)
    zipf = 1.0 / np.arange(1, vocabulary + 1) ** 1.05
    zipf /= zipf.sum()
    docs: list[tuple[str, str]] = []
    passage_words: list[list[str]] = []
    for d in range(0, passages, per_doc):
        lines = [f"# {' '.join(rng.choice(vocab[200:], 3))}", ""]
        for _ in range(min(per_doc, passages - d)):
            lines.append(f"## {' '.join(rng.choice(vocab[100:], 2))}")
            ws = list(rng.choice(vocab, size=int(rng.integers(40, 80)), p=zipf))
            passage_words.append(ws)
            sentences = [ws[i : i + 10] for i in range(0, len(ws), 10)]
            lines += ["", " ".join(" ".join(s).capitalize() + "." for s in sentences), ""]
        docs.append((f"doc{d // per_doc:03d}", "\n".join(lines)))
    return docs, passage_words


def synthetic_queries(passage_words: list[list[str]], n: int = 300, seed: int = 1) -> list[str]:
    """Questions: a third on-topic, a third on-topic with one misspelled word, a third nonsense."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for i in range(n):
        ws = list(rng.choice(passage_words[int(rng.integers(len(passage_words)))], 5))
        if i % 3 == 1:
            w = ws[0]
            j = int(rng.integers(1, len(w)))
            ws[0] = w[:j] + "x" + w[j + 1 :]
        elif i % 3 == 2:
            ws = ["".join(rng.choice(list("qwxzjk"), 6)) for _ in range(4)]
        out.append("what is the " + " ".join(ws))
    return out


def _percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95))}


def run(passages: int = 1000, queries: int = 300) -> dict:
    """Build the synthetic base and time retrieval; returns a JSON-ready report."""
    docs, words = synthetic_base(passages)
    t0 = time.perf_counter()
    index = KnowledgeIndex.from_markdown(docs)
    build_ms = (time.perf_counter() - t0) * 1000
    responder = Responder(index, fallback_answer="I don't know.")
    qs = synthetic_queries(words, queries)
    top_ms, answer_ms = [], []
    for q in qs:
        t = time.perf_counter()
        index.top_passages(q, 3)
        top_ms.append((time.perf_counter() - t) * 1000)
    index._near_cache.clear()  # time answers with cold fuzzy lookups too
    for q in qs:
        t = time.perf_counter()
        responder.answer(q)
        answer_ms.append((time.perf_counter() - t) * 1000)
    return {
        "passages": len(index),
        "vocabulary": index.vocabulary_size,
        "queries": len(qs),
        "build_ms": build_ms,
        "top_passages": _percentiles(top_ms),
        "answer": _percentiles(answer_ms),
    }


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point; prints the report and returns it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.passages, args.queries)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['passages']} passages, {report['vocabulary']} terms, "
            f"built in {report['build_ms']:.0f} ms\n"
            f"top_passages: p50 {report['top_passages']['p50_ms']:.2f} ms, "
            f"p95 {report['top_passages']['p95_ms']:.2f} ms\n"
            f"answer:       p50 {report['answer']['p50_ms']:.2f} ms, "
            f"p95 {report['answer']['p95_ms']:.2f} ms  (target p50 <= 30 ms)"
        )
    return report


if __name__ == "__main__":
    main()
