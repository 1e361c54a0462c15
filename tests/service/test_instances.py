"""Two ``presence serve`` replicas over one PostgreSQL database serve the same API: each webhook is
delivered once, each conversation ends once (whichever replica is asked, or times out), and a
replica that is killed loses nothing (the other ends its conversations and delivers the outbox)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers.service import KEY_A, PipecatLauncher, free_port, make_settings

from presence.service.app import create_app
from presence.service.webhooks import EVENT_ID_HEADER

FAST = {
    "heartbeat_interval": 0.2,
    "instance_stale_after": 1.5,
    "max_sessions": 4,
    "webhook_timeout": 1.0,  # a dead replica's claim on an event lapses after 2 x this + 5 s
}


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def replica(tmp_path: Path, name: str, url: str) -> TestClient:
    settings = make_settings(tmp_path / name, database_url=url, instance_id=name, **FAST)
    return TestClient(
        create_app(settings, launcher=PipecatLauncher()), headers={"x-api-key": KEY_A}
    )


@pytest.fixture
def pg_url(postgres):
    return postgres.new_database()


def test_two_replicas_deliver_each_webhook_once_and_end_each_call_once(tmp_path, pg_url, receiver):
    receiver.up()
    with replica(tmp_path, "a", pg_url) as a, replica(tmp_path, "b", pg_url) as b:
        made = []
        for client in (a, b, a, b):
            body = {"callback_url": receiver.url}
            made.append(client.post("/v2/conversations", json=body).json()["conversation_id"])
        timed = a.post(
            "/v2/conversations",
            json={"callback_url": receiver.url, "properties": {"max_call_duration": 1}},
        ).json()["conversation_id"]
        # Both replicas list every conversation.
        assert {c["conversation_id"] for c in b.get("/v2/conversations").json()["data"]} >= {
            *made,
            timed,
        }
        # End each through the replica that does not run it (as a load balancer would).
        for cid, other in zip(made, (b, a, b, a), strict=True):
            state = other.post(f"/v2/conversations/{cid}/end").json()
            assert state["status"] == "ended", state
            assert state["shutdown_reason"] == "end_conversation_endpoint_hit"
        wait_for(lambda: b.get(f"/v2/conversations/{timed}").json()["status"] == "ended")
        wait_for(lambda: len(receiver.received) >= 15)
        time.sleep(1.0)  # both outbox workers keep scanning: nothing is sent twice

    ids = Counter(headers[EVENT_ID_HEADER] for headers, _ in receiver.received)
    assert len(ids) == 15 and set(ids.values()) == {1}, ids
    for cid in [*made, timed]:
        events = receiver.events(cid)
        assert [e["event_type"] for e in events] == [
            "system.replica_joined",
            "system.shutdown",
            "application.transcription_ready",
        ]
    shutdown = receiver.events(timed)[1]["properties"]["shutdown_reason"]
    assert shutdown == "max_call_duration"


SERVER = """
import sys, uvicorn
sys.path.insert(0, {tests!r})
from helpers.service import PipecatLauncher, make_settings
from pathlib import Path
from presence.service.app import create_app
settings = make_settings(Path({tmp!r}), database_url={db!r}, instance_id="doomed", **{fast!r})
app = create_app(settings, launcher=PipecatLauncher())
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""


def test_a_killed_replica_loses_nothing(tmp_path, pg_url, receiver):
    port = free_port()
    script = SERVER.format(
        tests=str(Path(__file__).parents[1]),
        tmp=str(tmp_path / "doomed"),
        port=port,
        db=pg_url,
        fast=FAST,
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": KEY_A}) as c:
            wait_for(lambda: _up(c), timeout=60)
            body = {"callback_url": receiver.url, "custom_greeting": "Said before the crash"}
            cid = c.post("/v2/conversations", json=body).json()["conversation_id"]
            wait_for(lambda: c.get(f"/v2/conversations/{cid}").json()["transcript"])
        with replica(tmp_path, "survivor", pg_url) as survivor:
            assert survivor.get(f"/v2/conversations/{cid}").json()["status"] == "active"
            os.kill(proc.pid, signal.SIGKILL)  # mid-call; its replica_joined webhook is pending
            proc.wait(10)
            receiver.up()
            state = wait_for(
                lambda: (
                    (s := survivor.get(f"/v2/conversations/{cid}").json())["status"] == "ended"
                    and s
                )
            )
            wait_for(lambda: len(receiver.events(cid)) >= 3)
            time.sleep(0.5)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    assert state["shutdown_reason"] == "service_instance_lost"
    assert state["transcript"][0]["content"] == "Said before the crash"
    events = receiver.events(cid)
    assert [e["event_type"] for e in events] == [
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    assert events[1]["properties"]["shutdown_reason"] == "service_instance_lost"
    assert events[2]["properties"]["transcript"][0]["content"] == "Said before the crash"


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/v2/usage").status_code == 200
    except httpx.HTTPError:
        return False
