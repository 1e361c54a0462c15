"""Word error of the bundled Whisper tiny.en on the cached benchmark questions, per decoding option.

Usage (from the repository root, after ``presence bench conversation`` has rendered the sets)::

    python benchmarks/results/whisper-decode/sweep.py base rep1.1 nrng4 noprompt patience2 beam8
    python benchmarks/results/whisper-decode/sweep.py --model base base beam1

``--model`` picks the stage's ``model:`` (``tiny.en`` when absent).

Each cached question (``.presence-cache/conversation/<id>-<digest>.wav``, its speech plus 0.1 s
before and 0.3 s after) is decoded whole, as the pipeline's ``whisper`` stage decodes a turn
(same prompt, encoder window and bounds), with one faster-whisper option changed. Prints the
corpus word error per question set (the id's letter: ``m`` the thirteenth blind set, ``n`` the
fourteenth, ``k``/``q`` older ones) and the median decode time. Not a real-time run: no renderer
or VAD competes for the CPU, so decode times are lower than in ``bench conversation``.
"""

import glob
import json
import sys
import time
from pathlib import Path

import jiwer
import soundfile as sf
import soxr

from presence.benchmarks.conversation.metrics import normalize
from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.whisper import WhisperParams

VARIANTS = {
    "base": {},
    "rep1.1": {"repetition_penalty": 1.1},
    "nrng4": {"no_repeat_ngram_size": 4},
    "patience2": {"patience": 2.0},
    "lenpen0.8": {"length_penalty": 0.8},
    "beam8": {"beam_size": 8},
    "beam1": {"beam_size": 1},
    "beam2": {"beam_size": 2},
    "beam3": {"beam_size": 3},
    "noprompt": None,  # no domain prompt
}


def questions(cache: Path, *, rooms: bool = False) -> list:
    """(id, reference, 16 kHz speech) of each cached question; quiet ones only unless ``rooms``."""
    out = []
    for sidecar in sorted(glob.glob(str(cache / "*.json"))):
        meta = json.loads(Path(sidecar).read_text())
        if not rooms and meta.get("noise", "quiet") != "quiet":  # (rooms: measured elsewhere)
            continue
        audio, rate = sf.read(sidecar[:-5] + ".wav", dtype="float32")
        audio = audio.mean(1) if audio.ndim > 1 else audio
        audio = soxr.resample(audio, rate, 16000) if rate != 16000 else audio
        start = int(max(0.0, meta["speech_start_s"] - 0.1) * 16000)
        out.append(
            (
                meta["id"],
                meta["reference"],
                audio[start : int((meta["speech_end_s"] + 0.3) * 16000)],
            )
        )
    return out


def main(names: list[str], model: str = "tiny.en") -> None:
    guide = load_persona(Path("pipelines/personas/guide/persona.yaml"))
    ctx = registry.BuildContext(persona=guide, base_dir=Path("pipelines"))
    stt = registry.get("stt", "whisper").factory(
        WhisperParams(model=model, hotwords=["presence"]), ctx
    )
    stt._load()
    stt.warm_up()
    transcribe = stt._model.transcribe
    items = questions(Path(".presence-cache/conversation"))
    for name in names:
        extra = VARIANTS[name]
        prompt = "" if extra is None else None
        stt._model.transcribe = lambda *a, _x=extra or {}, **k: transcribe(*a, **{**k, **_x})
        sets: dict[str, tuple[list, list]] = {}
        times = []
        for qid, reference, audio in items:
            started = time.perf_counter()
            text = stt.text_of(stt.decode(audio, prompt))
            times.append(1000 * (time.perf_counter() - started))
            refs, hyps = sets.setdefault(qid[0], ([], []))
            refs.append(" ".join(normalize(reference)))
            hyps.append(" ".join(normalize(text)) or "-")
        every = [sum((v[i] for v in sets.values()), []) for i in (0, 1)]
        per_set = " ".join(f"{k}:{jiwer.wer(*v):.3f}" for k, v in sorted(sets.items()))
        times.sort()
        print(
            f"{name:10} {per_set} all:{jiwer.wer(*every):.3f} p50 {times[len(times) // 2]:.0f} ms",
            flush=True,
        )


if __name__ == "__main__":
    args = sys.argv[1:]
    chosen = "tiny.en"
    if args[:1] == ["--model"]:
        chosen, args = args[1], args[2:]
    main(args or ["base"], chosen)
