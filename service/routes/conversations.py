"""``/v2/conversations``: start, list, get (with transcript), end, delete; ``/v2/usage``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BeforeValidator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from presence.framework.errors import ConfigError
from presence.service.auth import owned, owner
from presence.service.db import (
    ConversationRow,
    PersonaRow,
    ReplicaRow,
    as_utc,
    new_id,
    utcnow,
)
from presence.service.deps import db_session, paginate, unprocessable
from presence.service.intelligence import initial_objectives, persona_rulesets
from presence.service.knowledge import (
    Knowledge,
    UnknownDocuments,
    build_knowledge,
    check_document_ids,
    conversation_dir,
)
from presence.service.memories import store_memories
from presence.service.pipelines import (
    config_problem,
    conversation_spec,
    knowledge_dir,
    resolve_pipeline,
)
from presence.service.schemas import (
    ConversationCreate,
    ConversationOut,
    ErrorOut,
    Page,
    UsageItem,
    UsageOut,
    errors,
)
from presence.service.supervisor import CapacityError
from presence.service.tavus import conversation_warnings

router = APIRouter(prefix="/v2/conversations", tags=["conversations"], responses=errors(401))
usage_router = APIRouter(prefix="/v2/usage", tags=["usage"], responses=errors(401))


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rfc3339(value: object) -> object:
    """A query time as aware UTC: ISO 8601 text with a time (no offset: UTC); not a number.

    Stored times are UTC, and SQLite compares them as text without their offset, so a filter in
    another offset is converted first.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a date-time like 2026-01-31T09:30:00Z") from None
        if "T" not in value.upper() and " " not in value:
            raise ValueError("expected a date-time like 2026-01-31T09:30:00Z (with a time)")
        return _as_utc(parsed)
    if isinstance(value, datetime):
        return _as_utc(value)
    raise ValueError("expected a date-time like 2026-01-31T09:30:00Z")


QueryTime = Annotated[datetime | None, BeforeValidator(lambda v: v if v is None else _rfc3339(v))]


def _duration(row: ConversationRow) -> float:
    end = as_utc(row.ended_at) or utcnow()
    return max(0.0, (end - as_utc(row.created_at)).total_seconds())


def conversation_out(request: Request, row: ConversationRow) -> ConversationOut:
    """The API view of a conversation row."""
    return ConversationOut(
        conversation_id=row.id,
        conversation_name=row.conversation_name,
        conversation_url=row.conversation_url
        or f"{request.app.state.settings.public_url}/c/{row.id}/",
        status=row.status,
        callback_url=row.callback_url,
        replica_id=row.replica_id,
        persona_id=row.persona_id,
        conversational_context=row.conversational_context,
        custom_greeting=row.custom_greeting,
        properties=row.properties or {},
        shutdown_reason=row.shutdown_reason,
        failed_stage=row.failed_stage,
        error_message=row.error_message,
        transcript=row.transcript or [],
        perception_analysis=row.perception_analysis,
        recording_path=row.recording_path,
        recording_storage=row.recording_storage,
        duration_seconds=round(_duration(row), 3),
        objectives=row.objectives or [],
        guardrails_triggered=row.guardrail_events or [],
        created_at=row.created_at,
        joined_at=row.joined_at,
        ended_at=row.ended_at,
        updated_at=row.updated_at,
        warnings=(row.tavus_fields or {}).get("warnings", []),
    )


def _knowledge(
    request: Request, db: Session, who: str, row, persona, body
) -> tuple[Knowledge, list[str]]:
    """The conversation's knowledge folder (documents, memories) and its stores' memories."""
    settings = request.app.state.settings
    pipeline = resolve_pipeline(persona.pipeline, settings) if persona else settings.base_pipeline
    memories = store_memories(db, who, body.memory_stores or [])
    own = knowledge_dir(settings, persona.id) if persona is not None and persona.documents else None
    knowledge = build_knowledge(
        db, settings, conversation_id=row.id, owner=who, persona=persona, pipeline=pipeline,
        request=body.model_dump(include={"document_ids", "document_tags"}),
        memories=memories, own_knowledge=own,
    )  # fmt: skip
    return knowledge, memories


def _drop_files(settings, conversation_id: str) -> None:
    shutil.rmtree(conversation_dir(settings, conversation_id), ignore_errors=True)


_TAVUS_FIELDS = (
    "audio_only", "memory_stores", "document_ids", "document_tags", "document_retrieval_strategy",
    "test_mode", "max_participants",
)  # fmt: skip


@router.post(
    "",
    response_model=ConversationOut,
    summary="Start a conversation",
    responses=errors(400, 403, 404, 429),
)
async def create_conversation(
    body: ConversationCreate,
    request: Request,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> ConversationOut:
    """Create a conversation and get its session ready; share ``conversation_url`` to join.

    Answers 429 when the service already runs its maximum of live conversations. With
    ``test_mode`` the conversation is created already ended and no session starts. Tavus fields
    presence does not apply are accepted and listed in ``warnings``.
    """
    if body.require_auth:
        raise HTTPException(
            400,
            detail="require_auth: presence does not issue meeting tokens; its conversation_url "
            "is an unguessable link (share it only with the participant), so a private room "
            "cannot be promised. Send require_auth false or leave it out.",
        )
    persona = None
    if body.persona_id:
        persona = owned(db.get(PersonaRow, body.persona_id), who, "persona", body.persona_id)
    replica_id = body.replica_id or (persona.default_replica_id if persona else None)
    replica = None
    if replica_id:
        replica = owned(db.get(ReplicaRow, replica_id), who, "replica", replica_id)
        if replica.status != "ready":
            raise unprocessable(
                "replica_id", f"replica {replica_id} is {replica.status}, not ready"
            )
    guardrails, objectives = persona_rulesets(db, persona)
    try:
        check_document_ids(db, who, body.document_ids)
    except UnknownDocuments as exc:
        raise unprocessable("document_ids", str(exc)) from None
    tavus = body.model_dump(include=set(_TAVUS_FIELDS), exclude_none=True)
    tavus["warnings"] = conversation_warnings(body)
    row = ConversationRow(
        id=new_id("c"),
        owner=who,
        persona_id=body.persona_id,
        replica_id=replica_id,
        conversation_name=body.conversation_name,
        conversational_context=body.conversational_context,
        custom_greeting=body.custom_greeting,
        callback_url=str(body.callback_url) if body.callback_url else None,
        properties=body.properties.model_dump(exclude_none=True),
        status="active",
        transcript=[],
        tavus_fields=tavus,
        objectives=initial_objectives(objectives),
        guardrail_events=[],
    )
    settings = request.app.state.settings
    try:
        knowledge, memories = None, []
        if not body.test_mode:
            knowledge, memories = _knowledge(request, db, who, row, persona, body)
            tavus["warnings"] += knowledge.warnings
        spec = conversation_spec(
            settings, row, persona, replica, knowledge, memories,
            guardrails=guardrails, objectives=objectives,
        )  # fmt: skip
    except ConfigError as exc:
        _drop_files(settings, row.id)
        raise unprocessable("persona_id", config_problem(exc)) from None
    if body.test_mode:
        row.status, row.shutdown_reason = "ended", "test_mode"
        row.ended_at = utcnow()
        db.add(row)
        db.commit()
        return conversation_out(request, row)
    supervisor = request.app.state.supervisor
    try:
        supervisor.reserve(spec)
    except CapacityError as exc:
        _drop_files(settings, row.id)
        raise HTTPException(429, detail=str(exc)) from None
    try:
        db.add(row)
        db.commit()
    except Exception:
        supervisor.release(row.id)
        raise
    await supervisor.start(row.id)
    db.refresh(row)
    return conversation_out(request, row)


@router.get("", response_model=Page[ConversationOut], summary="List conversations")
def list_conversations(
    request: Request,
    status: str | None = Query(None, pattern="^(active|ended)$"),
    persona_id: str | None = None,
    replica_id: str | None = None,
    created_after: QueryTime = None,
    created_before: QueryTime = None,
    limit: int = Query(10, ge=1, le=100),
    page: int = Query(1, ge=1),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[ConversationOut]:
    """This key's conversations, newest first, filtered by the parameters given."""
    query = select(ConversationRow).where(ConversationRow.owner == who)
    if status:
        query = query.where(ConversationRow.status == status)
    if persona_id:
        query = query.where(ConversationRow.persona_id == persona_id)
    if replica_id:
        query = query.where(ConversationRow.replica_id == replica_id)
    if created_after:
        query = query.where(ConversationRow.created_at >= created_after)
    if created_before:
        query = query.where(ConversationRow.created_at < created_before)
    offset, limit = paginate(limit, page)
    total = db.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.scalars(query.order_by(ConversationRow.created_at.desc()).offset(offset).limit(limit))
    return Page(data=[conversation_out(request, r) for r in rows], total_count=total or 0)


@router.get(
    "/{conversation_id}",
    response_model=ConversationOut,
    summary="Get a conversation",
    responses=errors(403, 404),
)
def get_conversation(
    conversation_id: str,
    request: Request,
    verbose: bool = Query(
        False, description="Tavus's flag; presence always includes the transcript and events."
    ),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> ConversationOut:
    """One conversation with its transcript so far."""
    row = owned(db.get(ConversationRow, conversation_id), who, "conversation", conversation_id)
    return conversation_out(request, row)


@router.post(
    "/{conversation_id}/end",
    response_model=ConversationOut,
    summary="End a conversation",
    responses=errors(403, 404),
)
async def end_conversation(
    conversation_id: str,
    request: Request,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> ConversationOut:
    """End a live conversation (reason ``end_conversation_endpoint_hit``); no-op once ended."""
    owned(db.get(ConversationRow, conversation_id), who, "conversation", conversation_id)
    await request.app.state.supervisor.end(conversation_id, "end_conversation_endpoint_hit")
    db.expire_all()
    return conversation_out(request, db.get(ConversationRow, conversation_id))


@router.get(
    "/{conversation_id}/recording",
    summary="Download a conversation's recording",
    response_class=FileResponse,
    responses={
        200: {"content": {"video/mp4": {}}, "description": "The MP4."},
        **errors(403),
        404: {"model": ErrorOut, "description": "No such conversation, or it has no recording."},
    },
)
def get_recording(
    conversation_id: str,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> FileResponse:
    """The MP4 of a conversation created with ``enable_recording`` (available once it ended).

    Answers 404 when the conversation has no recording (not enabled, nobody joined, still live).
    """
    row = owned(db.get(ConversationRow, conversation_id), who, "conversation", conversation_id)
    path = Path(row.recording_path) if row.recording_path else None
    if path is None or not path.is_file():
        raise HTTPException(404, detail=f"conversation {conversation_id} has no recording")
    return FileResponse(path, media_type="video/mp4", filename=f"{conversation_id}.mp4")


@router.delete(
    "/{conversation_id}",
    status_code=204,
    summary="Delete a conversation",
    responses=errors(403, 404),
)
async def delete_conversation(
    conversation_id: str,
    request: Request,
    hard: bool = Query(
        False, description="Tavus's flag; presence always deletes the record (recordings stay)."
    ),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Response:
    """End the conversation if live, then delete its record (queued webhooks are still sent)."""
    owned(db.get(ConversationRow, conversation_id), who, "conversation", conversation_id)
    await request.app.state.supervisor.end(conversation_id, "end_conversation_endpoint_hit")
    db.expire_all()
    row = db.get(ConversationRow, conversation_id)
    if row is not None:
        db.delete(row)
        db.commit()
    return Response(status_code=204)


@usage_router.get("", response_model=UsageOut, summary="Conversation minutes")
def usage(
    created_after: QueryTime = None,
    created_before: QueryTime = None,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> UsageOut:
    """Minutes per conversation (creation to end, or to now while live) and their total."""
    query = select(ConversationRow).where(ConversationRow.owner == who)
    if created_after:
        query = query.where(ConversationRow.created_at >= created_after)
    if created_before:
        query = query.where(ConversationRow.created_at < created_before)
    rows = db.scalars(query.order_by(ConversationRow.created_at)).all()
    items = [
        UsageItem(
            conversation_id=r.id,
            status=r.status,
            minutes=round(_duration(r) / 60, 4),
            created_at=r.created_at,
            ended_at=r.ended_at,
        )
        for r in rows
    ]
    return UsageOut(total_minutes=round(sum(i.minutes for i in items), 4), conversations=items)
