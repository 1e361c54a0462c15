"""An ARPA backoff trigram model estimated from word sequences (pure Python, for pocketsphinx).

``build_arpa`` uses absolute discounting and can mix a share of a generic unigram distribution
into the unigrams, so words outside the sentences stay possible.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable


def build_arpa(
    sentences: Iterable[list[str]],
    *,
    generic: dict[str, float] | None = None,
    generic_weight: float = 0.0,
    discount: float = 0.5,
) -> str:
    """Estimate an ARPA backoff trigram model (absolute discounting) over ``sentences``.

    Args:
        sentences: Word sequences; ``<s>``/``</s>`` are added around each.
        generic: Extra unigram distribution (word -> probability, summing to 1).
        generic_weight: Share of unigram probability given to ``generic`` (0..1).
        discount: Absolute discount subtracted from each bigram/trigram count (0..1).

    Returns:
        The model as ARPA text, for ``pocketsphinx`` to load from a file.

    """
    uni: Counter[str] = Counter()
    bi: Counter[tuple[str, str]] = Counter()
    tri: Counter[tuple[str, str, str]] = Counter()
    for sentence in sentences:
        toks = ["<s>", *sentence, "</s>"]
        uni.update(toks[1:])
        bi.update(zip(toks, toks[1:], strict=False))
        tri.update(zip(toks, toks[1:], toks[2:], strict=False))
    if not uni:
        raise ValueError("no sentences to build a language model from")
    generic = generic or {}
    g = generic_weight if generic else 0.0
    total = sum(uni.values())
    p1 = {w: (1 - g) * uni[w] / total + g * generic.get(w, 0.0) for w in set(uni) | set(generic)}

    hist1: Counter[str] = Counter()
    for (a, _), c in bi.items():
        hist1[a] += c
    p2 = {k: (c - discount) / hist1[k[0]] for k, c in bi.items()}
    hist2: Counter[tuple[str, str]] = Counter()
    for (a, b, _), c in tri.items():
        hist2[(a, b)] += c
    p3 = {k: (c - discount) / hist2[k[:2]] for k, c in tri.items()}

    seen1, low1 = defaultdict(float), defaultdict(float)
    for (a, b), p in p2.items():
        seen1[a] += p
        low1[a] += p1[b]
    bo1 = {a: (1 - seen1[a]) / max(1 - low1[a], 1e-9) for a in seen1}
    seen2, low2 = defaultdict(float), defaultdict(float)
    for (a, b, c), p in p3.items():
        seen2[(a, b)] += p
        low2[(a, b)] += p2[(b, c)]
    bo2 = {h: (1 - seen2[h]) / max(1 - low2[h], 1e-9) for h in seen2}

    def lg(x: float) -> str:
        return f"{math.log10(x):.4f}" if x > 0 else "-99"

    lines = [
        "\\data\\",
        f"ngram 1={len(p1) + 1}",
        f"ngram 2={len(p2)}",
        f"ngram 3={len(p3)}",
        "",
        "\\1-grams:",
        f"-99 <s> {lg(bo1.get('<s>', 1.0))}",
    ]
    lines += [f"{lg(p)} {w} {lg(bo1.get(w, 1.0))}" for w, p in sorted(p1.items())]
    lines += ["", "\\2-grams:"]
    lines += [f"{lg(p)} {a} {b} {lg(bo2.get((a, b), 1.0))}" for (a, b), p in sorted(p2.items())]
    lines += ["", "\\3-grams:"]
    lines += [f"{lg(p)} {' '.join(k)}" for k, p in sorted(p3.items())]
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)
