"""Shared route dependencies: the database session and the service singletons."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
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
