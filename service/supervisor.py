"""Session lifecycle: start, watch the timeouts, end cleanly, record why, emit the webhooks.

The supervisor owns *when* a conversation ends; a ``SessionLauncher`` owns *how* its pipeline
runs (in this process, in a child process, over WebRTC or a file). The launcher reports what happens
through ``SessionEvents``; the supervisor turns that into database state and outbox events::

    POST /v2/conversations ─▶ Supervisor.start ─▶ launcher.start(spec, events) ─▶ handle
                                   │  watchdog: max_call_duration (from creation),
                                   │  participant_absent_timeout (nobody joined since creation),
                                   │  participant_left_timeout (since the user left, unless back)
    events.joined/left/transcript/perception/recording/failed ──▶ rows + webhooks
    events.guardrail/objective ──▶ the row's guardrails_triggered/objectives + their webhooks
                                   (also to the guardrail's / objective's own callback_url)
    POST /{id}/end, a timeout, a failure ─▶ Supervisor.end(reason) ─▶ launcher.end(handle, reason)
                                   └─▶ one transaction: status=ended, shutdown_reason, transcript,
                                       system.shutdown + application.* events in the outbox

Shutdown reasons: ``max_call_duration``, ``participant_left_timeout``,
``participant_absent_timeout``, ``end_conversation_endpoint_hit``, ``exception`` (with the failed
stage), ``service_shutdown`` (the service stopped), ``service_restart`` (it was killed and found
the conversation live when it came back), ``service_instance_lost`` (another replica over the same
database ran it and stopped sending heartbeats; see ``presence.service.instances``) and
``worker_lost`` (the worker running its pipeline died, e.g. a Ray node).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from sqlalchemy.orm import sessionmaker

from presence.service.db import ConversationRow, utcnow
from presence.service.events import emit_ended, record_guardrail, record_objective
from presence.service.instances import Instances
from presence.service.live_call import CallEvents, LiveCall
from presence.service.replica_watch import END_TIMEOUT_SECS, ReplicaWatch
from presence.service.session_spec import ConversationSpec, SessionEvents, SessionLauncher
from presence.service.webhooks import OutboxWorker, enqueue

__all__ = [
    "REASONS",
    "CapacityError",
    "ConversationSpec",
    "SessionEvents",
    "SessionLauncher",
    "Supervisor",
]

REASONS = (
    "max_call_duration",
    "participant_left_timeout",
    "participant_absent_timeout",
    "end_conversation_endpoint_hit",
    "exception",
    "service_shutdown",
    "service_restart",
    "service_instance_lost",
    "worker_lost",
)


class CapacityError(Exception):
    """The concurrency cap is reached (the API answers 429)."""


class Supervisor(ReplicaWatch):
    """Starts, watches and ends conversations.

    Args:
        sessions: Session factory of the service database.
        launcher: Runs the pipelines.
        outbox: Woken after events are written.
        max_sessions: Live conversations allowed at once.
        public_url: Base URL of the service, for links in webhooks (``recording_url``).
        store_recording: ``async (path, conversation_id) -> dict`` copying a finished recording
            elsewhere (``presence.service.storage``); its fields join ``recording_ready``.
        after_end: ``async (conversation_id, spec)`` run in the background once an ended
            conversation is recorded (its memories are extracted there); awaited on ``close``.
        instances: This replica's heartbeat and leases, for several replicas over one database
            (``None``: this replica is alone).
        heartbeat_interval: Seconds between heartbeats (and checks for ends other replicas ask).
    """

    def __init__(
        self,
        sessions: sessionmaker,
        launcher: SessionLauncher,
        outbox: OutboxWorker | None,
        *,
        max_sessions: int = 2,
        public_url: str | None = None,
        store_recording: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None,
        after_end: Callable[[str, ConversationSpec], Awaitable[Any]] | None = None,
        instances: Instances | None = None,
        heartbeat_interval: float = 2.0,
    ):
        self._sessions = sessions
        self._after_end = after_end
        self.instances = instances
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat: asyncio.Task | None = None
        self._store_recording = store_recording
        self.public_url = public_url
        self.launcher = launcher
        self._outbox = outbox
        self.max_sessions = max_sessions
        self.live: dict[str, LiveCall] = {}
        self._tasks: set[asyncio.Task] = set()
        self._ending: dict[str, asyncio.Task] = {}

    # ---- start ---------------------------------------------------------------------------------

    def reserve(self, spec: ConversationSpec) -> None:
        """Claim a slot for ``spec`` before its row is committed.

        Raises:
            CapacityError: ``max_sessions`` conversations are live, or the launcher has no room.
        """
        if len(self.live) >= self.max_sessions:
            raise CapacityError(
                f"{len(self.live)} conversations are live and this service allows "
                f"{self.max_sessions} at once (PRESENCE_MAX_SESSIONS); end one or retry later"
            )
        check_capacity = getattr(self.launcher, "check_capacity", None)
        if check_capacity is not None:  # e.g. a Ray cluster without room for another call
            check_capacity(spec)
        self.live[spec.conversation_id] = LiveCall(spec, time.monotonic())

    def release(self, cid: str) -> None:
        """Give back a slot whose conversation was never started."""
        self.live.pop(cid, None)
        release = getattr(self.launcher, "release", None)
        if release is not None:  # e.g. room held on a Ray cluster
            release(cid)

    async def start(self, cid: str) -> None:
        """Launch a reserved conversation and start its watchdog.

        A launcher failure ends the conversation with reason ``exception`` (stage ``launch``).
        """
        live = self.live[cid]
        live.watchdog = asyncio.create_task(self._watch(cid), name=f"watchdog-{cid}")
        if self.instances is not None:
            await asyncio.to_thread(self.instances.lease, cid)
        try:
            live.handle = await self.launcher.start(live.spec, CallEvents(self, cid))
        except Exception as exc:
            stage = getattr(exc, "stage", None) or "launch"
            logger.warning(f"conversation {cid} could not start: {exc}")
            await self.end(cid, "exception", stage=stage, error=str(exc))
            return
        url = getattr(live.handle, "conversation_url", None)
        if url:
            await self._write(cid, lambda _db, row: setattr(row, "conversation_url", url))

    # ---- watchdog ------------------------------------------------------------------------------

    def _deadline(self, live: LiveCall) -> tuple[float, str] | None:
        props = live.spec.properties
        found: list[tuple[float, str]] = []
        if props.get("max_call_duration") is not None:
            found.append((live.started + float(props["max_call_duration"]), "max_call_duration"))
        if not live.joined and props.get("participant_absent_timeout") is not None:
            found.append(
                (
                    live.started + float(props["participant_absent_timeout"]),
                    "participant_absent_timeout",
                )
            )
        if live.left_at is not None and props.get("participant_left_timeout") is not None:
            found.append(
                (
                    live.left_at + float(props["participant_left_timeout"]),
                    "participant_left_timeout",
                )
            )
        return min(found) if found else None

    async def _watch(self, cid: str) -> None:
        while (live := self.live.get(cid)) is not None:
            deadline = self._deadline(live)
            now = time.monotonic()
            if deadline is not None and deadline[0] <= now:
                self._spawn(self.end(cid, deadline[1]))
                return
            live.changed.clear()
            timeout = None if deadline is None else deadline[0] - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(live.changed.wait(), timeout=timeout)

    # ---- end -----------------------------------------------------------------------------------

    async def end(
        self, cid: str, reason: str, *, stage: str | None = None, error: str | None = None
    ) -> bool:
        """End a live conversation for ``reason`` (the first reason wins).

        Returns:
            True when this call ended it, False when it was not live (or already ending).
        """
        if cid in self._ending:
            await asyncio.shield(self._ending[cid])
            return False
        live = self.live.get(cid)
        if live is None:
            await self._end_elsewhere(cid, reason)
            return False
        task = asyncio.ensure_future(self._end(cid, live, reason, stage, error))
        self._ending[cid] = task
        try:
            await asyncio.shield(task)
        finally:
            self._ending.pop(cid, None)
        return True

    async def _end(
        self, cid: str, live: LiveCall, reason: str, stage: str | None, error: str | None
    ) -> None:
        logger.info(f"conversation {cid} ending: {reason}" + (f" ({stage})" if stage else ""))
        current = asyncio.current_task()
        if live.watchdog is not None and live.watchdog is not current:
            live.watchdog.cancel()
        if live.handle is not None:
            try:
                await asyncio.wait_for(self.launcher.end(live.handle, reason), END_TIMEOUT_SECS)
            except Exception as exc:  # the session is over either way; record what we have
                logger.warning(f"conversation {cid}: session did not stop cleanly: {exc!r}")
        self.live.pop(cid, None)
        if live.recording is not None and self._store_recording is not None:
            live.storage = await self._store_recording(live.recording[0], cid)
        # after any transcript write in flight, so the final write is the last (and a DELETE
        # that follows the end never races a write to the row it removes)
        async with live.save_lock:
            await asyncio.to_thread(self._finalize, cid, live, reason, stage, error)
        if self.instances is not None:
            await asyncio.to_thread(self.instances.drop, cid)
        if self._outbox is not None:
            self._outbox.wake()
        if self._after_end is not None:
            self._spawn(self._after_end(cid, live.spec))

    def _finalize(
        self, cid: str, live: LiveCall, reason: str, stage: str | None, error: str | None
    ) -> None:
        with self._sessions.begin() as db:
            row = db.get(ConversationRow, cid, with_for_update=True)  # ends once across replicas
            if row is None or row.status == "ended":
                return
            row.status = "ended"
            row.shutdown_reason = reason
            row.failed_stage = stage
            row.error_message = error
            row.ended_at = row.updated_at = utcnow()
            if live.joined:  # a join still being written is recorded before the end
                _record_join(db, row)
            if live.transcript:
                row.transcript = live.transcript
            if live.perception is not None:
                row.perception_analysis = live.perception
            if live.recording is not None:
                row.recording_path = live.recording[0]
                row.recording_storage = live.storage or None
            emit_ended(
                db,
                row,
                recording_duration=live.recording[1] if live.recording else None,
                public_url=self.public_url,
            )

    # ---- persistence helpers -------------------------------------------------------------------

    async def _record_joined(self, cid: str) -> None:
        def change(db, row: ConversationRow) -> None:
            if row.status == "active":
                _record_join(db, row)

        live = self.live.get(cid)
        # in turn with the transcript's writes on this replica (each records a join not yet
        # stored); across replicas the row lock does the same
        async with live.save_lock if live is not None else contextlib.nullcontext():
            await self._write(cid, change)

    async def _record_guardrail(self, cid: str, trigger: dict[str, Any], url: str | None) -> None:
        await self._write(cid, lambda db, row: record_guardrail(db, row, trigger, url))

    async def _record_objective(
        self, cid: str, completion: dict[str, Any], state: list[dict[str, Any]], url: str | None
    ) -> None:
        await self._write(cid, lambda db, row: record_objective(db, row, completion, state, url))

    async def _write(self, cid: str, change: Callable[[Any, ConversationRow], None]) -> None:
        """Apply ``change(db, row)`` to the conversation in one transaction; wake the outbox."""

        def write() -> None:
            with self._sessions.begin() as db:
                # locked: a replica that adopts a call replays the events its previous replica
                # may still be writing, and each effect checks the row before it is recorded
                row = db.get(ConversationRow, cid, with_for_update=True)
                if row is not None:
                    change(db, row)

        await asyncio.to_thread(write)
        if self._outbox is not None:
            self._outbox.wake()

    async def _save_transcript(self, cid: str) -> None:
        live = self.live.get(cid)
        if live is None:
            return
        async with live.save_lock:  # one write at a time, always the latest turns
            turns, joined = list(live.transcript), live.joined

            def write() -> None:
                with self._sessions.begin() as db:
                    row = db.get(ConversationRow, cid, with_for_update=True)
                    if row is not None and row.status == "active":
                        if joined:  # never a stored line without the join it followed
                            _record_join(db, row)
                        row.transcript = turns
                        row.updated_at = utcnow()

            await asyncio.to_thread(write)
        if joined and self._outbox is not None:
            self._outbox.wake()

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        """Forget a background task; say what failed rather than leave it unretrieved."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                f"background task {task.get_coro().__name__} failed: {task.exception()!r}"
            )

    # ---- service start/stop --------------------------------------------------------------------

    async def close(self) -> None:
        """End every live conversation (``service_shutdown``) and wait for pending writes."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        await asyncio.gather(
            *(self.end(cid, "service_shutdown") for cid in list(self.live)), return_exceptions=True
        )
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _record_join(db: Any, row: ConversationRow) -> None:
    """Record the user's join once (``system.replica_joined``); ``row`` is locked by the caller."""
    if row.joined_at is None:
        row.joined_at = row.updated_at = utcnow()
        enqueue(db, row, "system.replica_joined", {"replica_id": row.replica_id})
