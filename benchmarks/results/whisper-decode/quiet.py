"""How often the voice goes quiet for ``early_s`` inside a question, before its end.

Usage (from the repository root, after ``presence bench conversation`` has rendered the sets)::

    python benchmarks/results/whisper-decode/quiet.py 0.1 0.15 0.2

Feeds each cached question's audio (``.presence-cache/conversation``), from its first to its last
voiced sample, through the Whisper stage's ``SilenceWatch`` in 20 ms chunks, and counts the
silences it reports: each would start an early decode that is withdrawn when the voice comes back.
"""

import glob
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from presence.processors.stt.engines.silence import SilenceWatch


def main(afters: list[float]) -> None:
    cache = Path(".presence-cache/conversation")
    clips = []
    for sidecar in sorted(glob.glob(str(cache / "*.json"))):
        meta = json.loads(Path(sidecar).read_text())
        if meta.get("noise", "quiet") != "quiet":  # (the rooms of --noise are measured elsewhere)
            continue
        audio, rate = sf.read(sidecar[:-5] + ".wav", dtype="float32")
        audio = audio.mean(1) if audio.ndim > 1 else audio
        audio = soxr.resample(audio, rate, 16000) if rate != 16000 else audio
        pcm = (audio * 32767).astype(np.int16)
        clips.append(pcm[int(meta["speech_start_s"] * 16000) : int(meta["speech_end_s"] * 16000)])
    for after in afters:
        silences = 0
        for pcm in clips:
            watch = SilenceWatch(after_s=after)
            for i in range(0, len(pcm), 320):
                silences += watch.feed(pcm[i : i + 320].tobytes()) == "silence"
        print(
            f"early_s {after:g}: {len(clips)} questions, {silences} silences before the end "
            f"({silences / len(clips):.2f} a question)"
        )


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [0.1])
