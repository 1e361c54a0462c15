"""The supervisor's writes: two replicas recording the same event at once record it once (each
effect checks the row under a row lock before it is recorded), and a stored transcript line always
comes with the join it followed."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers.service import PipecatLauncher
from sqlalchemy import func, select

from presence.service import supervisor as supervisor_module
from presence.service.db import ConversationRow, WebhookEvent, init_db, make_engine
from presence.service.live_call import CallEvents, LiveCall
from presence.service.supervisor import Supervisor


async def test_two_replicas_recording_the_same_join_at_once_send_one_webhook(postgres, monkeypatch):
    sessions = init_db(make_engine(postgres.new_database()))
    with sessions.begin() as db:
        db.add(ConversationRow(id="c_race", owner="a", callback_url="http://127.0.0.1:9/hook"))
    real_enqueue = supervisor_module.enqueue

    def slow_enqueue(*args, **kwargs):
        time.sleep(0.3)  # the other replica's write comes while this one's is under way
        return real_enqueue(*args, **kwargs)

    monkeypatch.setattr(supervisor_module, "enqueue", slow_enqueue)
    a, b = (Supervisor(sessions, PipecatLauncher(join=False), None) for _ in range(2))
    # a replica adopting a call replays the join its previous replica is still writing
    await asyncio.gather(a._record_joined("c_race"), b._record_joined("c_race"))
    assert _joined_webhooks(sessions) == 1
    with sessions() as db:
        assert db.get(ConversationRow, "c_race").joined_at is not None


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_stored_transcript_line_always_has_its_join_recorded(
    kind, request, tmp_path, monkeypatch
):
    """A service killed at any moment never holds a transcript line without the join before it."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'presence.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    sessions = init_db(make_engine(url))
    with sessions.begin() as db:
        db.add(ConversationRow(id="c_join", owner="a", callback_url="http://127.0.0.1:9/hook"))
    real_enqueue = supervisor_module.enqueue

    def slow_enqueue(*args, **kwargs):
        time.sleep(0.4)  # the join's write is under way when the greeting's line comes
        return real_enqueue(*args, **kwargs)

    monkeypatch.setattr(supervisor_module, "enqueue", slow_enqueue)
    sup = Supervisor(sessions, PipecatLauncher(join=False), None)
    sup.live["c_join"] = LiveCall(spec=None, started=time.monotonic())
    events = CallEvents(sup, "c_join")
    events.joined()
    events.transcript([{"role": "assistant", "content": "Hello! Ask me anything."}])
    seen = []
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        with sessions() as db:
            row = db.get(ConversationRow, "c_join")
            seen.append((bool(row.transcript), row.joined_at is not None))
        if seen[-1] == (True, True):
            break
        await asyncio.sleep(0.02)
    assert seen[-1] == (True, True)
    assert (True, False) not in seen  # a line stored before its join
    await asyncio.gather(*list(sup._tasks))
    assert _joined_webhooks(sessions) == 1


def _joined_webhooks(sessions) -> int:
    """How many ``system.replica_joined`` events the outbox holds."""
    with sessions() as db:
        return db.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.event_type == "system.replica_joined")
        )
