"""How much better Whisper tiny.en's best of its 5 beam hypotheses is than its first (an oracle).

Usage (repository root, after ``presence bench conversation`` has rendered the sets)::

    python benchmarks/results/whisper-decode/nbest.py      # -> nbest.txt; hypotheses in /tmp/nbest.json

Each quiet cached question is decoded as the pipeline decodes a turn, with CTranslate2 asked for
all 5 hypotheses of the beam; the oracle picks, per question, the one closest to the reference.
It bounds what rescoring the beam (with a domain language model, say) could gain.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks/results/whisper-decode")
import jiwer
from sweep import questions

from presence.benchmarks.conversation.metrics import normalize
from presence.framework import registry
from presence.framework.persona import load_persona
from presence.processors.stt.whisper import WhisperParams

guide = load_persona(Path("pipelines/personas/guide/persona.yaml"))
ctx = registry.BuildContext(persona=guide, base_dir=Path("pipelines"))
stt = registry.get("stt", "whisper").factory(WhisperParams(hotwords=["presence"]), ctx)
stt._load()
stt.warm_up()
real = stt._model.model
captured = []


class Proxy:
    def __getattr__(self, k):
        return getattr(real, k)

    def generate(self, *a, **k):
        if k.get("beam_size", 1) > 1:
            k["num_hypotheses"] = k["beam_size"]
        r = real.generate(*a, **k)
        captured.append(
            [
                (stt._model.hf_tokenizer.decode(s), sc)
                for s, sc in zip(r[0].sequences_ids, r[0].scores, strict=False)
            ]
        )
        return r


stt._model.model = Proxy()
out = []
for qid, ref, audio in questions(Path(".presence-cache/conversation")):
    captured.clear()
    text = stt.text_of(stt.decode(audio, None))
    hyps = captured[0] if captured else []
    out.append({"id": qid, "ref": ref, "top": text, "nbest": hyps})
json.dump(out, open("/tmp/nbest.json", "w"))
refs = [" ".join(normalize(o["ref"])) for o in out]
top = [" ".join(normalize(o["top"])) or "-" for o in out]


def best(o, r):
    c = [" ".join(normalize(h)) or "-" for h, _ in o["nbest"]] or ["-"]
    return min(c, key=lambda h: jiwer.wer(r, h))


orc = [best(o, r) for o, r in zip(out, refs, strict=False)]
print("top1", round(jiwer.wer(refs, top), 3), "oracle5", round(jiwer.wer(refs, orc), 3), len(out))
