"""Refusals in Tavus's shape: every 4xx body carries ``error``, one sentence naming what is wrong.

Tavus documents its refusals as ``{"error": "Invalid conversation_id"}`` (400, 404, ...) and
``{"message": "Invalid access token"}`` (401) (read 2026: docs.tavus.io/api-reference/
conversations/end-conversation, .../phoenix-replica-model/patch-replica-name). presence answers
with the same fields so a Tavus client's error handling works unchanged, and keeps FastAPI's
``detail`` beside them (a sentence, or for a 422 the list of ``{loc, msg, type}`` naming each
field) for clients written against presence:

- 4xx: ``{"error": "persona p1 not found", "detail": "persona p1 not found"}``;
- 401: the same plus ``"message"``;
- 422: ``{"error": "properties.max_call_duration: Input should be greater than 0",
  "detail": [{"loc": ["body", "properties", "max_call_duration"], ...}]}``.

5xx answers are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from presence.framework.yamlio import field_path


def describe(detail: Any) -> str:
    """A ``detail`` as one sentence: FastAPI's 422 list becomes ``field: message; ...``.

    The location's ``body`` is left out (``properties.language``, not ``body.properties...``);
    a query or path parameter keeps its place (``query.limit``).
    """
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def refusal(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """A 4xx answer with ``error`` (and ``message`` for a 401) beside ``detail``."""
    reason = describe(detail)
    content: dict[str, Any] = {"error": reason, "detail": jsonable_encoder(detail)}
    if status == 401:
        content["message"] = reason
    return JSONResponse(content, status_code=status, headers=headers)


def _named(error: dict[str, Any], body: Any) -> dict[str, Any]:
    """One validation error whose ``loc`` is a path the client can find in what it sent.

    pydantic puts a tagged union's tag in the location (``body.conversation.echo.properties``)
    and reports a missing or unknown tag at the union (``body``); the tag is dropped and the
    tag's field (``event_type``) named instead.
    """
    loc = list(error.get("loc", ()))
    if loc[:1] == ["body"] and isinstance(body, dict):
        loc = ["body", *field_path(tuple(loc[1:]), body)]
    if error.get("type") in ("union_tag_not_found", "union_tag_invalid"):
        loc.append(str((error.get("ctx") or {}).get("discriminator", "")).strip("'"))
    return {**error, "loc": loc}


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A 422 whose ``detail`` is FastAPI's list, each error naming the field to change."""
    return refusal(422, [_named(e, exc.body) for e in exc.errors()])


def _documented_methods(app: FastAPI, path: str) -> set[str]:
    """The methods the API description gives ``path`` (empty when it is not an API path)."""
    for template, item in app.openapi()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}/]+\}", "[^/]+", template), path):
            return {method.upper() for method in item}
    return set()


async def http_error(request: Request, exc: HTTPException):
    """A refusal in Tavus's shape; a 405's ``Allow`` lists every method of the path.

    Starlette lists only those of the first route matching the path, and each method of a
    path is a route of its own here.
    """
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        methods = _documented_methods(request.app, request.url.path)
        if methods:
            headers["Allow"] = ", ".join(sorted(methods))
    if exc.status_code < 400 or exc.status_code >= 500:
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(
            request, HTTPException(exc.status_code, exc.detail, headers)
        )
    return refusal(exc.status_code, exc.detail, headers or None)


def publish_error_shape(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI description with ``error`` in FastAPI's 422 body (``HTTPValidationError``)."""
    validation = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
    if validation is not None:
        validation["properties"] = {
            "error": {
                "type": "string",
                "title": "Error",
                "description": "The field errors as one sentence: `field: message; ...`.",
            },
            **validation.get("properties", {}),
        }
        validation["required"] = ["error", "detail"]
        validation["description"] = "A refused request body or parameter (Tavus's `error` shape)."
    return schema
