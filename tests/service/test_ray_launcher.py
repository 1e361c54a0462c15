"""Ray placement on a small local Ray cluster (2 CPUs, token authentication left on): each
conversation is an actor asking for 1 CPU, a full cluster answers 429, and a worker that dies ends
its conversation with ``worker_lost``, keeping its transcript and sending its webhooks once."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers.service import KEY_A, make_settings

from presence.service.app import create_app
from presence.service.webhooks import EVENT_ID_HEADER

ray = pytest.importorskip("ray")
TESTS = Path(__file__).resolve().parents[1]


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster whose workers can import the test helpers."""
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        namespace="presence",
        runtime_env={"env_vars": {"PYTHONPATH": path}},
        log_to_driver=False,
    )
    assert os.environ.get("RAY_AUTH_MODE") == "token"  # Ray's default for a new cluster, kept on
    yield
    ray.shutdown()


def test_calls_run_as_actors_429_when_full_and_worker_lost_keeps_everything(
    cluster, tmp_path, receiver
):
    from presence.service.ray_launcher import RayLauncher

    launcher = RayLauncher(num_cpus=1, inner="helpers.service:PipecatLauncher")
    settings = make_settings(tmp_path, max_sessions=10, placement="ray")
    receiver.up()
    with TestClient(create_app(settings, launcher=launcher), headers={"x-api-key": KEY_A}) as c:
        body = {"callback_url": receiver.url, "custom_greeting": "Hello from a Ray worker"}
        cids = [c.post("/v2/conversations", json=body).json()["conversation_id"] for _ in "ab"]
        for cid in cids:
            wait_for(lambda cid=cid: c.get(f"/v2/conversations/{cid}").json()["transcript"])
            assert launcher.node_of(cid)  # placed on a node of the cluster
        full = c.post("/v2/conversations", json=body)
        assert full.status_code == 429, full.text
        assert "Ray cluster" in full.json()["detail"] and "CPU" in full.json()["detail"]

        os.kill(launcher._sessions[cids[0]].pid, signal.SIGKILL)  # the worker dies mid-call
        state = wait_for(
            lambda: (s := c.get(f"/v2/conversations/{cids[0]}").json())["status"] == "ended" and s
        )
        assert state["shutdown_reason"] == "worker_lost"
        assert state["transcript"][0]["content"] == "Hello from a Ray worker"
        # Its CPU is back: another conversation fits again.
        wait_for(lambda: c.post("/v2/conversations", json=body).status_code == 200)
        wait_for(lambda: len(receiver.events(cids[0])) >= 3)
        time.sleep(0.5)

    events = receiver.events(cids[0])
    assert [e["event_type"] for e in events] == [
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    assert events[1]["properties"]["shutdown_reason"] == "worker_lost"
    assert events[2]["properties"]["transcript"][0]["content"] == "Hello from a Ray worker"
    assert set(Counter(h[EVENT_ID_HEADER] for h, _ in receiver.received).values()) == {1}
