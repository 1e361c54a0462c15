"""``/v2/personas``: create, list, get, patch, delete."""

from __future__ import annotations

import asyncio
import shutil

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from presence.framework.errors import ConfigError
from presence.service.auth import owned, owner
from presence.service.db import PersonaRow, ReplicaRow, new_id, utcnow
from presence.service.deps import db_session, paginate
from presence.service.pipelines import (
    check_pipeline,
    config_problem,
    knowledge_dir,
    layer_overrides,
    resolve_pipeline,
    write_documents,
)
from presence.service.schemas import Page, PersonaCreate, PersonaOut, PersonaPatch, errors

router = APIRouter(prefix="/v2/personas", tags=["personas"], responses=errors(401))


def persona_out(row: PersonaRow) -> PersonaOut:
    """The API view of a persona row."""
    return PersonaOut(
        persona_id=row.id,
        persona_name=row.persona_name,
        system_prompt=row.system_prompt,
        context=row.context,
        greeting=row.greeting,
        default_replica_id=row.default_replica_id,
        pipeline=row.pipeline,
        layers=row.layers or {},
        documents=[{"document_name": d["document_name"]} for d in row.documents or []],
        tools=row.tools or [],
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _validate(request: Request, db: Session, who: str, row: PersonaRow) -> None:
    settings = request.app.state.settings
    if row.default_replica_id:
        owned(db.get(ReplicaRow, row.default_replica_id), who, "replica", row.default_replica_id)
    try:
        path = resolve_pipeline(row.pipeline, settings)
        overrides = layer_overrides(row.layers)
        await asyncio.to_thread(check_pipeline, path, overrides)
    except ConfigError as exc:
        where = "pipeline" if exc.field == "pipeline" else "layers"
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body", where], "msg": config_problem(exc), "type": "invalid_pipeline"}
            ],
        ) from None


@router.post(
    "", response_model=PersonaOut, summary="Create a persona", responses=errors(400, 403, 404)
)
async def create_persona(
    body: PersonaCreate,
    request: Request,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> PersonaOut:
    """Create a persona; its layers are validated against the pipeline they apply to."""
    data = body.model_dump(exclude_none=True)
    row = PersonaRow(id=new_id("p"), owner=who, **{**data, "layers": data.get("layers", {})})
    await _validate(request, db, who, row)
    write_documents(request.app.state.settings, row.id, row.documents)
    db.add(row)
    db.commit()
    return persona_out(row)


@router.get("", response_model=Page[PersonaOut], summary="List personas")
def list_personas(
    limit: int = Query(10, ge=1, le=100),
    page: int = Query(1, ge=1),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[PersonaOut]:
    """This key's personas, newest first."""
    offset, limit = paginate(limit, page)
    query = select(PersonaRow).where(PersonaRow.owner == who)
    total = db.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.scalars(query.order_by(PersonaRow.created_at.desc()).offset(offset).limit(limit))
    return Page(data=[persona_out(r) for r in rows], total_count=total or 0)


@router.get(
    "/{persona_id}", response_model=PersonaOut, summary="Get a persona", responses=errors(403, 404)
)
def get_persona(persona_id: str, who: str = Depends(owner), db: Session = Depends(db_session)):
    """One persona."""
    return persona_out(owned(db.get(PersonaRow, persona_id), who, "persona", persona_id))


@router.patch(
    "/{persona_id}",
    response_model=PersonaOut,
    summary="Update a persona",
    responses=errors(400, 403, 404),
)
async def patch_persona(
    persona_id: str,
    body: PersonaPatch,
    request: Request,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> PersonaOut:
    """Replace the fields given (a JSON merge patch); layers are validated again."""
    row = owned(db.get(PersonaRow, persona_id), who, "persona", persona_id)
    changes = body.model_dump(exclude_unset=True)
    for key, value in changes.items():
        setattr(
            row,
            key,
            value
            if value is not None or key in ("default_replica_id", "pipeline")
            else getattr(row, key),
        )
    await _validate(request, db, who, row)
    if "documents" in changes:
        write_documents(request.app.state.settings, row.id, row.documents or [])
    row.updated_at = utcnow()
    db.commit()
    return persona_out(row)


@router.delete(
    "/{persona_id}", status_code=204, summary="Delete a persona", responses=errors(403, 404)
)
def delete_persona(
    persona_id: str, request: Request, who: str = Depends(owner), db: Session = Depends(db_session)
) -> Response:
    """Delete a persona and its documents (conversations that used it keep their records)."""
    row = owned(db.get(PersonaRow, persona_id), who, "persona", persona_id)
    db.delete(row)
    db.commit()
    shutil.rmtree(knowledge_dir(request.app.state.settings, persona_id).parent, ignore_errors=True)
    return Response(status_code=204)
