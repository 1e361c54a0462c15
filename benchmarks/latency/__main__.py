"""``python -m presence.benchmarks.latency PIPELINE [--turns N] [--json F] [--plot F] [--set P=V]
[--speculative] [--no-baseline]`` — the same as ``presence bench latency``."""

from __future__ import annotations

import argparse
import shlex
import sys

from presence.benchmarks.latency.report import print_table
from presence.benchmarks.latency.runner import run_latency_benchmark


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print the table."""
    parser = argparse.ArgumentParser(prog="python -m presence.benchmarks.latency")
    parser.add_argument("pipeline")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--plot", dest="plot_path")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--speculative", action="store_true")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false")
    args = parser.parse_args(argv)
    command = "python -m presence.benchmarks.latency " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )
    result = run_latency_benchmark(
        args.pipeline, args.turns, args.overrides, args.json_path, args.plot_path,
        speculative=args.speculative, baseline=args.baseline, command=command,
    )  # fmt: skip
    print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
