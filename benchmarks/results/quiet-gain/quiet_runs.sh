#!/usr/bin/env bash
# A question heard word for word at its own level (p12 of the sixteenth blind set, espeak-ng
# en-gb-x-gbcwmd+steph2... as cached), scaled to peak at -30 and -40 dBFS, through the offline
# pipeline in real time with the quiet voice gain off (as before) and on (the default).
# Usage, from the repository root: bash benchmarks/results/quiet-gain/quiet_runs.sh > benchmarks/results/quiet-gain/quiet-runs.txt
set -euo pipefail
src=$(ls .presence-cache/conversation/p12-*.wav)
tmp=$(mktemp -d)
python - "$src" "$tmp" <<'PY'
import sys, numpy as np, soundfile as sf
a, r = sf.read(sys.argv[1], dtype="float32")
for db in (-30, -40):
    sf.write(f"{sys.argv[2]}/peak{-db}.wav", a * 10 ** (db / 20) / np.abs(a).max(), r, subtype="PCM_16")
PY
for level in 30 40; do
  for gain in 0 30; do
    presence run pipelines/local.yaml --input "$tmp/peak$level.wav" --output "$tmp/out.mp4" \
      --set stages.vad.quiet_gain_db=$gain > /dev/null 2>&1
    python - "$tmp/out.json" "$level" "$gain" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
heard = " | ".join(t["content"] for t in d["turns"] if t["role"] == "user") or "(no turn)"
reply = [t["content"][:60] for t in d["turns"] if t["role"] == "assistant"]
v2v = [t.get("voice_to_voice_ms") for t in d["timings"]]
print(f"peak -{sys.argv[2]} dBFS, quiet_gain_db {sys.argv[3]}: heard {heard!r}; replies {reply}; v2v {v2v}")
PY
  done
done
rm -rf "$tmp"
