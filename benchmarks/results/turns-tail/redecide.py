"""Decide again, with the floor as it is now, every pause and end of stored ``bench turns`` results.

Usage (from the repository root)::

    python benchmarks/results/turns-tail/redecide.py benchmarks/results/turns-tail/base-*.json

Each result holds, at every point (a pause inside a question, or its end), smart-turn's probability
and the Whisper transcript the floor saw. The floor engine of ``pipelines/local.yaml`` is asked
again at the same moment (``max(vad_stop, early_s + decode_ms)`` into the silence, as ``bench
turns`` does), so the two verdicts differ only by the floor's code: Whisper's run-to-run changes and
the machine's load are out of the comparison. Prints the changed points, then per file and in total
the split pauses and the ends held past 800 ms, stored and now.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from presence.framework.config import load_pipeline
from presence.processors.turns.providers import floor_engine


def main() -> None:
    turn = load_pipeline(Path("pipelines/local.yaml"), []).stages["turn"]
    total = {"split": [0, 0], "held": [0, 0], "points": 0, "ends": 0}
    for path in map(Path, sys.argv[1:]):
        data = json.loads(path.read_text())
        method = data["method"]
        vad_stop, seen_after = method["vad_stop_s"], method["early_s"] + method["decode_ms"] / 1000
        seen_at = max(vad_stop, seen_after)
        split, held = [0, 0], [0, 0]
        for row in data["rows"]:
            engine = floor_engine(turn.params)
            for point in row["points"]:
                p = point["probability"]
                decision = engine.decide(p > 0.5, p, seen_at - vad_stop, point["heard"])
                if decision.end:
                    ends_at = seen_at
                elif decision.recheck_s is not None:
                    ends_at = vad_stop + decision.recheck_s
                else:
                    ends_at = vad_stop + turn.params.stop_secs
                ms = round(1000 * ends_at)
                if point["final"]:
                    total["ends"] += 1
                    held[0] += point["ends_at_ms"] > 800
                    held[1] += ms > 800
                else:
                    total["points"] += 1
                    split[0] += bool(point["split"])
                    split[1] += ends_at < row["pause_ms"] / 1000
                if ms != point["ends_at_ms"]:
                    kind = "end  " if point["final"] else f"pause {row['pause_ms']:.0f}"
                    print(f"{path.stem} {row['id']} {kind}: {point['ends_at_ms']} -> {ms} ms "
                          f"({decision.reason}) | {point['heard']}")  # fmt: skip
        print(
            f"{path.stem}: split {split[0]} -> {split[1]}, held past 800 ms {held[0]} -> {held[1]}"
        )
        for key, pair in (("split", split), ("held", held)):
            total[key] = [total[key][0] + pair[0], total[key][1] + pair[1]]
    print(f"total: {total['points']} pauses split {total['split'][0]} -> {total['split'][1]}; "
          f"{total['ends']} ends held past 800 ms {total['held'][0]} -> {total['held'][1]}")  # fmt: skip


if __name__ == "__main__":
    main()
