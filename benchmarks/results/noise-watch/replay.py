"""Replay the early-silence watch over spoken questions in noisy rooms (offline, no pipeline).

For every question of the given sets (rendered quiet, from the cache), each room's noise is mixed
in as ``bench conversation --noise`` would (``rooms.make_noise`` at the given SNR under the voiced
speech's RMS), then the audio is fed in 20 ms chunks to ``SilenceWatch`` as the Whisper stage
feeds it (reset 0.2 s after the speech starts, where the VAD starts the turn). Reported per room
and setting: how often the end of speech was seen (a "silence" the voice did not break before the
file's 0.4 s tail ran out: its early decode is the one used), its median and 90th-percentile time
after the last voiced sample (negative: seen in the fading last syllable), and the silences the
voice broke (early decodes started and withdrawn) per question.

    python benchmarks/results/noise-watch/replay.py [SET.yaml ...]
"""

from __future__ import annotations

import sys

import numpy as np

from presence.benchmarks.conversation.questions import cache_dir, load_questions, render
from presence.benchmarks.conversation.rooms import make_noise, noise_from
from presence.processors.stt.engines.silence import SilenceWatch

ROOMS = ["quiet", "pink:25", "pink:20", "pink:15", "pink:10", "brown:15", "hum:15",
         "babble:20", "babble:15"]  # fmt: skip
SETTINGS = {
    "level only (before)": {"noise_margin": 0.0},
    "x1.5, no hysteresis": {"noise_hysteresis": 1.0},
    "x1.5, hysteresis 1.6 (default)": {},
    "x1.5, hysteresis 2.2": {"noise_hysteresis": 2.2},
}


def watch(audio: np.ndarray, start: float, **kw) -> tuple[float | None, int]:
    """When the silence that stood began (None: none did), and the silences the voice broke."""
    w = SilenceWatch(16000, after_s=0.1, **kw)
    pcm = np.clip(np.round(audio * 32767), -32768, 32767).astype(np.int16)
    reset_at, withdrawn, last = int((start + 0.2) * 16000), 0, None
    for i in range(0, len(pcm), 320):
        if i <= reset_at < i + 320:
            w.reset()
        event = w.feed(pcm[i : i + 320].tobytes())
        if i <= reset_at:
            continue
        if event == "silence":
            last = (i + 320) / 16000
        elif event == "voice" and last is not None:
            withdrawn, last = withdrawn + 1, None
    return last, withdrawn


def main(files: list[str]) -> None:
    rendered = [render(q) for f in files for q in load_questions(f)]
    clean = [(r.mono_16k(), r.speech_start_s, r.speech_end_s) for r in rendered]
    print(f"{len(clean)} questions from {', '.join(files)}; after_s 0.1, 20 ms chunks")
    print(f"{'room':<10} {'setting':<31} {'end seen':>9} {'p50 ms':>7} {'p90 ms':>7} "
          f"{'withdrawn/q':>11}")  # fmt: skip
    for room in ROOMS:
        noise = None if room == "quiet" else noise_from(room, room)
        for name, kw in SETTINGS.items():
            delays, withdrawn = [], 0
            for k, (x, s, e) in enumerate(clean):
                a, b = int(s * 16000), int(e * 16000)
                y = (
                    x
                    if noise is None
                    else x
                    + make_noise(
                        noise, x.size, 16000, float(np.sqrt(np.mean(x[a:b] ** 2))), k, cache_dir()
                    )
                )
                seen, n = watch(y, s, **kw)
                withdrawn += n
                if seen is not None:
                    delays.append((seen - e) * 1000)
            p50, p90 = (f"{np.percentile(delays, q):.0f}" if delays else "-" for q in (50, 90))
            print(f"{room:<10} {name:<31} {len(delays):>4}/{len(clean):<4} {p50:>7} {p90:>7} "
                  f"{withdrawn / len(clean):>11.1f}")  # fmt: skip


if __name__ == "__main__":
    main(
        sys.argv[1:]
        or [
            "benchmarks/conversation/questions-unseen13.yaml",
            "benchmarks/conversation/questions-unseen14.yaml",
        ]
    )
