"""Ray placement on two local Ray nodes (``ray start`` processes on loopback, 2 CPUs each, token
authentication left on): each conversation is an actor asking for 1 CPU, so four calls fill the
cluster two per node and a fifth gets 429 (also when created at once); a worker process that dies ends its conversation with
``worker_lost``; a whole node that dies ends exactly the conversations it ran, keeping every
transcript line stored and sending every webhook once, while the other node's calls go on; an
API replica that dies leaves its calls running on their detached actors, and the other replica
adopts them (also when an end request finds the orphan first); an actor that no replica polls any more ends its call and frees its CPU."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest
from fastapi.testclient import TestClient
from helpers.service import KEY_A, make_settings

from presence.service.app import create_app
from presence.service.webhooks import EVENT_ID_HEADER

ray = pytest.importorskip("ray")
TESTS = Path(__file__).resolve().parents[1]
NODES, CPUS_PER_NODE = 2, 2
CALLS = NODES * CPUS_PER_NODE
EVENTS = ["system.replica_joined", "system.shutdown", "application.transcription_ready"]


def wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


@pytest.fixture(scope="module")
def cluster():
    """Two local Ray nodes whose workers can import the test helpers; stopped at the end."""
    from presence.benchmarks.sessions.cluster import LocalRayCluster

    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    nodes = LocalRayCluster(
        nodes=NODES, num_cpus=CPUS_PER_NODE, pin=False, extra_env={"PYTHONPATH": path}
    )
    with nodes, mock.patch.dict(os.environ, nodes.env):
        # This process imported Ray before it had the cluster's token: reread RAY_AUTH_MODE, as
        # ray.init does when it turns token authentication on for a cluster it starts.
        from ray._raylet import Config

        Config.initialize("")
        ray.init(address=nodes.address, namespace="presence", log_to_driver=False)
        try:
            assert os.environ["RAY_AUTH_MODE"] == "token"  # Ray's default, kept on
            yield nodes
        finally:
            ray.shutdown()


def service(tmp_path):
    from presence.service.ray_launcher import RayLauncher

    launcher = RayLauncher(num_cpus=1, inner="helpers.service:PipecatLauncher")
    settings = make_settings(tmp_path, max_sessions=10, placement="ray")
    app = create_app(settings, launcher=launcher)
    return launcher, TestClient(app, headers={"x-api-key": KEY_A})


def lines(holder: dict) -> list[tuple[str, str]]:
    """A transcript's lines as (role, content)."""
    return [(t["role"], t["content"]) for t in holder["transcript"]]


def start_calls(c, body) -> list[str]:
    """Fill the cluster; each call greets (its first transcript line)."""
    cids = []
    for _ in range(CALLS):
        response = c.post("/v2/conversations", json=body)
        assert response.status_code == 200, response.text
        cids.append(response.json()["conversation_id"])
    for cid in cids:
        wait_for(lambda cid=cid: c.get(f"/v2/conversations/{cid}").json()["transcript"])
    return cids


STALE_AFTER_S = 1.5  # a replica's lease goes stale after this long without a heartbeat


def two_replicas(tmp_path, postgres):
    """Two API replicas over one new PostgreSQL database, placing calls on the cluster."""
    from presence.service.ray_launcher import RayLauncher

    wait_for(lambda: ray.available_resources().get("CPU", 0) >= 1)  # (a node may be gone)
    url = postgres.new_database()
    fast = {"heartbeat_interval": 0.2, "instance_stale_after": STALE_AFTER_S, "max_sessions": 4}
    replicas = []
    for name in ("a", "b"):
        launcher = RayLauncher(num_cpus=1, inner="helpers.service:PipecatLauncher")
        settings = make_settings(
            tmp_path / name, database_url=url, instance_id=name, placement="ray", **fast
        )
        client = TestClient(create_app(settings, launcher=launcher), headers={"x-api-key": KEY_A})
        replicas.append((launcher, client))
    return replicas


def die(client, launcher) -> None:
    """What the others see of a killed replica: its heartbeat and polls stop, its calls forgotten."""

    async def stop():
        supervisor = client.app.state.supervisor
        supervisor._heartbeat.cancel()
        for handle in launcher._sessions.values():
            handle.poller.cancel()
        launcher._sessions.clear()
        for live in supervisor.live.values():
            live.watchdog.cancel()
        supervisor.live.clear()

    client.portal.call(stop)


def test_calls_fill_each_node_429_when_full_and_a_lost_worker_keeps_everything(
    cluster, tmp_path, receiver
):
    from presence.service.session_spec import ConversationSpec
    from presence.service.supervisor import CapacityError

    launcher, client = service(tmp_path)
    # Calls created at once: each check holds its room until placed, so none overfills the cluster.
    specs = [ConversationSpec(f"held{i}", tmp_path / "p.yaml") for i in range(CALLS + 1)]
    for spec in specs[:CALLS]:
        launcher.check_capacity(spec)
    with pytest.raises(CapacityError):
        launcher.check_capacity(specs[-1])
    for spec in specs[:CALLS]:
        launcher.release(spec.conversation_id)

    receiver.up()
    with client as c:
        body = {"callback_url": receiver.url, "custom_greeting": "Hello from a Ray worker"}
        cids = start_calls(c, body)
        placed = Counter(launcher._sessions[cid].node_id for cid in cids)
        assert sorted(placed.values()) == [CPUS_PER_NODE] * NODES  # none on a node without room
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
    assert [e["event_type"] for e in events] == EVENTS
    assert events[1]["properties"]["shutdown_reason"] == "worker_lost"
    assert events[2]["properties"]["transcript"][0]["content"] == "Hello from a Ray worker"
    assert set(Counter(h[EVENT_ID_HEADER] for h, _ in receiver.received).values()) == {1}


def test_a_node_that_dies_ends_its_calls_and_loses_no_line_and_no_webhook(
    cluster, tmp_path, receiver
):
    wait_for(lambda: ray.available_resources().get("CPU", 0) >= CALLS)  # the first test's calls
    launcher, client = service(tmp_path)
    receiver.up()
    with client as c:
        cids = start_calls(c, {"callback_url": receiver.url, "custom_greeting": "Hello"})
        for cid in cids:  # a second line, said mid-call through the actor
            said = {"message_type": "conversation", "event_type": "conversation.echo",
                    "properties": {"text": f"Second line of {cid}"}}  # fmt: skip
            assert c.post(f"/v2/conversations/{cid}/interactions", json=said).status_code == 200
        for cid in cids:
            wait_for(
                lambda cid=cid: len(c.get(f"/v2/conversations/{cid}").json()["transcript"]) == 2
            )
        stored = {cid: lines(c.get(f"/v2/conversations/{cid}").json()) for cid in cids}
        assert c.post("/v2/conversations", json={}).status_code == 429
        worker_node = next(
            n["NodeID"] for n in ray.nodes() if "node:__internal_head__" not in n["Resources"]
        )
        lost = [cid for cid in cids if launcher._sessions[cid].node_id == worker_node]
        kept = [cid for cid in cids if cid not in lost]
        assert len(lost) == len(kept) == CPUS_PER_NODE

        cluster.kill_node(1)  # the worker node's ray start, raylet, agents and workers: SIGKILL
        for cid in lost:
            state = wait_for(
                lambda cid=cid: (
                    (s := c.get(f"/v2/conversations/{cid}").json())["status"] == "ended" and s
                )
            )
            assert state["shutdown_reason"] == "worker_lost"
            assert lines(state) == stored[cid]
        for cid in kept:  # the head node's calls go on, and end when asked
            assert c.get(f"/v2/conversations/{cid}").json()["status"] == "active"
            assert c.post(f"/v2/conversations/{cid}/end").status_code == 200
        wait_for(lambda: all(len(receiver.events(cid)) >= len(EVENTS) for cid in cids))
        time.sleep(0.5)  # a duplicate would arrive in this time

    for cid in cids:
        events = receiver.events(cid)
        assert [e["event_type"] for e in events] == EVENTS
        reason = events[1]["properties"]["shutdown_reason"]
        assert reason == "worker_lost" if cid in lost else reason != "worker_lost"
        assert lines(events[2]["properties"]) == stored[cid]
    ids = Counter(h[EVENT_ID_HEADER] for h, _ in receiver.received)
    assert len(ids) == len(EVENTS) * len(cids) and set(ids.values()) == {1}


def test_a_replica_that_dies_hands_its_calls_to_the_other_which_adopts_them(
    cluster, tmp_path, postgres, receiver
):
    # Two replicas over one PostgreSQL database place calls on the cluster. Replica A dies: its
    # heartbeat stops and it forgets its calls, as a killed process would. Its call's actor is
    # detached, so it goes on; B finds the orphan, adopts the actor and goes on serving the call
    # (interactions, transcript, the end), and every webhook is still sent once.
    (la, a), (lb, b) = two_replicas(tmp_path, postgres)
    receiver.up()
    with b:
        with a:
            body = {"callback_url": receiver.url, "custom_greeting": "Hello before the fall"}
            cid = a.post("/v2/conversations", json=body).json()["conversation_id"]
            wait_for(lambda: a.get(f"/v2/conversations/{cid}").json()["transcript"])
            actor_pid = la._sessions[cid].pid

            die(a, la)
        adopted = wait_for(lambda: lb._sessions.get(cid), timeout=30)
        assert adopted.pid == actor_pid  # the same worker process: the call never stopped
        state = b.get(f"/v2/conversations/{cid}").json()
        assert state["status"] == "active"
        said = {"message_type": "conversation", "event_type": "conversation.echo",
                "properties": {"text": "Said after the adoption"}}  # fmt: skip
        assert b.post(f"/v2/conversations/{cid}/interactions", json=said).status_code == 200
        wait_for(lambda: len(b.get(f"/v2/conversations/{cid}").json()["transcript"]) == 2)
        ended = b.post(f"/v2/conversations/{cid}/end").json()
        assert ended["status"] == "ended"
        assert ended["shutdown_reason"] == "end_conversation_endpoint_hit"
        assert [t["content"] for t in ended["transcript"]] == [
            "Hello before the fall",
            "Said after the adoption",
        ]
        wait_for(lambda: len(receiver.events(cid)) >= len(EVENTS))
        time.sleep(0.5)  # a duplicate would arrive in this time
        with pytest.raises(ValueError):  # the actor was removed with the call
            wait_for(lambda: not ray.get_actor(f"presence-{cid}", namespace="presence"), 10)

    events = receiver.events(cid)
    assert [e["event_type"] for e in events] == EVENTS
    assert [t["content"] for t in events[2]["properties"]["transcript"]][-1] == (
        "Said after the adoption"
    )
    assert set(Counter(h[EVENT_ID_HEADER] for h, _ in receiver.received).values()) == {1}


def test_an_end_asked_of_the_other_replica_adopts_the_orphaned_call_and_ends_it_whole(
    cluster, tmp_path, postgres, receiver
):
    # Replica A dies with a call live; before B's heartbeat gets to it, a client's POST /end
    # reaches B. B adopts the running actor first (so the call's last line comes with it), then
    # ends it: the transcript is whole, the actor is gone and each webhook goes once.
    (la, a), (lb, b) = two_replicas(tmp_path, postgres)
    receiver.up()
    with b:
        with a:
            body = {"callback_url": receiver.url, "custom_greeting": "Hello before the fall"}
            cid = a.post("/v2/conversations", json=body).json()["conversation_id"]
            wait_for(lambda: a.get(f"/v2/conversations/{cid}").json()["transcript"])
            said = {"message_type": "conversation", "event_type": "conversation.echo",
                    "properties": {"text": "Said just before the fall"}}  # fmt: skip
            assert a.post(f"/v2/conversations/{cid}/interactions", json=said).status_code == 200
            time.sleep(0.3)  # said on the worker; A dies before it polls the line

            die(a, la)

        async def no_heartbeat():  # only the end request can find the orphan
            b.app.state.supervisor._heartbeat.cancel()

        b.portal.call(no_heartbeat)
        time.sleep(STALE_AFTER_S + 0.5)  # A's lease goes stale
        assert cid not in lb._sessions
        ended = b.post(f"/v2/conversations/{cid}/end").json()
        assert ended["status"] == "ended"
        assert ended["shutdown_reason"] == "end_conversation_endpoint_hit"
        assert [t["content"] for t in ended["transcript"]] == [
            "Hello before the fall",
            "Said just before the fall",
        ]
        wait_for(lambda: len(receiver.events(cid)) >= len(EVENTS))
        time.sleep(0.5)  # a duplicate would arrive in this time
        with pytest.raises(ValueError):  # the actor was removed with the call
            wait_for(lambda: not ray.get_actor(f"presence-{cid}", namespace="presence"), 10)
    assert [e["event_type"] for e in receiver.events(cid)] == EVENTS
    assert set(Counter(h[EVENT_ID_HEADER] for h, _ in receiver.received).values()) == {1}


def test_an_actor_no_replica_polls_any_more_ends_its_call_and_frees_its_cpu(cluster, tmp_path):
    # Every replica is gone and none adopts the call: the detached actor must not hold its node's
    # CPU for good.
    import asyncio

    from presence.service.ray_launcher import RayLauncher
    from presence.service.session_spec import ConversationSpec

    wait_for(lambda: ray.available_resources().get("CPU", 0) >= 1)
    free = ray.available_resources()["CPU"]
    launcher = RayLauncher(num_cpus=1, inner="helpers.service:PipecatLauncher", orphaned_after=2)

    class Events:
        def __getattr__(self, name):
            return lambda *args: None

    async def place_and_vanish():
        handle = await launcher.start(ConversationSpec("orphan1", tmp_path / "p.yaml"), Events())
        handle.poller.cancel()  # its replica stops polling, as a dead one would
        return handle

    handle = asyncio.run(place_and_vanish())
    assert ray.get_actor("presence-orphan1", namespace="presence") is not None
    assert ray.available_resources().get("CPU", 0) <= free - 1 + 1e-9
    with pytest.raises(ValueError):  # the actor removed itself
        wait_for(lambda: not ray.get_actor("presence-orphan1", namespace="presence"), 30)
    wait_for(lambda: ray.available_resources().get("CPU", 0) >= free)
    assert handle.pid
