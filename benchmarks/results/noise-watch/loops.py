"""How often a short-window decode loops in a noisy room, and what each way of redoing it costs.

Every question of the given sets in each room, decoded whole as the pipeline decodes a turn (the
speech plus 5 s window); for each decode that loops (``looks_looped``): the repeats collapsed (as
is), the decode redone in Whisper's full 30 s window (what the pipeline does), and redone in the
short window with ``no_repeat_ngram_size`` 3 or ``repetition_penalty`` 1.3.

    python benchmarks/results/noise-watch/loops.py quiet,pink:15 SET.yaml [SET.yaml ...]
"""

import pathlib
import sys
import time
from dataclasses import replace

import numpy as np

from presence.benchmarks.conversation.metrics import word_error
from presence.benchmarks.conversation.questions import load_questions, render
from presence.benchmarks.conversation.rooms import noise_from
from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.engines import whisper_window as ww
from presence.processors.stt.whisper import WhisperParams


def run(model, audio, prompt, pad, **kw):
    with ww.encoder_window(pad):
        segs, _ = model.transcribe(
            audio,
            language="en",
            beam_size=5,
            initial_prompt=prompt,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
            temperature=ww.TEMPERATURES,
            max_new_tokens=ww.max_tokens(len(audio)),
            **kw,
        )
        return " ".join(s.text.strip() for s in segs).strip()


if __name__ == "__main__":
    persona = load_persona(pathlib.Path("pipelines/personas/guide/persona.yaml"))
    stt = registry.get("stt", "whisper").factory(
        WhisperParams(hotwords=["presence"]),
        registry.BuildContext(persona=persona, base_dir=pathlib.Path(".")),
    )
    stt._load()
    stt.warm_up()
    model = stt._model
    prompt = stt._fixed_prompt
    rooms = sys.argv[1].split(",")
    n = loops = 0
    E = {}
    for f in sys.argv[2:]:
        for q in load_questions(f):
            for room in rooms:
                v = replace(q, noise=None if room == "quiet" else noise_from(room, room))
                r = render(v)
                x = r.mono_16k()
                a = max(0, int(r.speech_start_s * 16000) - 1600)
                b = int(r.speech_end_s * 16000) + 3200
                audio = x[a:b]
                n += 1
                t = time.perf_counter()
                short = run(model, audio, prompt, 5.0)
                ts = time.perf_counter() - t
                if not ww.looks_looped(short):
                    continue
                loops += 1
                variants = {"collapse": (ww.collapse_repeats(short), 0)}
                t = time.perf_counter()
                full = run(model, audio, prompt, None)
                variants["full window"] = (full, time.perf_counter() - t)
                t = time.perf_counter()
                nr = run(model, audio, prompt, 5.0, no_repeat_ngram_size=3)
                variants["short, no-repeat 3"] = (nr, time.perf_counter() - t)
                t = time.perf_counter()
                rp = run(model, audio, prompt, 5.0, repetition_penalty=1.3)
                variants["short, rep 1.3"] = (rp, time.perf_counter() - t)
                print(q.id, room, f"short {ts * 1000:.0f} ms |", short)
                for k, (text, tt) in variants.items():
                    we = word_error(q.reference, text)
                    e = E.setdefault(k, [0, 0, []])
                    e[0] += we["substitutions"] + we["deletions"] + we["insertions"]
                    e[1] += we["reference_words"]
                    e[2].append(tt * 1000)
                    print(f"   {k:<20} {tt * 1000:5.0f} ms {we['wer']:.2f} | {text}")
    print(f"{loops} of {n} decodes looped in the short window")
    for k, (e, m, t) in E.items():
        print(f"{k:<20} word error {e / m:.3f}  extra ms p50 {np.median(t):.0f} max {max(t):.0f}")
