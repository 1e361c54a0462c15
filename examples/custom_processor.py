"""Load a pipeline file that inserts your own processor, and run it over a WAV to an MP4.

    python examples/custom_processor.py [--input question.wav] [--output answer.mp4] [--fast]

``custom_processor.yaml`` names ``signoff:SignOff`` at the ``before_tts`` point; the same can be
done from Python with ``pipeline.run_file(..., insert={"before_tts": [SignOff()]})``.
"""

import argparse
from pathlib import Path

import presence

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=HERE / "assets/what-is-presence.wav")
    parser.add_argument("--output", type=Path, default=Path("answer.mp4"))
    parser.add_argument("--fast", action="store_true", help="faster than real time")
    args = parser.parse_args(argv)

    pipeline = presence.load_pipeline(HERE / "custom_processor.yaml")
    print(f"{pipeline.name}: {pipeline.providers}")
    report = pipeline.run_file(args.input, args.output, fast=args.fast)
    for turn in report["turns"]:
        print(f"{turn['role']}: {turn['content']}")
    print(f"wrote {args.output} and {args.output.with_suffix('.json')}")
    return report


if __name__ == "__main__":
    main()
