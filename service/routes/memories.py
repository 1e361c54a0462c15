"""``/v2/memories``: what conversations remembered about their users, by memory store.

Tavus documents ``memory_stores`` on a conversation but no API to read or erase memories; these
routes give a self-hosted deployment both, so a user's right to be forgotten is one call:

- ``GET /v2/memories``: this key's stores and how many memories each holds;
- ``GET /v2/memories/{memory_store}``: a store's memories, newest first, paged;
- ``POST /v2/memories/{memory_store}``: add one by hand (``{"content": ..., "kind": ...}``);
- ``DELETE /v2/memories/{memory_store}/{memory_id}``: forget one;
- ``DELETE /v2/memories/{memory_store}``: forget the whole store.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from presence.service.auth import owner
from presence.service.db import MemoryRow
from presence.service.deps import db_session, paginate
from presence.service.memories import KINDS, Memory, forget, save_memories
from presence.service.schemas import Page, UtcDateTime, errors

router = APIRouter(prefix="/v2/memories", tags=["memories"], responses=errors(401))
Store = Path(min_length=1, max_length=200, description="The memory store (a conversation's `memory_stores` entry).")  # fmt: skip


class MemoryOut(BaseModel):
    """One memory."""

    memory_id: str
    memory_store: str
    kind: str = Field(description=f"One of {', '.join(KINDS)}.")
    content: str
    conversation_id: str | None = Field(description="The conversation it was learnt in.")
    source: Literal["offline", "llm", "api"]
    created_at: UtcDateTime


class MemoryIn(BaseModel):
    """A memory added by hand."""

    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1, max_length=500, pattern=r"\S")
    kind: Literal["name", "preference", "work", "location", "family", "fact"] = "fact"


class StoreOut(BaseModel):
    """A memory store and its size."""

    memory_store: str
    memory_count: int
    updated_at: UtcDateTime


def _out(row: MemoryRow) -> MemoryOut:
    return MemoryOut(
        memory_id=row.id, memory_store=row.memory_store, kind=row.kind, content=row.content,
        conversation_id=row.conversation_id, source=row.source, created_at=row.created_at,
    )  # fmt: skip


@router.get("", response_model=Page[StoreOut], summary="List memory stores")
def list_stores(
    limit: int = Query(10, ge=1, le=100),
    page: int = Query(1, ge=1),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[StoreOut]:
    """This key's memory stores, most recently updated first."""
    query = (
        select(MemoryRow.memory_store, func.count(), func.max(MemoryRow.created_at))
        .where(MemoryRow.owner == who)
        .group_by(MemoryRow.memory_store)
    )
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    offset, limit = paginate(limit, page)
    rows = db.execute(
        query.order_by(func.max(MemoryRow.created_at).desc()).offset(offset).limit(limit)
    )
    data = [StoreOut(memory_store=s, memory_count=n, updated_at=t) for s, n, t in rows]
    return Page(data=data, total_count=total)


@router.get("/{memory_store}", response_model=Page[MemoryOut], summary="List a store's memories")
def list_memories(
    memory_store: str = Store,
    limit: int = Query(50, ge=1, le=100),
    page: int = Query(1, ge=1),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[MemoryOut]:
    """A store's memories, newest first (an unknown store is empty, not 404)."""
    query = select(MemoryRow).where(MemoryRow.owner == who, MemoryRow.memory_store == memory_store)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    offset, limit = paginate(limit, page)
    rows = db.scalars(
        query.order_by(MemoryRow.created_at.desc(), MemoryRow.id).offset(offset).limit(limit)
    )
    return Page(data=[_out(r) for r in rows], total_count=total)


@router.post(
    "/{memory_store}", response_model=MemoryOut, summary="Add a memory", responses=errors(400)
)
def add_memory(
    body: MemoryIn,
    memory_store: str = Store,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> MemoryOut:
    """Add a memory by hand (a name replaces the store's old name; the same content is kept once)."""
    content = body.content.strip()
    save_memories(db, who, [memory_store], [Memory(body.kind, content)], None, "api")
    db.commit()
    # the new row, or the one already holding this content (compared as save_memories does)
    rows = db.scalars(
        select(MemoryRow).where(MemoryRow.owner == who, MemoryRow.memory_store == memory_store)
    )
    return _out(next(r for r in rows if r.content.strip().lower() == content.lower()))


@router.delete(
    "/{memory_store}/{memory_id}",
    status_code=204,
    summary="Forget one memory",
    responses=errors(404),
)
def delete_memory(
    memory_id: str,
    memory_store: str = Store,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Response:
    """Delete one memory of a store (404 when the store has no such memory for this key)."""
    if not forget(db, who, memory_store, memory_id):
        raise HTTPException(404, detail=f"memory {memory_id} not found in store {memory_store}")
    db.commit()
    return Response(status_code=204)


@router.delete("/{memory_store}", status_code=204, summary="Forget a whole memory store")
def delete_store(
    memory_store: str = Store, who: str = Depends(owner), db: Session = Depends(db_session)
) -> Response:
    """Delete every memory of a store (the user's right to be forgotten); 204 even when empty."""
    forget(db, who, memory_store)
    db.commit()
    return Response(status_code=204)
