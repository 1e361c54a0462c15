"""Two users in two conversations, a session process each: freezing one leaves the other live.

The service runs for real (uvicorn on a loopback port, the real ``ProcessLauncher``, the offline
pipeline at a small video size to spare the test cores); two Python WebRTC users
(``helpers.webrtc_client``) join like the page does. Both hear the greeting and see the persona;
then conversation A's session process is stopped with SIGSTOP (as a stage blocking its process
would) while conversation B's video keeps arriving.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import httpx
import pytest
from helpers.service import KEY_A, process_service, serve_app  # noqa: F401 (re-exported)
from helpers.webrtc_client import WebRTCUser

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP/SIGCONT")

SIZE, FPS = 128, 15  # the renderer's video, small to spare 2 busy cores (SmallWebRTC sends 30 fps)
GREETING = "Hello there! Welcome to the presence demo."
FREEZE_S = 2.0
SETTLE_S = 0.5  # frames already in flight when A stops may still arrive this long after


def persona_body(size: int = SIZE, fps: int = FPS) -> dict:
    return {
        "persona_name": "Isolation",
        "greeting": GREETING,
        "layers": {"transport": {"video": {"width": size, "height": size, "fps": fps}}},
    }


@pytest.fixture
def served(tmp_path):
    with process_service(tmp_path, max_sessions=2) as served:
        yield served


async def test_a_frozen_session_process_does_not_stall_another_call(served):
    base, launcher, receiver = served
    async with httpx.AsyncClient(base_url=base, headers={"x-api-key": KEY_A}, timeout=60) as api:
        persona = (await api.post("/v2/personas", json=persona_body())).json()
        created = []
        for _ in range(2):
            response = await api.post(
                "/v2/conversations",
                json={"persona_id": persona["persona_id"], "callback_url": receiver.url},
            )
            assert response.status_code == 200, response.text
            created.append(response.json())
        ids = [c["conversation_id"] for c in created]
        a, b = users = [WebRTCUser(c["conversation_url"]) for c in created]
        try:
            await asyncio.gather(*(u.connect() for u in users))
            # Both see the persona and hear its greeting.
            await asyncio.gather(*(u.wait_for_video(10, timeout=60) for u in users))
            await asyncio.gather(*(u.wait_for_audible(timeout=30) for u in users))
            assert all(u.received.video_size == (SIZE, SIZE) for u in users)

            t0 = time.monotonic()
            await asyncio.sleep(FREEZE_S)
            t1 = time.monotonic()
            rate_a, rate_b = a.received.fps(t0, t1), b.received.fps(t0, t1)
            assert rate_a > 0 and rate_b > 0

            pid = launcher.pid(ids[0])
            assert pid is not None and pid != launcher.pid(ids[1])
            os.kill(pid, signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                await asyncio.sleep(FREEZE_S)
                resumed = time.monotonic()
            finally:
                os.kill(pid, signal.SIGCONT)

            # A really froze (its video stopped) while B kept close to its own rate.
            window = (stopped + SETTLE_S, resumed)
            assert a.received.fps(*window) < 0.25 * rate_a, (a.received.fps(*window), rate_a)
            assert b.received.fps(*window) >= 0.5 * rate_b, (b.received.fps(*window), rate_b)
            # A comes back.
            await a.wait_for_video(len(a.received.video_times) + 5, timeout=20)
        finally:
            ends = await asyncio.gather(
                *(api.post(f"/v2/conversations/{cid}/end") for cid in ids), return_exceptions=True
            )
            await asyncio.gather(*(u.close() for u in users))

    for ended in ends:
        assert not isinstance(ended, BaseException), ended
        assert ended.json()["shutdown_reason"] == "end_conversation_endpoint_hit"
    joined = await asyncio.to_thread(
        receiver.wait_for,
        lambda evs: (
            {e["conversation_id"] for e in evs if e["event_type"] == "system.replica_joined"}
            >= set(ids)
        ),
    )
    assert len([e for e in joined if e["event_type"] == "system.replica_joined"]) >= 2
