"""Does ``QuietGain`` leave every cached benchmark question untouched, byte for byte?

Usage (repository root, after ``presence bench conversation`` has rendered the sets)::

    python benchmarks/results/quiet-gain/untouched.py     # -> untouched.txt

Each cached question (every blind set's voices, quiet and noisy rooms) goes through the engine
followed by 8 s of digital silence, in 10, 20 and 30 ms chunks, as transports deliver audio; prints how many outputs differ from
their input and in how many a gain was ever wanted (it would apply to the user's next words). (The lowest speech level among them is in CONVERSATION.md.)
"""

import glob

import numpy as np
import soundfile as sf

from presence.processors.audio.engines.quiet_gain import QuietGain

changed = total = raised = 0
for path in sorted(glob.glob(".presence-cache/conversation/*.wav")):
    audio, rate = sf.read(path, dtype="int16")
    audio = audio[:, 0] if audio.ndim > 1 else audio
    # the file, then digital silence, as a session goes on while the persona answers
    audio = np.concatenate([audio, np.zeros(rate * 8, np.int16)])
    for ms in (10, 20, 30):
        chunk = rate * ms // 1000
        gain = QuietGain(rate)
        out = b"".join(
            gain.process(audio[i : i + chunk].tobytes()) for i in range(0, len(audio), chunk)
        )
        total += 1
        changed += out != audio.tobytes()
print(f"{len(glob.glob('.presence-cache/conversation/*.wav'))} questions x 3 chunk sizes: "
      f"{changed} of {total} outputs changed; a gain wanted in {raised}")  # fmt: skip
