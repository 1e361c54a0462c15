"""What a ``Supervisor`` does about the service's other replicas and its own previous run.

A mixin of ``Supervisor`` (it uses the supervisor's ``instances``, database sessions, outbox,
``launcher``, ``live`` conversations, ``end``, ``_watch`` and ``_spawn``). Over one database, each
replica beats a heartbeat (``presence.service.instances``): an end asked of a conversation another
replica runs is passed to that replica through the database, and the conversations of a replica
gone silent (or of this replica's previous run, found at start) are orphans. An orphan whose call
still runs on a worker that outlived its replica (a launcher with ``adopt``: Ray placement) is
taken over and goes on here, its timeouts counted from its creation; the others are ended
(``service_instance_lost``, ``service_restart``), their stored transcripts kept and their webhooks
sent. Without ``instances`` the replica is alone and ends what it finds live at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from loguru import logger
from sqlalchemy import select

from presence.service.db import ConversationRow, as_utc, utcnow
from presence.service.events import emit_ended
from presence.service.instances import end_orphans
from presence.service.live_call import CallEvents, LiveCall

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
        if cid in orphans:  # a call still running is adopted first: its last lines come with it
            await self._adopt_or_end({cid: reason}, starting=False)
            if cid in self.live:
                await self.end(cid, reason)

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
                await self._adopt_or_end(found, starting=False)
            except Exception as exc:  # a database hiccup must not stop the heartbeat for good
                logger.warning(f"replica heartbeat failed: {exc!r}")

    async def recover_calls(self) -> int:
        """At start: adopt the orphaned calls that still run, end the rest; returns how many ended.

        Orphans are this replica's own conversations from its previous run and those of replicas
        gone silent (see ``recover`` for a replica without ``instances``).
        """
        if self.instances is None:
            return await asyncio.to_thread(self.recover)
        await asyncio.to_thread(self.instances.beat)
        found = await asyncio.to_thread(self.instances.orphans, starting=True, live=set(self.live))
        count = await self._adopt_or_end(found, starting=True)
        if count:
            logger.warning(f"{count} conversation(s) had no live replica; ended")
        return count

    async def _adopt_or_end(self, found: dict[str, str], *, starting: bool) -> int:
        """Adopt each orphan whose call still runs (when the launcher can); end the others."""
        adopt = getattr(self.launcher, "adopt", None)
        left = dict(found)
        if adopt is not None and self.instances is not None:
            for cid in found:
                if not await asyncio.to_thread(self.instances.take_over, cid, starting=starting):
                    del left[cid]  # a live replica holds it, or another one took it over first
                elif await self._adopt(cid, adopt):
                    del left[cid]
        return await self._end_orphans(left)

    async def _end_orphans(self, found: dict[str, str]) -> int:
        count = await asyncio.to_thread(end_orphans, self._sessions, found, self.public_url)
        discard = getattr(self.launcher, "discard", None)
        for cid in found if discard is not None else ():  # a worker may still hold the call
            with contextlib.suppress(Exception):
                await discard(cid)
        if count and self._outbox is not None:
            self._outbox.wake()
        return count

    async def _adopt(self, cid: str, adopt) -> bool:
        """Take over ``cid``'s running call; False when it no longer runs."""

        def read() -> tuple | None:
            with self._sessions() as db:
                row = db.get(ConversationRow, cid)
                if row is None or row.status != "active":
                    return None
                return row.created_at, row.joined_at is not None, list(row.transcript or [])

        state = await asyncio.to_thread(read)
        if state is None:
            return False
        try:
            handle = await adopt(cid, CallEvents(self, cid))
        except Exception as exc:
            logger.warning(f"conversation {cid}: could not adopt its call ({exc!r})")
            return False
        if handle is None:
            return False
        created, joined, transcript = state
        age = max(0.0, (utcnow() - as_utc(created)).total_seconds())
        # registered before any event of the call is handled (the launcher's poll has not run yet)
        live = LiveCall(
            handle.spec, time.monotonic() - age, handle=handle, joined=joined, transcript=transcript
        )
        self.live[cid] = live
        live.watchdog = asyncio.create_task(self._watch(cid), name=f"watchdog-{cid}")
        logger.warning(f"conversation {cid}: adopted (its replica stopped; the call goes on)")
        return True
