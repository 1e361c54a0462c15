"""Median whole-question decode time of the bundled tiny.en under CTranslate2 settings.

Usage (repository root; cached questions of the 14th and 16th blind sets, first 24)::

    CT2_VERBOSE=1 TAG=base python benchmarks/results/whisper-decode/backends.py
    CT2_USE_MKL=1 TAG=mkl1 python benchmarks/results/whisper-decode/backends.py
    CTYPE=float32 TAG=ct python benchmarks/results/whisper-decode/backends.py

Env: ``TAG`` labels the line, ``CTYPE`` the stage's ``compute_type``, ``MODEL`` its ``model``.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, "benchmarks/results/whisper-decode")
from sweep import questions

from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.whisper import WhisperParams

guide = load_persona(Path("pipelines/personas/guide/persona.yaml"))
ctx = registry.BuildContext(persona=guide, base_dir=Path("pipelines"))
ct = os.environ.get("CTYPE", "default")
stt = registry.get("stt", "whisper").factory(
    WhisperParams(hotwords=["presence"], compute_type=ct, model=os.environ.get("MODEL", "tiny.en")),
    ctx,
)
stt._load()
stt.warm_up()
items = [q for q in questions(Path(".presence-cache/conversation")) if q[0][0] in "pn"][:24]
ts = []
texts = []
for _qid, _ref, audio in items:
    t0 = time.perf_counter()
    texts.append(stt.text_of(stt.decode(audio, None)))
    ts.append(1000 * (time.perf_counter() - t0))
ts.sort()
print(
    os.environ.get("TAG"),
    ct,
    "p50",
    round(ts[len(ts) // 2]),
    "mean",
    round(sum(ts) / len(ts)),
    "|",
    texts[0][:60],
    texts[5][:60],
)
