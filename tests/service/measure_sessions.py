"""Measure: N offline conversations at once through the service (FileLauncher, real time).

Run: ``python tests/service/measure_sessions.py [N] [SIZE]`` (default 3 conversations, 128 px).
Prints, per conversation, the media time vs wall time, the persona's video frames written vs
expected, and voice-to-voice latency; a session keeps real time when its frames match its media
time and its latency stays near the single-session figure.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402
from helpers.service import KEY_A, FileLauncher, make_settings  # noqa: E402
from test_sessions import question_wav  # noqa: E402

from presence.service.app import create_app  # noqa: E402

QUESTIONS = [
    "how do I swap a provider?",
    "what does the renderer do?",
    "how do I swap a provider?",
    "what does the renderer do?",
]


def main(n: int = 3, size: int = 128) -> None:
    tmp = Path(tempfile.mkdtemp())
    wavs = [question_wav(tmp / f"q{i}.wav", QUESTIONS[i % 4]) for i in range(n)]
    launcher = FileLauncher(wavs, tmp / "out", fast=False)
    app = create_app(make_settings(tmp, max_sessions=n), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as api:
        persona = api.post(
            "/v2/personas",
            json={
                "persona_name": "m",
                "greeting": "Hello, ask me something.",
                "layers": {"transport": {"video": {"width": size, "height": size}}},
            },
        ).json()
        t0 = time.monotonic()
        cids = [
            api.post("/v2/conversations", json={"persona_id": persona["persona_id"]}).json()[
                "conversation_id"
            ]
            for _ in range(n)
        ]
        deadline = time.monotonic() + 120
        while any(not launcher.tasks[c].done() for c in cids) and time.monotonic() < deadline:
            time.sleep(0.2)
        wall = time.monotonic() - t0
        gaps = {}
        for cid in cids:
            turns = api.post(f"/v2/conversations/{cid}/end").json()["transcript"]
            # user turn end -> the persona's answer starts (session ms, from the transcript)
            gaps[cid] = [
                round(b["started_ms"] - a["ended_ms"])
                for a, b in zip(turns, turns[1:], strict=False)
                if a["role"] == "user" and b["role"] == "assistant" and a.get("ended_ms")
            ]
    print(f"{n} conversations at {size}px, all ended after {wall:.1f} s wall")
    for cid in cids:
        report = json.loads((tmp / "out" / f"{cid}.json").read_text())
        media = report["session"]["media_duration_s"]
        out = report.get("output") or {}
        frames = out.get("video_frames") or out.get("frames")
        v2v = gaps[cid]
        print(
            f"  {cid}: media {media:.1f} s, end {report['session']['end_reason']}, "
            f"video frames {frames} (expected ~{media * 25:.0f}), user end -> answer ms {v2v}, "
            f"rendered images {out.get('images_received')}"
        )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
