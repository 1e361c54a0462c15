"""Signed webhooks from a durable outbox.

A state change and its webhook are written in one database transaction (``enqueue``), so an event
exists exactly when its change does. ``OutboxWorker`` delivers pending events to their
``callback_url``: one at a time per conversation and receiver, in the order they were written (a
later event of a conversation waits while an earlier one to the same URL is retried; a guardrail's
or an objective's own ``callback_url`` is a receiver of its own, so one that is down delays
nothing else), with exponential backoff
(``initial · 2^(attempt-1)``, capped) until a 2xx answer or the retry horizon. Undelivered events
survive a restart: they are rows, and the worker picks them up when the service starts again.
Delivery is at-least-once (a crash between the receiver's 2xx and the row update resends);
``x-presence-event-id`` lets a receiver drop duplicates.

Several replicas over one database share the outbox: a replica claims the events it is about to
send with row locks (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serializes
writers) and moves their ``next_attempt_at`` past the attempt's timeout, so no other replica sends
them meanwhile; if the replica dies mid-attempt the claim lapses and another one sends the event.

Envelope (the request body, JSON)::

    {"properties": {...}, "conversation_id": "c...", "webhook_url": "https://...",
     "event_type": "system.shutdown", "message_type": "system",
     "timestamp": "2025-01-01T12:00:00.000000+00:00"}

Signature: ``x-presence-signature: v1=<hex>`` where ``hex`` is HMAC-SHA256 with the service's
webhook secret over ``f"{t}.".encode() + body``, ``t`` being the ``x-presence-timestamp`` header
(Unix seconds). Verify it on the receiving side (see ``verify_signature``)::

    import hashlib, hmac, time

    def verify(secret: str, body: bytes, timestamp: str, signature: str, tolerance=300) -> bool:
        if abs(time.time() - int(timestamp)) > tolerance:
            return False  # too old: a replay
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body,
                            hashlib.sha256).hexdigest()
        return hmac.compare_digest(f"v1={expected}", signature)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from typing import Any

import httpx
from loguru import logger
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from presence.service.db import ConversationRow, WebhookEvent, as_utc, utcnow

SIGNATURE_HEADER = "x-presence-signature"
TIMESTAMP_HEADER = "x-presence-timestamp"
EVENT_ID_HEADER = "x-presence-event-id"
EVENT_TYPE_HEADER = "x-presence-event-type"
STOP_GRACE_S = 5.0  # how long stop() lets attempts under way finish

EVENT_TYPES = (
    "system.replica_joined",
    "system.shutdown",
    "application.transcription_ready",
    "application.recording_ready",
    "application.perception_analysis",
    "application.guardrail_triggered",
    "application.objective_completed",
)


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``x-presence-signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, timestamp: str, signature: str, *, tolerance: float = 300.0
) -> bool:
    """Whether ``signature`` is ours for ``body`` at ``timestamp``, sent within ``tolerance`` s."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - sent) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent, body), signature or "")


def enqueue(
    db: Session,
    conversation: ConversationRow,
    event_type: str,
    properties: dict[str, Any],
    *,
    url: str | None = None,
) -> WebhookEvent | None:
    """Add an event for ``conversation`` to the outbox in the caller's transaction.

    Args:
        db: The caller's session (the event commits with the change it reports).
        conversation: The conversation the event is about.
        event_type: One of ``EVENT_TYPES``.
        properties: The envelope's ``properties``.
        url: Send it here instead of the conversation's ``callback_url`` (a guardrail's or an
            objective's own ``callback_url``).

    Returns:
        The outbox row, or ``None`` when there is nowhere to send it.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {event_type!r}")
    target = url or conversation.callback_url
    if not target:
        return None
    now = utcnow()
    envelope = {
        "properties": properties,
        "conversation_id": conversation.id,
        "webhook_url": target,
        "event_type": event_type,
        "message_type": event_type.split(".", 1)[0],
        "timestamp": now.isoformat(),
    }
    row = WebhookEvent(
        conversation_id=conversation.id,
        url=target,
        event_type=event_type,
        body=json.dumps(envelope, separators=(",", ":"), ensure_ascii=False, default=str),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    db.add(row)
    return row


class OutboxWorker:
    """Delivers the outbox until stopped.

    Args:
        sessions: Session factory of the service database.
        secret: HMAC key for signatures.
        backoff_initial: Seconds before the first retry.
        backoff_max: Cap on the retry interval.
        retry_horizon: Seconds after an event's creation when it is given up (``failed``).
        timeout: Seconds per delivery attempt.
        poll_interval: Seconds between scans when nothing is due.
    """

    def __init__(
        self,
        sessions: sessionmaker,
        secret: str,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        retry_horizon: float = 3 * 24 * 3600.0,
        timeout: float = 10.0,
        poll_interval: float = 0.5,
    ):
        self._sessions = sessions
        self._secret = secret
        self._initial = backoff_initial
        self._max = backoff_max
        self._horizon = retry_horizon
        self._timeout = timeout
        self._poll = poll_interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._claimed: set[int] = set()
        self._delivering: asyncio.Future | None = None  # the attempts under way
        self._claim_lock = threading.Lock()  # a claim cut short by stop() still ends first
        self._stopping = False  # set under the lock: a claim thread that starts late claims nothing

    def start(self) -> None:
        """Start the delivery loop on the running event loop."""
        self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="webhook-outbox")

    def wake(self) -> None:
        """Scan now (call after committing new events)."""
        self._wake.set()

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the loop; events not yet delivered stay pending for the next start.

        Attempts under way get up to ``grace_s`` to finish and be recorded: one cut short after
        the receiver got it would be sent again by the next replica, a duplicate.
        """
        await asyncio.to_thread(self._stop_claiming)
        if self._delivering is not None and not self._delivering.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._delivering), grace_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # Attempts cut short: hand their events back now, not when their claims lapse.
        await asyncio.to_thread(self._unclaim)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def backoff(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt."""
        return min(self._max, self._initial * (2 ** max(0, attempts - 1)))

    async def _run(self) -> None:
        while True:
            try:
                delay = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database hiccup must not stop deliveries for good
                logger.exception(f"webhook outbox scan failed: {exc}")
                delay = self._poll
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def deliver_due(self) -> float:
        """Attempt every due head-of-line event once; returns seconds until the next is due."""
        heads, wait = await asyncio.to_thread(self._due_heads)
        if heads:
            self._delivering = asyncio.gather(*(self._deliver(event) for event in heads))
            await self._delivering
            return 0.0
        return wait

    def _due_heads(self) -> tuple[list[WebhookEvent], float]:
        """Claim each conversation's first pending event that is due; returns them and the wait."""
        with self._claim_lock:
            if self._stopping:  # the scan's thread began after stop(): claim nothing
                return [], self._poll
            return self._claim_due()

    def _claim_due(self) -> tuple[list[WebhookEvent], float]:
        now = utcnow()
        with self._sessions.begin() as db:
            pending = db.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.status == "pending")
                .order_by(WebhookEvent.id)
                .limit(1000)
            ).all()
            heads: dict[tuple[str, str], WebhookEvent] = {}
            for event in pending:  # in order per conversation and receiver
                heads.setdefault((event.conversation_id, event.url), event)
            due_ids = [e.id for e in heads.values() if as_utc(e.next_attempt_at) <= now]
            later = [(as_utc(e.next_attempt_at) - now).total_seconds() for e in heads.values()]
            wait = min([self._poll, *[t for t in later if t > 0]])
            if not due_ids:
                return [], wait
            # Lock, re-check (another replica may have claimed them since the read), claim.
            claimed = db.scalars(
                select(WebhookEvent)
                .where(
                    WebhookEvent.id.in_(due_ids),
                    WebhookEvent.status == "pending",
                    WebhookEvent.next_attempt_at <= now,
                )
                .with_for_update(skip_locked=True)
            ).all()
            for event in claimed:
                event.next_attempt_at = now + timedelta(seconds=self.claim_secs)
                self._claimed.add(event.id)
            db.flush()
            db.expunge_all()
        return list(claimed), wait

    @property
    def claim_secs(self) -> float:
        """How long a claimed event is left to its replica (past one attempt's timeout)."""
        return 2 * self._timeout + 5.0

    async def _deliver(self, event: WebhookEvent) -> None:
        body = event.body.encode()
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            EVENT_ID_HEADER: str(event.id),
            EVENT_TYPE_HEADER: event.event_type,
            "user-agent": "presence-webhooks/1",
        }
        error: str | None = None
        try:
            assert self._client is not None
            response = await self._client.post(event.url, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        await asyncio.to_thread(self._record, event.id, error)

    def _stop_claiming(self) -> None:
        with self._claim_lock:  # waits for a claim in progress, which stop() then hands back
            self._stopping = True

    def _unclaim(self) -> None:
        with self._claim_lock:
            ids, self._claimed = set(self._claimed), set()
        if not ids:
            return
        with self._sessions.begin() as db:
            for row in db.scalars(
                select(WebhookEvent).where(
                    WebhookEvent.id.in_(ids), WebhookEvent.status == "pending"
                )
            ):
                row.next_attempt_at = utcnow()

    def _record(self, event_id: int, error: str | None) -> None:
        self._claimed.discard(event_id)
        now = utcnow()
        with self._sessions.begin() as db:
            row = db.get(WebhookEvent, event_id)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            if error is None:
                row.status = "delivered"
                row.delivered_at = now
                row.last_error = None
                logger.debug(f"webhook {row.id} {row.event_type} delivered")
                return
            row.last_error = error
            if now - as_utc(row.created_at) > timedelta(seconds=self._horizon):
                row.status = "failed"
                logger.warning(f"webhook {row.id} {row.event_type} given up: {error}")
            else:
                row.next_attempt_at = now + timedelta(seconds=self.backoff(row.attempts))
                logger.info(
                    f"webhook {row.id} {row.event_type} attempt {row.attempts} failed ({error}); "
                    f"retrying in {self.backoff(row.attempts):.1f}s"
                )
