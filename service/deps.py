"""Shared route helpers: the database session, paging and FastAPI-shaped 422s."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session


def db_session(request: Request) -> Iterator[Session]:
    """A database session for one request (commit explicitly with ``db.commit()``)."""
    with request.app.state.sessions() as db:
        yield db


MAX_OFFSET = 2**62
"""Past any table's end, and inside a 64-bit SQL integer (a page past the end is empty)."""


def paginate(limit: int, page: int) -> tuple[int, int]:
    """``(offset, limit)`` for a 1-based ``page`` of ``limit`` rows (any page number works)."""
    return min((page - 1) * limit, MAX_OFFSET), limit


def unprocessable(field: str, message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own: ``loc`` is the body field (dotted paths split)."""
    return HTTPException(
        422, detail=[{"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}]
    )
