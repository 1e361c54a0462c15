"""Webhooks: signed, ordered per conversation, retried until a receiver that was down comes back,
and kept across a service restart (graceful or killed)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from helpers.service import DATABASES, KEY_A, SECRET, call, free_port, make_settings

from presence.service.app import create_app
from presence.service.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)

DATABASE_KINDS = DATABASES  # each test using the database runs on SQLite and PostgreSQL

ENVELOPE = {
    "properties",
    "conversation_id",
    "webhook_url",
    "event_type",
    "message_type",
    "timestamp",
}


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_receiver_down_then_up_gets_every_event_once_in_order_signed(service, launcher, receiver):
    convs = []
    for text in ("first", "second"):
        body = service.post("/v2/conversations", json={"callback_url": receiver.url}).json()
        convs.append(body["conversation_id"])
        call(service, launcher.say(body["conversation_id"], text))
    for cid in convs:
        wait_for(
            lambda cid=cid: len(service.get(f"/v2/conversations/{cid}").json()["transcript"]) == 2
        )
        service.post(f"/v2/conversations/{cid}/end")
    time.sleep(1.0)  # several failed attempts with the short test backoff
    assert receiver.events() == []
    t_up = time.monotonic()
    receiver.up()
    wait_for(lambda: len(receiver.received) >= 6)
    print(
        f"\nreceiver back -> first event {receiver.arrived[0] - t_up:.2f} s, "
        f"all 6 events {receiver.arrived[-1] - t_up:.2f} s (test backoff 0.05 s doubling to 0.2 s)"
    )
    time.sleep(0.5)  # nothing more (no duplicates) arrives
    assert len(receiver.received) == 6

    ids = [headers[EVENT_ID_HEADER] for headers, _ in receiver.received]
    assert len(set(ids)) == 6
    for headers, body in receiver.received:
        assert verify_signature(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
        assert not verify_signature(
            "other", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        )
    for cid, said in zip(convs, ("first", "second"), strict=True):
        events = receiver.events(cid)
        assert [e["event_type"] for e in events] == [
            "system.replica_joined",
            "system.shutdown",
            "application.transcription_ready",
        ]
        assert all(set(e) == ENVELOPE and e["webhook_url"] == receiver.url for e in events)
        assert events[0]["message_type"] == "system"
        assert events[1]["properties"]["shutdown_reason"] == "end_conversation_endpoint_hit"
        assert events[2]["message_type"] == "application"
        assert events[2]["properties"]["transcript"] == [
            {"role": "assistant", "content": "hello"},
            {"role": "assistant", "content": said},
        ]


def test_graceful_restart_keeps_pending_webhooks(tmp_path, launcher, receiver, database_url):
    settings = make_settings(tmp_path, database_url=database_url)
    with TestClient(create_app(settings, launcher=launcher), headers={"x-api-key": KEY_A}) as c:
        ended = c.post("/v2/conversations", json={"callback_url": receiver.url}).json()
        c.post(f"/v2/conversations/{ended['conversation_id']}/end")
        live = c.post("/v2/conversations", json={"callback_url": receiver.url}).json()
    receiver.up()
    with TestClient(create_app(settings, launcher=launcher), headers={"x-api-key": KEY_A}) as c:
        wait_for(lambda: len(receiver.events()) == 6)
        state = c.get(f"/v2/conversations/{live['conversation_id']}").json()
    assert state["status"] == "ended" and state["shutdown_reason"] == "service_shutdown"
    reasons = [
        e["properties"]["shutdown_reason"]
        for e in receiver.events()
        if e["event_type"] == "system.shutdown"
    ]
    assert sorted(reasons) == ["end_conversation_endpoint_hit", "service_shutdown"]


SERVER = """
import sys, uvicorn
sys.path.insert(0, {tests!r})
from helpers.service import PipecatLauncher, make_settings
from pathlib import Path
from presence.service.app import create_app
settings = make_settings(Path({tmp!r}), database_url={db!r}, webhook_timeout=2.0)
app = create_app(settings, launcher=PipecatLauncher())
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""


def test_killed_service_loses_no_transcript_or_webhook(tmp_path, launcher, receiver, database_url):
    port = free_port()
    script = SERVER.format(
        tests=str(Path(__file__).parents[1]), tmp=str(tmp_path), port=port, db=database_url
    )
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, headers={"x-api-key": KEY_A}) as client:
            wait_for(lambda: _up(client), timeout=60)
            body = {"callback_url": receiver.url, "custom_greeting": "Hello from before the crash"}
            cid = client.post("/v2/conversations", json=body).json()["conversation_id"]
            # killed as soon as a line is stored: the join it followed is stored with it
            wait_for(lambda: client.get(f"/v2/conversations/{cid}").json()["transcript"])
        os.kill(proc.pid, signal.SIGKILL)  # mid-call, webhook (replica_joined) still pending
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    receiver.up()
    with TestClient(
        create_app(make_settings(tmp_path, database_url=database_url), launcher=launcher),
        headers={"x-api-key": KEY_A},
    ) as c:
        state = c.get(f"/v2/conversations/{cid}").json()
        # a claim the killed service held lapses after the outbox's claim time (2 × 2 s + 5 s)
        try:
            wait_for(lambda: len(receiver.events(cid)) == 3, timeout=45.0)
        except AssertionError as exc:
            got = [e["event_type"] for e in receiver.events(cid)]
            rows = _outbox(tmp_path, database_url)
            raise AssertionError(f"received {got}; the outbox: {rows}") from exc
    assert state["status"] == "ended" and state["shutdown_reason"] == "service_restart"
    assert state["transcript"][0]["content"] == "Hello from before the crash"
    events = receiver.events(cid)
    assert [e["event_type"] for e in events] == [
        "system.replica_joined",
        "system.shutdown",
        "application.transcription_ready",
    ]
    assert events[2]["properties"]["transcript"][0]["content"] == "Hello from before the crash"


def _outbox(tmp_path: Path, database_url: str | None) -> list[tuple]:
    """The outbox's rows (what a failure needs to be understood)."""
    from sqlalchemy import select

    from presence.service.db import WebhookEvent, init_db, make_engine

    url = database_url or f"sqlite:///{tmp_path / 'data' / 'presence.db'}"
    with init_db(make_engine(url)).begin() as db:
        return [
            (e.id, e.event_type, e.status, e.attempts, str(e.next_attempt_at), e.last_error)
            for e in db.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
        ]


def _up(client: httpx.Client) -> bool:
    try:
        return client.get("/v2/usage").status_code == 200
    except httpx.HTTPError:
        return False


def test_a_scan_that_starts_after_stop_leaves_events_due_for_the_next_start(tmp_path):
    """A scan thread the executor starts late (a busy machine) must not claim for a stopped worker:
    a claim it made would keep the event from the next start for ``claim_secs``."""
    import asyncio

    from presence.service.db import ConversationRow, init_db, make_engine
    from presence.service.webhooks import OutboxWorker, enqueue

    sessions = init_db(make_engine(f"sqlite:///{tmp_path / 'o.db'}"))
    with sessions.begin() as db:
        conv = ConversationRow(
            id="c1", owner="o", callback_url="http://127.0.0.1:9/hook", status="ended"
        )
        db.add(conv)
        db.flush()
        enqueue(db, conv, "system.shutdown", {"shutdown_reason": "service_shutdown"})

    async def stopped_then_late_scan():
        worker = OutboxWorker(sessions, "secret", timeout=10.0, poll_interval=0.05)
        await worker.stop()
        return worker._due_heads()  # what the late thread would run

    claimed, _ = asyncio.run(stopped_then_late_scan())
    assert claimed == []
    restarted = OutboxWorker(sessions, "secret", timeout=10.0)
    heads, _ = restarted._due_heads()
    assert [e.event_type for e in heads] == ["system.shutdown"]


def test_an_attempt_under_way_when_the_service_stops_is_finished_not_sent_again(tmp_path):
    """A replica stopping mid-attempt lets the attempt finish and records it: were it cut short
    after the receiver got the event, the next replica would send it a second time."""
    import asyncio
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from presence.service.db import ConversationRow, init_db, make_engine
    from presence.service.webhooks import OutboxWorker, WebhookEvent, enqueue

    arrived, bodies = threading.Event(), []

    class SlowReceiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            bodies.append(self.rfile.read(int(self.headers["content-length"])))
            arrived.set()
            time.sleep(0.8)  # the service stops while this answer is on its way
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sessions = init_db(make_engine(f"sqlite:///{tmp_path / 'o.db'}"))
    with sessions.begin() as db:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        conv = ConversationRow(id="c1", owner="o", callback_url=url, status="ended")
        db.add(conv)
        db.flush()
        enqueue(db, conv, "system.shutdown", {"shutdown_reason": "service_shutdown"})

    async def stop_mid_attempt():
        worker = OutboxWorker(sessions, "secret", timeout=10.0, poll_interval=0.05)
        worker.start()
        await asyncio.to_thread(arrived.wait, 10)
        await worker.stop()

    try:
        asyncio.run(stop_mid_attempt())
        with sessions.begin() as db:
            assert [e.status for e in db.query(WebhookEvent)] == ["delivered"]
        heads, _ = OutboxWorker(sessions, "secret", timeout=10.0)._due_heads()
        assert heads == [] and len(bodies) == 1  # the next start has nothing to send again
    finally:
        server.shutdown()
