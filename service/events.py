"""The webhook events a conversation's changes queue, written in the caller's transaction.

Each function adds rows to the outbox (``webhooks.enqueue``) in the same database transaction as
the change it reports, so an event exists exactly when its change does; ``OutboxWorker`` sends
them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from presence.service.db import ConversationRow, utcnow
from presence.service.webhooks import enqueue


def recording_url(public_url: str | None, conversation_id: str) -> str | None:
    """Where the API serves a conversation's recording (needs ``x-api-key``)."""
    if not public_url:
        return None
    return f"{public_url.rstrip('/')}/v2/conversations/{conversation_id}/recording"


def emit_ended(
    db,
    row: ConversationRow,
    *,
    recording_duration: float | None = None,
    public_url: str | None = None,
) -> None:
    """Outbox events for a conversation that just ended, in order, in the caller's transaction."""
    shutdown: dict[str, Any] = {
        "replica_id": row.replica_id,
        "shutdown_reason": row.shutdown_reason,
    }
    if row.failed_stage:
        shutdown["stage"] = row.failed_stage
    if row.error_message:
        shutdown["error"] = row.error_message
    enqueue(db, row, "system.shutdown", shutdown)
    props = row.properties or {}
    if props.get("enable_transcription", True):
        transcript = [
            {"role": t.get("role"), "content": t.get("content", "")} for t in row.transcript or []
        ]
        enqueue(
            db,
            row,
            "application.transcription_ready",
            {"replica_id": row.replica_id, "transcript": transcript},
        )
    if row.recording_path:
        enqueue(
            db,
            row,
            "application.recording_ready",
            {
                "replica_id": row.replica_id,
                "path": str(Path(row.recording_path)),
                "recording_url": recording_url(public_url, row.id),
                "duration": recording_duration,
                **(row.recording_storage or {}),
            },
        )
    if row.perception_analysis is not None:
        enqueue(
            db,
            row,
            "application.perception_analysis",
            {"replica_id": row.replica_id, "analysis": row.perception_analysis},
        )


def record_guardrail(
    db: Session, row: ConversationRow, trigger: dict[str, Any], url: str | None = None
) -> None:
    """Log a guardrail firing on the conversation and queue ``application.guardrail_triggered``.

    ``url``: the guardrail's own ``callback_url``, which gets the event too.
    """
    fired = {**trigger, "at": utcnow().isoformat()}
    row.guardrail_events = [*(row.guardrail_events or []), fired]
    props = {"replica_id": row.replica_id, **fired}
    enqueue(db, row, "application.guardrail_triggered", props)
    if url and url != row.callback_url:
        enqueue(db, row, "application.guardrail_triggered", props, url=url)


def record_objective(
    db: Session,
    row: ConversationRow,
    completion: dict[str, Any],
    state: list[dict[str, Any]],
    url: str | None = None,
) -> None:
    """Store the objectives' progress and queue ``application.objective_completed``.

    ``url``: the objective's own ``callback_url``, which gets the event too.
    """
    row.objectives = state
    props = {"replica_id": row.replica_id, **completion}
    enqueue(db, row, "application.objective_completed", props)
    if url and url != row.callback_url:
        enqueue(db, row, "application.objective_completed", props, url=url)
