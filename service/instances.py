"""Several ``presence serve`` replicas over one database: which replica runs which conversation.

Each replica has an id (``PRESENCE_INSTANCE_ID``; by default the host name, port and data folder,
so a restarted replica has the id it had) and writes a heartbeat into ``service_instances`` every
``interval`` seconds. A conversation it starts gets a row in ``conversation_leases`` naming it.
From these rows every replica can tell, without talking to the others:

- a conversation leased to this replica's own id when it starts was left live by its previous run
  (killed): it ends with ``service_restart``;
- a conversation leased to a replica whose heartbeat is older than ``stale_after`` seconds (or to
  nobody, after a grace period) lost its replica: it ends with ``service_instance_lost``;
- a conversation whose call still runs without its replica (a Ray actor outlives the replica that
  placed it) is taken over (``take_over``) and adopted instead of ended;
- an end asked of a conversation that another live replica runs (``POST /end`` reaching the other
  replica behind a load balancer) is written as the lease's ``end_reason``; the running replica
  sees it on its next heartbeat and ends the conversation itself.

Claims take row locks (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes
writers), so when two replicas notice the same orphan at once only one ends it.
"""

from __future__ import annotations

import hashlib
import socket
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from presence.service.db import (
    ConversationLease,
    ConversationRow,
    ServiceInstance,
    as_utc,
    utcnow,
)
from presence.service.events import emit_ended

ORPHAN_GRACE_SECS = 60.0
"""An active conversation without a lease this long after creation has no replica."""


def default_instance_id(data_dir: Path, port: int | None = None) -> str:
    """``host[:port]-<digest of the data folder>``: stable across restarts of the same replica."""
    digest = hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:8]
    where = socket.gethostname() + (f":{port}" if port is not None else "")
    return f"{where}-{digest}"


class Instances:
    """This replica's heartbeat and leases.

    Args:
        sessions: Session factory of the service database.
        instance_id: This replica's id.
        stale_after: Seconds without a heartbeat after which a replica counts as gone.
    """

    def __init__(self, sessions: sessionmaker, instance_id: str, *, stale_after: float = 15.0):
        self._sessions = sessions
        self.id = instance_id
        self.stale_after = stale_after

    def beat(self) -> None:
        """Write this replica's heartbeat (creating its row on the first call)."""
        with self._sessions.begin() as db:
            row = db.get(ServiceInstance, self.id)
            if row is None:
                db.add(ServiceInstance(id=self.id))
            else:
                row.heartbeat_at = utcnow()

    def lease(self, cid: str) -> None:
        """Record that this replica runs conversation ``cid``."""
        with self._sessions.begin() as db:
            row = db.get(ConversationLease, cid)
            if row is None:
                db.add(ConversationLease(conversation_id=cid, instance_id=self.id))
            else:
                row.instance_id, row.end_reason = self.id, None

    def drop(self, cid: str) -> None:
        """Forget the lease of an ended conversation."""
        with self._sessions.begin() as db:
            db.execute(delete(ConversationLease).where(ConversationLease.conversation_id == cid))

    def _fresh(self, db) -> set[str]:
        horizon = utcnow() - timedelta(seconds=self.stale_after)
        rows = db.execute(select(ServiceInstance.id, ServiceInstance.heartbeat_at)).all()
        return {rid for rid, beat in rows if as_utc(beat) >= horizon}

    def request_end(self, cid: str, reason: str) -> bool:
        """Ask the live replica running ``cid`` to end it.

        Returns:
            True when another live replica runs it (it will end it), False otherwise.
        """
        with self._sessions.begin() as db:
            lease = db.get(ConversationLease, cid, with_for_update=True)
            if (
                lease is None
                or lease.instance_id == self.id
                or lease.instance_id not in self._fresh(db)
            ):
                return False
            lease.end_reason = lease.end_reason or reason
            return True

    def end_requests(self) -> list[tuple[str, str]]:
        """``(conversation_id, reason)`` of ends other replicas asked of this one."""
        with self._sessions() as db:
            rows = db.execute(
                select(ConversationLease.conversation_id, ConversationLease.end_reason).where(
                    ConversationLease.instance_id == self.id,
                    ConversationLease.end_reason.is_not(None),
                )
            ).all()
        return [(cid, reason) for cid, reason in rows]

    def take_over(self, cid: str, *, starting: bool) -> bool:
        """Lease an orphaned, still active conversation to this replica, to adopt its call.

        Args:
            cid: The conversation.
            starting: This replica is starting (a lease in its own name is left over from its
                previous run, and may be taken).

        Returns:
            True when this replica now holds the lease; False when the conversation ended, a live
            replica holds it, or another replica took it over first (the lease changes hands with
            one conditional update, so only one replica adopts a call).
        """
        with self._sessions.begin() as db:
            status = db.scalar(select(ConversationRow.status).where(ConversationRow.id == cid))
            if status != "active":
                return False
            holder = db.scalar(
                select(ConversationLease.instance_id).where(
                    ConversationLease.conversation_id == cid
                )
            )
            if holder is None:
                try:
                    with db.begin_nested():
                        db.add(ConversationLease(conversation_id=cid, instance_id=self.id))
                except IntegrityError:  # another replica leased it meanwhile
                    return False
                return True
            if holder == self.id:
                return starting
            if holder in self._fresh(db):
                return False
            taken = db.execute(
                update(ConversationLease)
                .where(
                    ConversationLease.conversation_id == cid,
                    ConversationLease.instance_id == holder,
                )
                .values(instance_id=self.id)
            )
            return taken.rowcount == 1

    def orphans(self, *, starting: bool, live: set[str]) -> dict[str, str]:
        """Active conversations no live replica runs, with the reason to end each.

        Args:
            starting: This replica is starting (its own leases are left over from a killed run).
            live: Conversations this replica runs now (never orphans).
        """
        now = utcnow()
        with self._sessions() as db:
            fresh = self._fresh(db)
            rows = db.execute(
                select(
                    ConversationRow.id, ConversationRow.created_at, ConversationLease.instance_id
                )
                .outerjoin(
                    ConversationLease, ConversationLease.conversation_id == ConversationRow.id
                )
                .where(ConversationRow.status == "active")
            ).all()
        found: dict[str, str] = {}
        for cid, created, holder in rows:
            if cid in live:
                continue
            if holder is None:
                # no lease: a conversation being placed (its lease follows at once), or one left
                # by a service without leases; a replica starting alone has no one to wait for
                alone = starting and not (fresh - {self.id})
                if alone or (now - as_utc(created)).total_seconds() > ORPHAN_GRACE_SECS:
                    found[cid] = "service_restart"
            elif holder == self.id:
                if starting:
                    found[cid] = "service_restart"
            elif holder not in fresh:
                found[cid] = "service_instance_lost"
        return found


def end_orphans(sessions: sessionmaker, found: dict[str, str], public_url: str | None) -> int:
    """End conversations no replica runs: ``status=ended``, the reason, webhooks; returns how many.

    Their stored transcripts are kept. Rows another replica is ending right now (locked) are
    skipped, and a row already ended is left alone, so each conversation ends once.
    """
    if not found:
        return 0
    with sessions.begin() as db:
        rows = db.scalars(
            select(ConversationRow)
            .where(ConversationRow.id.in_(list(found)), ConversationRow.status == "active")
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            row.status = "ended"
            row.shutdown_reason = found[row.id]
            row.ended_at = row.updated_at = utcnow()
            emit_ended(db, row, public_url=public_url)
        db.execute(
            delete(ConversationLease).where(
                ConversationLease.conversation_id.in_([row.id for row in rows])
            )
        )
    return len(rows)
