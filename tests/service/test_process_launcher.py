"""A process per conversation: isolation, crash handling, interactions and the page through the parent.

The service runs with the real ``ProcessLauncher`` and the offline pipeline; nobody joins, so the
session processes serve their pages and wait (the browser path is ``test_browser_conversation``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers.service import KEY_A, Receiver, free_port, make_settings

from presence.service.app import create_app
from presence.service.process_launcher import ProcessLauncher

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def wait_until(predicate, timeout: float = 30.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def process_service(tmp_path):
    launcher = ProcessLauncher(ice_host_addresses=["127.0.0.1"])
    receiver = Receiver()
    receiver.up()
    app = create_app(make_settings(tmp_path, max_sessions=3), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        yield client, launcher, receiver
    receiver.down()


def test_a_crashed_session_ends_only_its_conversation(process_service):
    client, launcher, receiver = process_service
    ids = [
        client.post("/v2/conversations", json={"callback_url": receiver.url}).json()[
            "conversation_id"
        ]
        for _ in range(2)
    ]
    pids = [launcher.pid(cid) for cid in ids]
    assert None not in pids and len(set(pids)) == 2 and os.getpid() not in pids

    # Each conversation's page signalling is its own process, reached through the service.
    for cid in ids:
        assert client.get(f"/c/{cid}/").status_code == 200
        offer = client.post(f"/c/{cid}/api/offer", json={"sdp": "v=0", "type": "offer"})
        assert offer.status_code == 400 and "SDP" in offer.json()["detail"]

    os.kill(pids[0], signal.SIGKILL)  # as a segfault in a native library would
    crashed = wait_until(
        lambda: (r := client.get(f"/v2/conversations/{ids[0]}").json())["status"] == "ended" and r
    )
    assert crashed["shutdown_reason"] == "exception"
    assert crashed["failed_stage"] == "session"
    assert "exited" in crashed["error_message"]
    shutdown = receiver.wait_for(
        lambda evs: [e for e in evs if e["event_type"] == "system.shutdown"]
    )
    assert shutdown[0]["conversation_id"] == ids[0]
    assert shutdown[0]["properties"]["shutdown_reason"] == "exception"

    # The other call is untouched: live, its process up, its page still answering.
    other = client.get(f"/v2/conversations/{ids[1]}").json()
    assert other["status"] == "active" and alive(pids[1])
    assert (
        client.post(f"/c/{ids[1]}/api/offer", json={"sdp": "", "type": "offer"}).status_code == 400
    )
    assert client.get(f"/c/{ids[0]}/").status_code == 404

    ended = client.post(f"/v2/conversations/{ids[1]}/end").json()
    assert ended["shutdown_reason"] == "end_conversation_endpoint_hit"
    wait_until(lambda: not alive(pids[1]), timeout=15)


def test_interactions_reach_the_session_process(process_service):
    client, launcher, _ = process_service
    cid = client.post("/v2/conversations", json={}).json()["conversation_id"]
    echo = {
        "message_type": "conversation",
        "event_type": "conversation.echo",
        "conversation_id": cid,
        "properties": {"text": "hello"},
    }
    # Nobody joined: the child's pipeline is not running yet, and says so.
    response = client.post(f"/v2/conversations/{cid}/interactions", json=echo)
    assert response.status_code == 409
    assert "nobody joined" in response.json()["detail"]
    # The control routes are not reachable through the public page proxy.
    assert client.post(f"/c/{cid}/api/../_control/end", json={}).status_code in (404, 405)
    assert client.post(f"/c/{cid}/_control/end", json={}).status_code in (404, 405)
    assert client.get(f"/v2/conversations/{cid}").json()["status"] == "active"
    client.post(f"/v2/conversations/{cid}/end")


def test_the_concurrency_cap_counts_session_processes(process_service):
    client, launcher, _ = process_service
    ids = [client.post("/v2/conversations", json={}).json()["conversation_id"] for _ in range(3)]
    refused = client.post("/v2/conversations", json={})
    assert refused.status_code == 429 and "PRESENCE_MAX_SESSIONS" in refused.json()["detail"]
    pid = launcher.pid(ids[0])
    client.post(f"/v2/conversations/{ids[0]}/end")
    wait_until(lambda: not alive(pid), timeout=15)
    assert client.post("/v2/conversations", json={}).status_code == 200


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(")")[-1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_killing_the_service_leaves_no_session_processes(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "PRESENCE_API_KEYS": KEY_A,
        "PRESENCE_DATA_DIR": str(tmp_path / "data"),
        "PRESENCE_ICE_HOST_ADDRESSES": "127.0.0.1",
    }
    service = subprocess.Popen(
        [sys.executable, "-m", "presence.framework.cli", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _up(base), timeout=90, step=0.2)
        headers = {"x-api-key": KEY_A}
        for _ in range(2):
            created = httpx.post(f"{base}/v2/conversations", json={}, headers=headers, timeout=60)
            assert created.status_code == 200 and created.json()["status"] == "active"
        tree = descendants(service.pid)
        assert len(tree) >= 2  # the forkserver and the session processes
        service.kill()
        service.wait(10)
        wait_until(lambda: not any(alive(p) for p in tree), timeout=30, step=0.2)
    finally:
        if service.poll() is None:
            service.kill()


def _up(base: str) -> bool:
    try:
        return httpx.get(f"{base}/openapi.json", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
