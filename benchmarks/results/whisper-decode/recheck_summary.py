"""What a second decode by base, run only when tiny.en's confidence is low, would do to word error.

Reads ``recheck_offline.py``'s JSON lines (see its docstring). For each threshold: how many
questions base would decode again, and the corpus word error (per question set, by the id's
letter) when base's transcript replaces tiny.en's on those, or only where base is the surer.
"""

import json
import statistics
import sys

import jiwer

from presence.benchmarks.conversation.metrics import normalize


def corpus(rows: list, texts: list) -> float:
    refs = [" ".join(normalize(r["ref"])) for r in rows]
    return jiwer.wer(refs, [" ".join(normalize(t)) or "-" for t in texts])


def main(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    sets: dict[str, list] = {}
    for r in rows:
        sets.setdefault(r["id"][0], []).append(r)
    tiny = corpus(rows, [r["tiny.en_text"] for r in rows])
    base = corpus(rows, [r["base_text"] for r in rows])
    print(f"n {len(rows)} word error tiny.en {tiny:.3f} base {base:.3f}")
    for model in ("tiny.en", "base"):
        print(f"{model} decode p50 {statistics.median(r[model + '_ms'] for r in rows):.0f} ms")

    def pick(r: dict, th: float, surer: bool) -> str:
        doubt = r["tiny.en_lp"] < th and (not surer or r["base_lp"] >= r["tiny.en_lp"])
        return r["base_text"] if doubt else r["tiny.en_text"]

    for th in (-0.2, -0.3, -0.4, -0.45, -0.5, -0.6, -0.7, -0.8):
        n = sum(r["tiny.en_lp"] < th for r in rows)
        always = corpus(rows, [pick(r, th, False) for r in rows])
        surer = corpus(rows, [pick(r, th, True) for r in rows])
        per = {
            k: round(corpus(v, [pick(r, th, False) for r in v]), 3) for k, v in sorted(sets.items())
        }
        print(
            f"below {th:5}: base decodes {n}/{len(rows)} ({100 * n / len(rows):.0f}%), word error "
            f"{always:.3f} (base's words) / {surer:.3f} (the surer words) {per}"
        )
    wrong = [r["tiny.en_lp"] for r in rows if r["tiny.en_wer"] > 0.3]
    right = [r["tiny.en_lp"] for r in rows if r["tiny.en_wer"] <= 0.3]
    print(
        f"tiny.en confidence, median: questions it heard with word error > 0.3 "
        f"{statistics.median(wrong):.2f} (n={len(wrong)}), the rest {statistics.median(right):.2f} "
        f"(n={len(right)})"
    )


if __name__ == "__main__":
    main(sys.argv[1])
