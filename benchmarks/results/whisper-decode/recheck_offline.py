"""Does tiny.en's confidence flag the questions it mishears? (a "second opinion" by base)

Usage (from the repository root, after ``presence bench conversation`` has rendered the sets)::

    python benchmarks/results/whisper-decode/recheck_offline.py > benchmarks/results/whisper-decode/recheck-offline.jsonl
    python benchmarks/results/whisper-decode/recheck_summary.py benchmarks/results/whisper-decode/recheck-offline.jsonl

Decodes every cached question (quiet and noisy rooms; its speech plus 0.1 s before and 0.3 s
after) with the stage's tiny.en and with base, as the pipeline decodes a turn, and prints one JSON
line per question: each model's token-weighted mean log-probability (``_lp``), transcript, word
error and decode time.
"""

import glob
import json
import time
from pathlib import Path

import jiwer
import soundfile as sf
import soxr

from presence.benchmarks.conversation.metrics import normalize
from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.whisper import WhisperParams


def items(cache):
    out = []
    for sidecar in sorted(glob.glob(str(cache / "*.json"))):
        meta = json.loads(Path(sidecar).read_text())
        audio, rate = sf.read(sidecar[:-5] + ".wav", dtype="float32")
        audio = audio.mean(1) if audio.ndim > 1 else audio
        audio = soxr.resample(audio, rate, 16000) if rate != 16000 else audio
        start = int(max(0.0, meta["speech_start_s"] - 0.1) * 16000)
        out.append(
            (
                meta["id"],
                meta.get("noise", "quiet"),
                meta["reference"],
                audio[start : int((meta["speech_end_s"] + 0.3) * 16000)],
            )
        )
    return out


guide = load_persona(Path("pipelines/personas/guide/persona.yaml"))
ctx = registry.BuildContext(persona=guide, base_dir=Path("pipelines"))
stts = {}
for m in ("tiny.en", "base"):
    s = registry.get("stt", "whisper").factory(WhisperParams(model=m, hotwords=["presence"]), ctx)
    s._load()
    s.warm_up()
    stts[m] = s
rows = []
for qid, noise, ref, audio in items(Path(".presence-cache/conversation")):
    r = {"id": qid, "noise": noise, "ref": ref}
    for m, s in stts.items():
        t = time.perf_counter()
        segs = s.decode(audio)
        r[m + "_ms"] = 1000 * (time.perf_counter() - t)
        text = s.text_of(segs)
        n = sum(len(g.tokens) for g in segs) or 1
        r[m + "_lp"] = sum(g.avg_logprob * len(g.tokens) for g in segs) / n if segs else -9
        r[m + "_cr"] = max((g.compression_ratio for g in segs), default=0)
        r[m + "_ns"] = max((g.no_speech_prob for g in segs), default=1)
        r[m + "_text"] = text
        r[m + "_wer"] = jiwer.wer(" ".join(normalize(ref)), " ".join(normalize(text)) or "-")
    rows.append(r)
    print(json.dumps(r), flush=True)
