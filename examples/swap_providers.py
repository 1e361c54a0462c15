"""Swap providers by config and by --set: every variant is validated before anything runs.

    python examples/swap_providers.py                       # show three variants of pipelines/local.yaml
    python examples/swap_providers.py --set "stages.tts={provider: espeak}" --input q.wav --output a.mp4

Overrides are the command line's ``--set PATH=VALUE`` strings, or a mapping of dotted paths to
values; a whole stage can be swapped (``stages.tts={provider: espeak}``). A typo fails at once
with the file, the field and the allowed values. Swapping only ``stages.X.provider`` keeps the
stage's other keys, which the new provider may not take: swap the whole stage instead.
"""

import argparse
from pathlib import Path

import presence

VARIANTS = {
    "as written": None,
    "by config (a mapping)": {
        "stages.tts": {"provider": "espeak", "voice": "en-us"},
        "stages.renderer": {"provider": "still"},
    },
    "by --set strings": [
        "stages.stt={provider: pocketsphinx}",
        "stages.turn={provider: speech-timeout, user_speech_timeout: 0.6}",
    ],
}


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", nargs="?", default="local", help="a file or a bundled name")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    parser.add_argument("--input", type=Path, help="a WAV: run the swapped pipeline over it")
    parser.add_argument("--output", type=Path, default=Path("answer.mp4"))
    args = parser.parse_args(argv)

    for label, overrides in VARIANTS.items():
        print(f"{label:>22}: {presence.load_pipeline(args.pipeline, overrides).providers}")
    try:
        presence.load_pipeline(args.pipeline, ["stages.tts.provider=espeek"])
    except presence.ConfigError as exc:  # names file, field and the allowed values
        print(f"{'a typo':>22}: {exc}")

    pipeline = presence.load_pipeline(args.pipeline, args.set)
    print(f"{'your --set':>22}: {pipeline.providers}")
    if args.input is None:
        return None
    report = pipeline.run_file(args.input, args.output, fast=True)
    for turn in report["turns"]:
        print(f"{turn['role']}: {turn['content']}")
    return report


if __name__ == "__main__":
    main()
