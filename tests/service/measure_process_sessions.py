"""Measure: N concurrent conversations through the real service, a session process each.

Run: ``.venv/bin/python tests/service/measure_process_sessions.py [N] [SIZE] [SECONDS]``
(default 2 conversations, 256 px, 12 s after the greeting). The service runs with the real
``ProcessLauncher`` and the offline pipeline (renderer at ``FPS``); N Python WebRTC users
(``helpers.webrtc_client``, silent microphone) join at once, and each is measured on what it
receives, per conversation:

- ``create``: ``POST /v2/conversations`` until it answered (the session process is ready);
- ``joined``: that POST until the ``system.replica_joined`` webhook arrived (the user's
  pipeline started);
- ``first frame``: the offer until the first video frame arrived (the stages are prepared from
  create on, in a thread of the session process; an offer this early waits for them);
- ``greeting``: the offer until the greeting was audible (20 ms RMS above silence);
- ``fps``: video frames received per second from the first frame to the end vs the transport's
  send rate (SmallWebRTC sends ``AIORTC_VIDEO_FPS``, repeating the renderer's latest image);
- audio: ``short`` = wall time minus audio received since the first audio (a stream that fell
  behind), ``stalls`` = pauses > 100 ms between received 20 ms windows (count, longest), and
  ``greeting stretched`` = the greeting's loud span as received minus as espeak-ng makes it:
  silence the transport inserted when the pipeline's audio came late (underruns), ±20 ms.

Not collected by pytest: the file name does not start with ``test_``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers.service import KEY_A, Receiver  # noqa: E402
from helpers.webrtc_client import SILENCE_RMS, Received, WebRTCUser  # noqa: E402
from loguru import logger  # noqa: E402
from test_session_isolation import GREETING, persona_body, process_service  # noqa: E402

from presence.processors.renderer.output_sync import AIORTC_VIDEO_FPS  # noqa: E402
from presence.processors.tts.engines.espeak import EspeakEngine  # noqa: E402

FPS = 25  # the renderer's rate (local.yaml's)
LOUD = SILENCE_RMS * 10
GREETING_TIMEOUT_S = 90.0


async def join(api: httpx.AsyncClient, persona_id: str, hook: str) -> dict:
    """Create a conversation and join it at once; returns its id, the user and the times."""
    t_create = time.monotonic()
    created = await api.post(
        "/v2/conversations", json={"persona_id": persona_id, "callback_url": hook}
    )
    created.raise_for_status()
    t_offer = time.monotonic()
    user = WebRTCUser(created.json()["conversation_url"])
    await user.connect()
    cid = created.json()["conversation_id"]
    return {"cid": cid, "user": user, "t_create": t_create, "t_offer": t_offer}


def loud_span(rms: list[float] | np.ndarray, window: float = 0.02) -> float:
    """Seconds from the first loud 20 ms window to the end of the last one."""
    loud = np.flatnonzero(np.asarray(rms) > LOUD)
    return (loud[-1] - loud[0] + 1) * window if len(loud) else 0.0


def greeting_span(text: str) -> float:
    """The greeting's loud span as the TTS makes it (sentence by sentence, as pipecat sends it)."""
    engine = EspeakEngine()
    audio = (
        np.concatenate(
            [engine.render(s).audio for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
        ).astype(np.float32)
        / 32768.0
    )
    step = engine.sample_rate // 50
    windows = audio[: len(audio) // step * step].reshape(-1, step)
    return loud_span(np.sqrt((windows**2).mean(axis=1)))


def report(session: dict, receiver: Receiver, end: float, expected: float) -> str:
    """One line of figures for one conversation (see the module docstring)."""
    got: Received = session["user"].received
    t_create, t_offer = session["t_create"], session["t_offer"]
    joined = float("nan")  # no webhook
    with contextlib.suppress(KeyError):
        joined = receiver.arrival("system.replica_joined", session["cid"]) - t_create
    first = got.first_frame_after(t_offer)
    loud = [t for t, r in zip(got.audio_times, got.audio_rms, strict=True) if r > LOUD]
    if first is None or not loud:
        return f"  {session['cid']}: no video or no greeting received"
    fps = got.fps(t_offer + first, end)
    audio_start = got.audio_times[0]
    stalls = got.audio_stalls(0.1)
    longest = max((g for _, g in stalls), default=0.0)
    return (
        f"  {session['cid']}: create {t_offer - t_create:.2f} s, joined {joined:.2f} s, "
        f"first frame {first:.2f} s, greeting {loud[0] - t_offer:.2f} s; "
        f"fps {fps:.1f}/{AIORTC_VIDEO_FPS}; "
        f"audio short {got.audio_shortfall(audio_start, end):.2f} s of {end - audio_start:.1f} s, "
        f"stalls {len(stalls)} (longest {longest * 1000:.0f} ms), "
        f"greeting stretched {(loud_span(got.audio_rms) - expected) * 1000:+.0f} ms"
    )


async def measure(n: int, size: int, seconds: float) -> None:
    """Run ``n`` conversations at once for ``seconds`` after every greeting began; print figures."""
    with process_service(Path(tempfile.mkdtemp()), max_sessions=n) as (base, _, receiver):
        async with httpx.AsyncClient(
            base_url=base, headers={"x-api-key": KEY_A}, timeout=90
        ) as api:
            persona = (await api.post("/v2/personas", json=persona_body(size, FPS))).json()
            # This process holds the service and every user: without this, a full garbage
            # collection over everything imported pauses the users' reception ~250 ms.
            gc.freeze()
            wall = time.monotonic()
            sessions = await asyncio.gather(
                *(join(api, persona["persona_id"], receiver.url) for _ in range(n))
            )
            try:
                for s in sessions:
                    await s["user"].wait_for_audible(timeout=GREETING_TIMEOUT_S)
                await asyncio.sleep(seconds)
            finally:
                end = time.monotonic()
                await asyncio.gather(
                    *(api.post(f"/v2/conversations/{s['cid']}/end") for s in sessions),
                    return_exceptions=True,
                )
                await asyncio.gather(*(s["user"].close() for s in sessions))
        await asyncio.to_thread(
            receiver.wait_for,
            lambda evs: sum(e["event_type"] == "system.replica_joined" for e in evs) >= n,
            10,
        )
        expected = greeting_span(GREETING)
        print(f"{n} conversation(s) at {size} px, renderer {FPS} fps, {end - wall:.1f} s wall")
        for s in sessions:
            print(report(s, receiver, end, expected))


def main(n: int = 2, size: int = 256, seconds: int = 12) -> None:
    logger.remove()  # the service's own logs (this process); session processes log on their own
    logger.add(sys.stderr, level="WARNING")
    asyncio.run(measure(n, size, seconds))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
