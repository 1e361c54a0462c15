"""Benchmark your own pipeline's latency and read the JSON report.

    python examples/benchmark.py                                   # scripted providers, 3 turns
    python examples/benchmark.py my_pipeline.yaml --turns 10 --json latency.json

Scripted users speak the default questions (with pauses inside sentences) in real time; every
turn is measured from the end of the user's voice to the persona's first audio, per stage, by
observers that never touch the pipeline. ``benchmarks/latency/scripted.yaml`` uses providers
with known delays, so what is left over is the time the framework itself adds.
"""

import argparse
import json
from pathlib import Path

import presence

SCRIPTED = Path(__file__).resolve().parents[1] / "benchmarks/latency/scripted.yaml"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", nargs="?", default=str(SCRIPTED))
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("latency.json"))
    parser.add_argument("--baseline", action="store_true", help="also run plain pipecat")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    args = parser.parse_args(argv)

    pipeline = presence.load_pipeline(args.pipeline, args.set)  # fails here on a bad file
    pipeline.benchmark("latency", turns=args.turns, json_path=args.json, baseline=args.baseline)

    report = json.loads(args.json.read_text())
    summary = report["summary"]
    for key in ("voice_to_voice_ms", "turn_decision_ms", "framework_overhead_ms"):
        stats = summary[key]
        print(f"{key:>24}: p50 {stats['p50']}  p95 {stats['p95']}  (n={stats.get('n')})")
    if summary.get("vs_plain_pipecat_ratio") is not None:
        print(f"{'vs plain pipecat':>24}: {summary['vs_plain_pipecat_ratio']}x")
    for turn in report["turns"]:
        print(f"turn {turn.get('turn')}: voice to voice {turn['voice_to_voice_ms']:.0f} ms")
    return report


if __name__ == "__main__":
    main()
