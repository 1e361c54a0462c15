"""``/v2/guardrails`` and ``/v2/objectives``: named sets a persona points to.

Both routers come from one factory (``set_router``): create, list (``limit``/``page`` →
``{data, total_count}``), get, patch (a merge patch of ``name``/``data``, or an RFC 6902 JSON
Patch, as for personas), delete (409 while a persona uses the set: detach it first).
A set's items are validated as a whole (``check``): a 422 names what to fix.
"""

# No ``from __future__ import annotations``: FastAPI reads the factory's parameter types.

from collections.abc import Callable
from typing import Annotated, Any

import jsonpatch
import jsonpointer
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Discriminator, Tag, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from presence.service.auth import owned, owner
from presence.service.db import GuardrailsRow, ObjectivesRow, PersonaRow, new_id, utcnow
from presence.service.deps import db_session, paginate
from presence.service.intelligence import (
    GuardrailItem,
    GuardrailsCreate,
    GuardrailsOut,
    GuardrailsPatch,
    ObjectiveItem,
    ObjectivesCreate,
    ObjectivesOut,
    ObjectivesPatch,
    check_objectives,
    guardrail_warnings,
)
from presence.service.schemas import ErrorOut, JsonPatchOp, Page, errors


def _items(models: list[BaseModel]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in models]


def _unprocessable(message: str, loc: tuple = ("body", "data")) -> HTTPException:
    return HTTPException(422, detail=[{"loc": list(loc), "msg": message, "type": "value_error"}])


def _users(db: Session, who: str, kind: str, set_id: str) -> list[str]:
    """Ids of this key's personas that use the set."""
    personas = db.scalars(select(PersonaRow).where(PersonaRow.owner == who)).all()
    if kind == "objectives":
        return [p.id for p in personas if p.objectives_id == set_id]
    return [
        p.id
        for p in personas
        if p.guardrails_id == set_id
        or set_id in ((p.tavus_fields or {}).get("guardrail_ids") or [])
    ]


def set_router(
    *,
    kind: str,
    row_cls: type,
    id_prefix: str,
    create_body: Any,
    to_create: Callable[[Any], tuple[str, list[BaseModel]]],
    patch_model: type[BaseModel],
    item_model: type[BaseModel],
    out_model: type[BaseModel],
    to_out: Callable[[Any, list[str]], BaseModel],
    check: Callable[[list[dict[str, Any]]], list[str]],
) -> APIRouter:
    """The CRUD router for one kind of set (see the module docstring)."""
    router = APIRouter(prefix=f"/v2/{kind}", tags=[kind], responses=errors(401))
    items_adapter = TypeAdapter(list[item_model])

    def checked(items: list[dict[str, Any]]) -> list[str]:
        try:
            return check(items)
        except ValueError as exc:
            raise _unprocessable(str(exc)) from None

    def out(row: Any) -> BaseModel:
        try:
            warnings = check(row.data or [])
        except ValueError as exc:
            warnings = [str(exc)]
        return to_out(row, warnings)

    @router.post("", response_model=out_model, summary=f"Create {kind}", responses=errors(400))
    def create(
        body: create_body, who: str = Depends(owner), db: Session = Depends(db_session)
    ) -> BaseModel:
        name, models = to_create(body)
        data = _items(models)
        checked(data)
        row = row_cls(id=new_id(id_prefix), owner=who, name=name, data=data)
        db.add(row)
        db.commit()
        return out(row)

    @router.get("", response_model=Page[out_model], summary=f"List {kind}")
    def list_sets(
        limit: int = Query(10, ge=1, le=100),
        page: int = Query(1, ge=1),
        who: str = Depends(owner),
        db: Session = Depends(db_session),
    ) -> Page:
        offset, limit = paginate(limit, page)
        query = select(row_cls).where(row_cls.owner == who)
        total = db.scalar(select(func.count()).select_from(query.subquery()))
        rows = db.scalars(query.order_by(row_cls.created_at.desc()).offset(offset).limit(limit))
        return Page(data=[out(r) for r in rows], total_count=total or 0)

    @router.get(
        "/{set_id}", response_model=out_model, summary=f"Get {kind}", responses=errors(403, 404)
    )
    def get(set_id: str, who: str = Depends(owner), db: Session = Depends(db_session)):
        return out(owned(db.get(row_cls, set_id), who, kind, set_id))

    @router.patch(
        "/{set_id}",
        response_model=out_model,
        summary=f"Update {kind}",
        responses={
            **errors(400, 403, 404),
            304: {"description": "A JSON Patch that changed nothing."},
        },
    )
    def patch(
        set_id: str,
        body: Annotated[
            Annotated[patch_model, Tag("merge")] | Annotated[list[JsonPatchOp], Tag("json-patch")],
            Discriminator(lambda v: "json-patch" if isinstance(v, list) else "merge"),
            Body(description="A merge patch of name/data, or an RFC 6902 JSON Patch."),
        ],
        who: str = Depends(owner),
        db: Session = Depends(db_session),
    ):
        row = owned(db.get(row_cls, set_id), who, kind, set_id)
        if isinstance(body, list):
            before = {"name": row.name, "data": row.data or []}
            ops = [op.model_dump(by_alias=True, exclude_unset=True) for op in body]
            try:
                after = jsonpatch.JsonPatch(ops).apply(before)
            except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
                raise _unprocessable(f"JSON Patch failed: {exc}", ("body",)) from None
            if after == before:
                return Response(status_code=304)
            try:
                models = items_adapter.validate_python(after.get("data"))
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_context=False)
                raise RequestValidationError(
                    [{**e, "loc": ("body", "data", *e["loc"])} for e in errors]
                ) from None
            name, data = str(after.get("name") or ""), _items(models)
        else:
            name = body.name if body.name is not None else row.name
            data = _items(body.data) if body.data is not None else row.data
        checked(data)
        row.name, row.data, row.updated_at = name, data, utcnow()
        db.commit()
        return out(row)

    @router.delete(
        "/{set_id}",
        status_code=204,
        summary=f"Delete {kind}",
        responses={
            **errors(403, 404),
            409: {"model": ErrorOut, "description": "A persona still uses the set."},
        },
    )
    def delete(set_id: str, who: str = Depends(owner), db: Session = Depends(db_session)):
        row = owned(db.get(row_cls, set_id), who, kind, set_id)
        users = _users(db, who, kind, set_id)
        if users:
            raise HTTPException(
                409,
                detail=f"{kind} {set_id} is used by persona(s) {', '.join(users)}; remove it "
                "from them first",
            )
        db.delete(row)
        db.commit()
        return Response(status_code=204)

    return router


def _guardrails_create(body: Any) -> tuple[str, list[BaseModel]]:
    if isinstance(body, GuardrailItem):  # Tavus's individual guardrail: a set of one
        return body.guardrail_name, [body]
    return body.name, body.data


def _objectives_create(body: Any) -> tuple[str, list[BaseModel]]:
    if isinstance(body, list):  # one of Tavus's examples sends the bare list
        return "", body
    return body.name, body.data


guardrails_router = set_router(
    kind="guardrails",
    row_cls=GuardrailsRow,
    id_prefix="g",
    create_body=Annotated[
        Annotated[GuardrailsCreate, Tag("set")] | Annotated[GuardrailItem, Tag("single")],
        Discriminator(lambda v: "single" if isinstance(v, dict) and "data" not in v else "set"),
        Body(
            description="A set `{name, data: [guardrail...]}` (attach with `guardrails_id`), "
            "or one guardrail with `guardrail_name` at the top (attach with `guardrail_ids`)."
        ),
    ],
    to_create=_guardrails_create,
    patch_model=GuardrailsPatch,
    item_model=GuardrailItem,
    out_model=GuardrailsOut,
    to_out=lambda row, warnings: GuardrailsOut(
        guardrails_id=row.id,
        uuid=row.id,
        guardrails_name=row.name,
        data=row.data or [],
        warnings=warnings,
        created_at=row.created_at,
        updated_at=row.updated_at,
    ),
    check=guardrail_warnings,
)

objectives_router = set_router(
    kind="objectives",
    row_cls=ObjectivesRow,
    id_prefix="o",
    create_body=Annotated[
        Annotated[ObjectivesCreate, Tag("set")] | Annotated[list[ObjectiveItem], Tag("list")],
        Discriminator(lambda v: "list" if isinstance(v, list) else "set"),
        Body(description="`{name, data: [objective...]}`, or the bare list of objectives."),
    ],
    to_create=_objectives_create,
    patch_model=ObjectivesPatch,
    item_model=ObjectiveItem,
    out_model=ObjectivesOut,
    to_out=lambda row, warnings: ObjectivesOut(
        objectives_id=row.id,
        objective_name=row.name,
        data=row.data or [],
        warnings=warnings,
        created_at=row.created_at,
        updated_at=row.updated_at,
    ),
    check=check_objectives,
)
