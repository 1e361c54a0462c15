"""Does noise suppression in front of Whisper help? pipecat's ``RNNoiseFilter`` on cached questions.

Each question (quiet, and with ``--noise``'s room) is decoded whole as the pipeline decodes a turn,
once as heard and once through pipecat's ``RNNoiseFilter`` (fed 20 ms chunks at 16 kHz, as an
input transport's ``audio_in_filter`` would). Needs ``pip install pyrnnoise==0.4.5`` (not a
dependency of presence).

    python benchmarks/results/noise-watch/rnnoise.py SET.yaml LIMIT KIND:SNR
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from pipecat.audio.filters.rnnoise_filter import RNNoiseFilter

from presence.benchmarks.conversation.metrics import word_error
from presence.benchmarks.conversation.questions import load_questions, render
from presence.benchmarks.conversation.rooms import noise_from
from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.whisper import WhisperParams


async def denoise(x: np.ndarray) -> np.ndarray:
    f = RNNoiseFilter()
    await f.start(16000)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    out = b"".join([await f.filter(pcm[i : i + 320].tobytes()) for i in range(0, len(pcm), 320)])
    return np.frombuffer(out, np.int16).astype(np.float32) / 32768.0


def main(questions_file: str, limit: int, room: str) -> None:
    persona = load_persona(Path("pipelines/personas/guide/persona.yaml"))
    ctx = registry.BuildContext(persona=persona, base_dir=Path("."))
    stt = registry.get("stt", "whisper").factory(WhisperParams(hotwords=["presence"]), ctx)
    stt._load()
    totals: dict[tuple[str, str], list[int]] = {}
    noise = noise_from(room, "room")
    for q in load_questions(questions_file)[:limit]:
        for variant in (replace(q, noise=None), replace(q, noise=noise)):
            r = render(variant)
            x = r.mono_16k()
            a, b = max(0, int(r.speech_start_s * 16000) - 1600), int(r.speech_end_s * 16000) + 3200
            for name, signal in (("as heard", x), ("rnnoise", asyncio.run(denoise(x)))):
                text = stt.text_of(stt.decode(signal[a:b]))
                we = word_error(q.reference, text)
                key = (variant.room, name)
                e, n = totals.get(key, [0, 0])
                errors = we["substitutions"] + we["deletions"] + we["insertions"]
                totals[key] = [e + errors, n + we["reference_words"]]
                print(f"{q.id} {variant.room:<12} {name:<9} {we['wer']:.2f} | {text}", flush=True)
    for (where, name), (e, n) in totals.items():
        print(f"{where:<12} {name:<9} word error {e / n:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
