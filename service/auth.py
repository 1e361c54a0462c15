"""``x-api-key`` authentication: 401 without a valid key, 403 for a key that does not own a row.

Every ``/v2`` route depends on ``owner``; the key's owner id (a digest of the key) is stored on
every row it creates, and ``owned`` turns "exists but belongs to another key" into 403 and
"does not exist" into 404.
"""

from __future__ import annotations

import hmac
from typing import TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader

from presence.service.settings import owner_of

api_key_header = APIKeyHeader(
    name="x-api-key", auto_error=False, description="One of the keys in PRESENCE_API_KEYS."
)

T = TypeVar("T")


def owner(request: Request, key: str | None = Depends(api_key_header)) -> str:
    """The owner id of the request's API key.

    Raises:
        HTTPException: 401 when the header is missing or the key is not accepted.
    """
    if not key:
        raise HTTPException(401, detail="missing x-api-key header")
    accepted = request.app.state.settings.api_keys
    if not any(hmac.compare_digest(key.encode(), k.encode()) for k in accepted):
        raise HTTPException(401, detail="invalid API key")
    return owner_of(key)


def owned(row: T | None, who: str, kind: str, ident: str) -> T:
    """``row`` when it exists and belongs to ``who``.

    Raises:
        HTTPException: 404 when there is no such row, 403 when another key owns it.
    """
    if row is None:
        raise HTTPException(404, detail=f"{kind} {ident} not found")
    if row.owner != who:  # type: ignore[attr-defined]
        raise HTTPException(403, detail=f"this API key does not own {kind} {ident}")
    return row
