"""The supervisor's writes on PostgreSQL: two replicas recording the same event at once record it
once (each effect checks the row under a row lock before it is recorded)."""

from __future__ import annotations

import asyncio
import time

from helpers.service import PipecatLauncher
from sqlalchemy import func, select

from presence.service import supervisor as supervisor_module
from presence.service.db import ConversationRow, WebhookEvent, init_db, make_engine
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
    with sessions() as db:
        joined = db.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.event_type == "system.replica_joined")
        )
        assert joined == 1
        assert db.get(ConversationRow, "c_race").joined_at is not None
