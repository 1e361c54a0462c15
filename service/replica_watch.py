"""What a ``Supervisor`` does about the service's other replicas and its own previous run.

A mixin of ``Supervisor`` (it uses the supervisor's ``instances``, database sessions, outbox,
``live`` conversations, ``end`` and ``_spawn``). Over one database, each replica beats a heartbeat
(``presence.service.instances``): an end asked of a conversation another replica runs is passed to
that replica through the database, and the conversations of a replica gone silent are ended here
as orphans (``service_instance_lost``), their stored transcripts kept and their webhooks sent. A
lone replica (``instances`` is None) ends what it finds live at start as ``service_restart``.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger
from sqlalchemy import select

from presence.service.db import ConversationRow, utcnow
from presence.service.instances import end_orphans
from presence.service.webhooks import emit_ended

END_TIMEOUT_SECS = 10.0


class ReplicaWatch:
    """Heartbeat, ends asked across replicas, orphans and start-up recovery (mixin)."""

    async def _end_elsewhere(self, cid: str, reason: str) -> None:
        """End a conversation this replica does not run: ask its replica, or end an orphan here."""
        if self.instances is None:
            return
        if await asyncio.to_thread(self.instances.request_end, cid, reason):
            deadline = time.monotonic() + END_TIMEOUT_SECS + 2 * self._heartbeat_interval
            while time.monotonic() < deadline and await asyncio.to_thread(self._is_active, cid):
                await asyncio.sleep(0.1)
            return
        orphans = await asyncio.to_thread(
            self.instances.orphans, starting=False, live=set(self.live)
        )
        if cid in orphans:
            await asyncio.to_thread(end_orphans, self._sessions, {cid: reason}, self.public_url)
            if self._outbox is not None:
                self._outbox.wake()

    def _is_active(self, cid: str) -> bool:
        with self._sessions() as db:
            row = db.get(ConversationRow, cid)
            return row is not None and row.status == "active"

    def recover(self) -> int:
        """Mark conversations left live by a killed service as ended (``service_restart``).

        With ``instances``, only those of this replica's previous run and of replicas gone silent
        (``service_instance_lost``); conversations other live replicas run are theirs. Their
        stored transcripts are kept and their webhooks are emitted. Returns how many.
        """
        if self.instances is not None:
            self.instances.beat()
            found = self.instances.orphans(starting=True, live=set(self.live))
            count = end_orphans(self._sessions, found, self.public_url)
            if count:
                logger.warning(f"{count} conversation(s) had no live replica; ended")
            return count
        with self._sessions.begin() as db:
            rows = db.scalars(
                select(ConversationRow).where(ConversationRow.status == "active")
            ).all()
            for row in rows:
                row.status = "ended"
                row.shutdown_reason = "service_restart"
                row.ended_at = row.updated_at = utcnow()
                emit_ended(db, row, public_url=self.public_url)
        if rows:
            logger.warning(f"{len(rows)} conversation(s) were live when the service stopped; ended")
        return len(rows)

    def watch_replicas(self) -> None:
        """Start the heartbeat: ends asked by other replicas, orphans of replicas gone silent."""
        if self.instances is not None and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="replica-heartbeat")

    async def _beat(self) -> None:
        assert self.instances is not None
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            try:
                await asyncio.to_thread(self.instances.beat)
                for cid, reason in await asyncio.to_thread(self.instances.end_requests):
                    if cid in self.live:
                        self._spawn(self.end(cid, reason))
                    else:  # ended meanwhile: nothing left to ask
                        await asyncio.to_thread(self.instances.drop, cid)
                found = await asyncio.to_thread(
                    self.instances.orphans, starting=False, live=set(self.live)
                )
                if await asyncio.to_thread(end_orphans, self._sessions, found, self.public_url):
                    if self._outbox is not None:
                        self._outbox.wake()
            except Exception as exc:  # a database hiccup must not stop the heartbeat for good
                logger.warning(f"replica heartbeat failed: {exc!r}")
