"""Does tiny.en's confidence flag the questions it mishears? (a "second opinion" by base)

Usage (from the repository root, after ``presence bench conversation`` has rendered the sets)::

    python benchmarks/results/whisper-decode/recheck_offline.py > benchmarks/results/whisper-decode/recheck-offline.jsonl
    python benchmarks/results/whisper-decode/recheck_summary.py benchmarks/results/whisper-decode/recheck-offline.jsonl

Decodes every cached question (quiet and noisy rooms; its speech plus 0.1 s before and 0.3 s
after) with the stage's tiny.en and with base, as the pipeline decodes a turn, and prints one JSON
line per question: each model's token-weighted mean log-probability (``_lp``), transcript, word
error and decode time.
"""

import json
import time
from pathlib import Path

import jiwer
from sweep import questions  # this folder's

from presence.benchmarks.conversation.metrics import normalize
from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.whisper import WhisperParams

guide = load_persona(Path("pipelines/personas/guide/persona.yaml"))
ctx = registry.BuildContext(persona=guide, base_dir=Path("pipelines"))
stts = {}
for m in ("tiny.en", "base"):
    s = registry.get("stt", "whisper").factory(WhisperParams(model=m, hotwords=["presence"]), ctx)
    s._load()
    s.warm_up()
    stts[m] = s
rows = []
for qid, ref, audio in questions(Path(".presence-cache/conversation"), rooms=True):
    r = {"id": qid, "ref": ref}
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
