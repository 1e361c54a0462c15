"""``examples/bot.py`` under pipecat's own runner: a presence pipeline as a pipecat bot.

One runner process (``python examples/bot.py -t webrtc --host 127.0.0.1 --port P``) serves the
offline pipeline at a small size with the still face; a Python WebRTC user (the page's signalling,
``helpers.webrtc_client``) asks a question and hears the answer, and pipecat 1.14's eval harness
(``pipecat.evals``) plays ``examples/evals/guide.yaml`` against the same runner's ``/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers.service import free_port
from helpers.webrtc_client import WebRTCUser

from presence.transports.webrtc import limit_ice_host_addresses

REPO = Path(__file__).resolve().parents[2]
QUESTION = REPO / "examples/assets/what-is-presence.wav"
SIZE = 128
LIGHT = ";".join(  # the offline pipeline, small and light for two busy cores
    [
        "stages.renderer={provider: still}",
        "stages.turn={provider: speech-timeout, user_speech_timeout: 0.6}",
        f"transport.video={{width: {SIZE}, height: {SIZE}, fps: 15}}",
    ]
)


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Iterator[str]:
    """pipecat's runner serving ``examples/bot.py`` on a loopback port; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("runner") / "runner.log"
    env = {
        **os.environ,
        "PRESENCE_PIPELINE": "local",
        "PRESENCE_SET": LIGHT,
        "PRESENCE_GREET": "0",
        "PRESENCE_ICE_HOST_ADDRESSES": "127.0.0.1",
    }
    command = [sys.executable, "examples/bot.py", "-t", "webrtc", "--host", "127.0.0.1"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], cwd=REPO, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the runner did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/client/", timeout=2).status_code < 500:
                    break
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def texts(messages: list, kind: str) -> str:
    """The text of every RTVI message of ``kind`` the bot sent, joined."""
    found = [m.get("data", {}).get("text", "") for m in messages if isinstance(m, dict)]
    kinds = [m.get("type") for m in messages if isinstance(m, dict)]
    return " ".join(t for t, k in zip(found, kinds, strict=True) if k == kind)


async def test_a_webrtc_user_sees_the_face_and_hears_an_answer(runner):
    previous = limit_ice_host_addresses(["127.0.0.1"])
    try:
        async with WebRTCUser(f"{runner}/", mic=QUESTION) as user:
            await user.wait_for_video(10, timeout=60)
            assert user.received.video_size == (SIZE, SIZE)
            await user.wait_for_audible(timeout=60)  # the answer (no greeting: PRESENCE_GREET=0)
            deadline = time.monotonic() + 30
            while "framework" not in texts(user.received.messages, "bot-output").lower():
                assert time.monotonic() < deadline, user.received.messages[-20:]
                await asyncio.sleep(0.2)
            heard = texts(user.received.messages, "user-transcription").lower()
            assert "presence" in heard
    finally:
        limit_ice_host_addresses(previous)


async def test_the_bot_passes_a_pipecat_eval_scenario(runner, tmp_path):
    from pipecat.evals.scenario import EvalScenarioFile
    from pipecat.evals.session import EvalSession, EvalSessionParams

    scenarios = EvalScenarioFile.load(REPO / "examples/evals/guide.yaml")
    assert [s.name for s in scenarios] == ["guide/what_is_presence", "guide/swapping_a_provider"]
    params = EvalSessionParams(bot_ready_timeout_s=60, default_timeout_ms=30000)
    ws_url = runner.replace("http://", "ws://") + "/ws"
    for scenario in scenarios:
        result = await EvalSession.from_scenario(scenario, ws_url, params=params).run()
        assert result.passed, (scenario.name, result.failures)
    # and the harness does check: an answer the knowledge base cannot give fails
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: wrong\nscenarios:\n  - name: bananas\n    turns:\n"
        "      - user: What is presence?\n        expect:\n"
        "          - {event: llm_response, text_contains: bananas, within_ms: 4000}\n"
    )
    (scenario,) = EvalScenarioFile.load(wrong)
    result = await EvalSession.from_scenario(scenario, ws_url, params=params).run()
    assert not result.passed and "bananas" in str(result.failures)
