"""Shared route dependencies: the database session and the service singletons."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from sqlalchemy.orm import Session


def db_session(request: Request) -> Iterator[Session]:
    """A database session for one request (commit explicitly with ``db.commit()``)."""
    with request.app.state.sessions() as db:
        yield db


def paginate(limit: int, page: int) -> tuple[int, int]:
    """``(offset, limit)`` for a 1-based ``page`` of ``limit`` rows."""
    return (page - 1) * limit, limit
