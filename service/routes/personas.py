"""``/v2/personas``: create, list, get, patch (JSON merge patch or RFC 6902 JSON Patch), delete."""

from __future__ import annotations

import asyncio
import json
import shutil
from typing import Annotated, Any, Literal

import jsonpatch
import jsonpointer
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import Discriminator, Tag, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from presence.framework.errors import ConfigError
from presence.service.auth import owned, owner
from presence.service.db import (
    GuardrailsRow,
    ObjectivesRow,
    PersonaRow,
    ReplicaRow,
    new_id,
    utcnow,
)
from presence.service.deps import db_session, paginate
from presence.service.knowledge import UnknownDocuments, check_document_ids
from presence.service.pipelines import (
    check_pipeline,
    config_problem,
    knowledge_dir,
    persona_layers,
    resolve_pipeline,
    write_documents,
)
from presence.service.schemas import (
    JsonPatchOp,
    Page,
    PersonaCreate,
    PersonaOut,
    PersonaPatch,
    errors,
)
from presence.service.tavus import persona_field_warnings

router = APIRouter(prefix="/v2/personas", tags=["personas"], responses=errors(401))

_TAVUS_FIELDS = (
    "pipeline_mode",
    "document_ids",
    "document_tags",
    "guardrail_ids",
    "guardrail_tags",
)
_COLUMNS = (
    "persona_name", "system_prompt", "context", "greeting", "default_replica_id", "pipeline",
    "layers", "documents", "tools", "guardrails_id", "objectives_id",
)  # fmt: skip
_CLEARED = {"system_prompt": "", "context": "", "greeting": "", "layers": {}, "tools": []}


def _warnings(row: PersonaRow, settings) -> list[str]:
    tavus = row.tavus_fields or {}
    out = persona_field_warnings(tavus.get("pipeline_mode"))
    try:
        _, layer_warnings = persona_layers(row.layers, resolve_pipeline(row.pipeline, settings))
    except ConfigError:
        layer_warnings = []
    return layer_warnings + out


def persona_out(row: PersonaRow, settings) -> PersonaOut:
    """The API view of a persona row (``warnings`` reflect the server's current settings)."""
    tavus = row.tavus_fields or {}
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
        pipeline_mode=tavus.get("pipeline_mode") or "full",
        document_ids=tavus.get("document_ids") or [],
        document_tags=tavus.get("document_tags") or [],
        guardrails_id=row.guardrails_id,
        guardrail_ids=tavus.get("guardrail_ids") or [],
        guardrail_tags=tavus.get("guardrail_tags") or [],
        objectives_id=row.objectives_id,
        warnings=_warnings(row, settings),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _split_tavus(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(columns, tavus_fields)`` of a request's fields; layers' document ids move up."""
    columns = {k: v for k, v in data.items() if k in _COLUMNS}
    tavus = {k: v for k, v in data.items() if k in _TAVUS_FIELDS}
    layers = columns.get("layers")
    if isinstance(layers, dict):
        layers = dict(layers)
        for key in ("document_ids", "document_tags"):
            if key in layers:  # Tavus's create-persona example puts them under layers
                tavus[key] = [*(tavus.get(key) or []), *(layers.pop(key) or [])]
        columns["layers"] = layers
    return columns, tavus


def _check_documents(db: Session, who: str, tavus: dict[str, Any]) -> None:
    """422 naming the ``document_ids`` of a request that this key has no document for."""
    try:
        check_document_ids(db, who, tavus.get("document_ids"))
    except UnknownDocuments as exc:
        raise HTTPException(
            422, detail=[{"loc": ["body", "document_ids"], "msg": str(exc), "type": "value_error"}]
        ) from None


async def _validate(request: Request, db: Session, who: str, row: PersonaRow) -> None:
    settings = request.app.state.settings
    if row.default_replica_id:
        owned(db.get(ReplicaRow, row.default_replica_id), who, "replica", row.default_replica_id)
    for gid in [row.guardrails_id, *((row.tavus_fields or {}).get("guardrail_ids") or [])]:
        if gid:
            owned(db.get(GuardrailsRow, gid), who, "guardrails", gid)
    if row.objectives_id:
        owned(db.get(ObjectivesRow, row.objectives_id), who, "objectives", row.objectives_id)
    try:
        path = resolve_pipeline(row.pipeline, settings)
        overrides, _ = persona_layers(row.layers, path)
        await asyncio.to_thread(check_pipeline, path, overrides)
    except ConfigError as exc:
        raise HTTPException(
            422,
            detail=[
                {"loc": _loc(exc.field), "msg": config_problem(exc), "type": "invalid_pipeline"}
            ],
        ) from None


def _loc(field: str | None) -> list[str]:
    """The request location of a pipeline field (``stages.tts.x`` → body.layers.tts.x)."""
    parts = (field or "").split(".")
    if parts[0] == "pipeline":
        return ["body", "pipeline"]
    if parts[0] == "layers":
        return ["body", *parts]
    if parts[0] == "stages" and len(parts) > 1:
        flow = ["conversational_flow"] if parts[1] in ("vad", "turn") else []
        return ["body", "layers", *flow, *parts[1:]]
    if parts[0] == "transport":
        return ["body", "layers", *parts]
    return ["body", "layers"]


@router.post(
    "", response_model=PersonaOut, summary="Create a persona", responses=errors(400, 403, 404)
)
async def create_persona(
    body: PersonaCreate,
    request: Request,
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> PersonaOut:
    """Create a persona; its layers (Tavus's or presence's fields) are validated on its pipeline.

    Tavus fields presence does not apply are accepted and listed in ``warnings``.
    """
    columns, tavus = _split_tavus(body.model_dump(exclude_none=True, by_alias=True))
    _check_documents(db, who, tavus)
    row = PersonaRow(
        id=new_id("p"),
        owner=who,
        **{**columns, "layers": columns.get("layers", {})},
        tavus_fields=tavus,
    )
    await _validate(request, db, who, row)
    write_documents(request.app.state.settings, row.id, row.documents)
    db.add(row)
    db.commit()
    return persona_out(row, request.app.state.settings)


@router.get("", response_model=Page[PersonaOut], summary="List personas")
def list_personas(
    request: Request,
    limit: int = Query(10, ge=1, le=100),
    page: int = Query(1, ge=1),
    persona_type: Literal["user", "system"] | None = Query(
        None, description="Tavus filter: presence has user personas only ('system' is empty)."
    ),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[PersonaOut]:
    """This key's personas, newest first."""
    if persona_type == "system":
        return Page(data=[], total_count=0)
    offset, limit = paginate(limit, page)
    query = select(PersonaRow).where(PersonaRow.owner == who)
    total = db.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.scalars(query.order_by(PersonaRow.created_at.desc()).offset(offset).limit(limit))
    settings = request.app.state.settings
    return Page(data=[persona_out(r, settings) for r in rows], total_count=total or 0)


@router.get(
    "/{persona_id}", response_model=PersonaOut, summary="Get a persona", responses=errors(403, 404)
)
def get_persona(
    persona_id: str, request: Request, who: str = Depends(owner), db: Session = Depends(db_session)
):
    """One persona."""
    row = owned(db.get(PersonaRow, persona_id), who, "persona", persona_id)
    return persona_out(row, request.app.state.settings)


def _document(row: PersonaRow) -> dict[str, Any]:
    """The persona as the JSON document a JSON Patch applies to."""
    doc = {k: getattr(row, k) for k in _COLUMNS if k != "documents"}
    doc = {**doc, **(row.tavus_fields or {})}
    return json.loads(json.dumps({k: v for k, v in doc.items() if v is not None}))


def _json_patch(row: PersonaRow, ops: list[JsonPatchOp]) -> dict[str, Any] | None:
    """The changed fields after applying ``ops`` (``None`` when nothing changed).

    Raises:
        HTTPException: 422 when an operation fails or the result is not a valid persona.
    """
    before = _document(row)
    patch = jsonpatch.JsonPatch([op.model_dump(by_alias=True, exclude_unset=True) for op in ops])
    try:
        after = patch.apply(before)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise HTTPException(
            422, detail=[{"loc": ["body"], "msg": f"JSON Patch failed: {exc}", "type": "patch"}]
        ) from None
    if after == before:
        return None
    try:
        clean = PersonaPatch.model_validate(after).model_dump(exclude_unset=True, by_alias=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    if "persona_name" not in after:
        raise HTTPException(
            422,
            detail=[
                {"loc": ["body", "persona_name"], "msg": "cannot be removed", "type": "missing"}
            ],
        )
    changes = {k: v for k, v in clean.items() if before.get(k) != v}
    changes.update({k: _CLEARED.get(k) for k in before if k not in after})
    return changes


@router.patch(
    "/{persona_id}",
    response_model=PersonaOut,
    summary="Update a persona",
    responses={
        **errors(400, 403, 404),
        304: {"description": "A JSON Patch that changed nothing (Tavus semantics)."},
    },
)
async def patch_persona(
    persona_id: str,
    request: Request,
    body: Annotated[
        Annotated[PersonaPatch, Tag("merge")] | Annotated[list[JsonPatchOp], Tag("json-patch")],
        Discriminator(lambda v: "json-patch" if isinstance(v, list) else "merge"),
        Body(
            description="A JSON merge patch (an object of the fields to replace) or, as Tavus "
            "documents, an RFC 6902 JSON Patch (a list of operations such as "
            '`{"op": "replace", "path": "/layers/llm/model", "value": "..."}`).'
        ),
    ],
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> PersonaOut | Response:
    """Update a persona; its layers are validated again."""
    row = owned(db.get(PersonaRow, persona_id), who, "persona", persona_id)
    if isinstance(body, list):
        changes = _json_patch(row, body)
        if changes is None:
            return Response(status_code=304)
    else:
        changes = body.model_dump(exclude_unset=True, by_alias=True)
        changes = {
            k: v
            for k, v in changes.items()
            if v is not None
            or k in ("default_replica_id", "pipeline", "pipeline_mode", "guardrails_id")
            or k in ("objectives_id", "guardrail_ids", "guardrail_tags")
        }
    columns, tavus = _split_tavus(changes)
    _check_documents(db, who, tavus)
    for key, value in columns.items():
        setattr(row, key, value)
    if tavus:
        row.tavus_fields = {**(row.tavus_fields or {}), **tavus}
    await _validate(request, db, who, row)
    if "documents" in columns:
        write_documents(request.app.state.settings, row.id, row.documents or [])
    row.updated_at = utcnow()
    db.commit()
    return persona_out(row, request.app.state.settings)


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
