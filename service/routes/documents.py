"""``/v2/documents``: the knowledge base (Tavus's Documents API, plus uploads and inline text).

``POST`` takes Tavus's JSON (``document_url``, ``document_name``, ``tags``, ``callback_url``,
``properties``), or ``text`` instead of a URL, or a ``multipart/form-data`` upload (``file``
with the same fields as form fields; ``tags`` comma-separated). An upload or a text is read at
once: the answer is the ready document, or 413/415/422 saying what is wrong (400 for a body
that is neither JSON nor a form). A URL is fetched in the background (``status: processing``,
then ``ready`` or ``error``), as Tavus does; with ``crawl: {depth, max_pages}`` the site's linked
pages are read into the same document (``presence.service.crawl``); a ``callback_url`` gets ``document.ready`` or
``document.error`` (signed like every webhook). Originals are kept under
``<data_dir>/documents/<id>/``; the chunks are in the database.

Tavus documentation followed (read 2026): https://docs.tavus.io/api-reference/documents/
create-document, get-document, get-documents (``limit``, ``page`` from 0, ``sort``, ``status``,
``name_or_uuid``, ``tags``), patch-document (``document_name``, ``tags``), delete-document.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from presence.service.auth import owned, owner
from presence.service.crawl import CrawlConfig
from presence.service.db import DocumentChunkRow, DocumentRow, new_id, utcnow
from presence.service.deps import db_session
from presence.service.document_store import (
    documents_dir,
    emit,
    save_original,
    start_fetch,
    store_chunks,
)
from presence.service.documents import MAX_BYTES, SUPPORTED, DocumentError, read_document
from presence.service.schemas import Page, UtcDateTime, errors

router = APIRouter(prefix="/v2/documents", tags=["documents"], responses=errors(401))

Tag = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]


class DocumentCreate(BaseModel):
    """``POST /v2/documents`` as JSON: a URL to fetch (Tavus) or the text itself (presence)."""

    model_config = ConfigDict(extra="forbid")
    document_url: AnyHttpUrl | None = None
    text: str | None = Field(
        default=None,
        max_length=MAX_BYTES,
        pattern=r"\S",
        description="The document's text (markdown, plain text or HTML) inline.",
    )
    document_name: str | None = Field(default=None, min_length=1, max_length=200)
    callback_url: AnyHttpUrl | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    properties: dict[str, Any] = Field(default_factory=dict)
    crawl: CrawlConfig | None = Field(
        default=None,
        description="With a website's document_url: follow its links (same site) up to `depth` "
        "away and `max_pages` pages, all read into one document.",
    )


class DocumentPatch(BaseModel):
    """``PATCH /v2/documents/{id}``: a new name and/or tags (tags replace the old ones)."""

    model_config = ConfigDict(extra="forbid")
    document_name: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] | None = Field(default=None, max_length=50)


class DocumentOut(BaseModel):
    """A document of the knowledge base."""

    document_id: str
    document_name: str
    document_url: str | None
    status: Literal["processing", "ready", "error"]
    progress: str | None = None
    error_message: str | None
    callback_url: str | None
    tags: list[str]
    properties: dict[str, Any]
    file_name: str | None
    content_type: str | None = Field(description="What was read: markdown, text, html, pdf, ...")
    size_bytes: int
    chunk_count: int = Field(description="Passages the document was split into.")
    crawl_config: CrawlConfig | None = None
    crawled_urls: list[str] | None = Field(default=None, description="Pages read, in order.")
    last_crawled_at: UtcDateTime | None = None
    crawl_count: int = Field(default=0, description="Crawls made of the site (0 or 1).")
    created_at: UtcDateTime
    updated_at: UtcDateTime


def document_out(row: DocumentRow) -> DocumentOut:
    """The API view of a document row."""
    return DocumentOut(
        document_id=row.id, document_name=row.document_name, document_url=row.document_url,
        status=row.status, error_message=row.error_message, callback_url=row.callback_url,
        tags=row.tags or [], properties=row.properties or {}, file_name=row.file_name,
        content_type=row.content_type, size_bytes=row.size_bytes, chunk_count=row.chunk_count,
        crawl_config=row.crawl, crawled_urls=row.crawled_urls, last_crawled_at=row.last_crawled_at,
        crawl_count=int(row.last_crawled_at is not None),
        created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _bad(field: str, message: str, status: int = 422) -> HTTPException:
    if status != 422:
        return HTTPException(status, detail=f"{field}: {message}")
    return HTTPException(422, detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}])  # fmt: skip


def _tags(value: Any) -> list[str]:
    tags = [t.strip() for t in value.split(",")] if isinstance(value, str) else list(value or [])
    tags = [str(t) for t in tags if str(t).strip()]
    if any(len(t) > 100 for t in tags) or len(tags) > 50:
        raise _bad("tags", "at most 50 tags of at most 100 characters each")
    return list(dict.fromkeys(tags))


def _documents_dir(request: Request, document_id: str) -> Path:
    return documents_dir(request.app.state.settings.data_dir, document_id)


async def _read(upload) -> bytes:
    data = await upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _bad("file", f"the file is over the {MAX_BYTES // 1_000_000} MB limit", 413)
    return data


async def _parse(request: Request) -> tuple[DocumentCreate, bytes | None, str | None]:
    """The request's fields, and an uploaded file's bytes and name."""
    ctype = request.headers.get("content-type", "")
    data = file_name = None
    if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form(max_files=2, max_fields=20)  # a second file is named below
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if (key == "file") != hasattr(value, "read"):
                raise _bad(key, "must be a file" if key == "file" else "must be a text field")
            if key == "file":
                if file_name is not None:
                    raise _bad("file", "upload one file per document")
                data, file_name = await _read(value), value.filename or "upload"
            elif key in ("properties", "crawl"):
                try:
                    fields[key] = json.loads(value)
                except ValueError:
                    raise _bad(key, "must be a JSON object") from None
            elif key == "tags":
                fields["tags"] = [*fields.get("tags", []), *_tags(value)]
            else:
                fields[key] = value
        raw: Any = fields
    else:
        try:
            raw = await request.json()
        except ValueError:  # not JSON, or not UTF-8
            raise HTTPException(
                400, detail="send a JSON object, or a multipart/form-data upload with a `file`"
            ) from None
    try:
        body = DocumentCreate.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None
    body.tags = _tags(body.tags)
    return body, data, file_name


def _default_name(body: DocumentCreate, file_name: str | None) -> str:
    if body.document_name:
        return body.document_name
    if file_name:
        return PurePosixPath(file_name).stem[:200] or file_name[:200]
    if body.document_url:
        parts = urlsplit(str(body.document_url))
        return (PurePosixPath(parts.path).stem or parts.hostname or "Document")[:200]
    return f"Document {utcnow():%Y-%m-%d %H:%M}"


@router.post(
    "",
    response_model=DocumentOut,
    summary="Create a document",
    responses={
        **errors(400, 413, 415),
        422: {
            "description": "No source, two sources, an invalid field, or a document without "
            "readable text: each error's `loc` names the field.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        },
    },
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        **DocumentCreate.model_json_schema(),
                        "oneOf": [{"required": ["document_url"]}, {"required": ["text"]}],
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": f"{SUPPORTED}; at most 50 MB.",
                            },
                            "document_name": {"type": "string", "minLength": 1, "maxLength": 200},
                            "tags": {"type": "string", "description": "Comma-separated."},
                            "callback_url": {"type": "string", "format": "uri"},
                            "properties": {"type": "string", "description": "A JSON object."},
                        },
                        "required": ["file"],
                        "additionalProperties": False,
                    }
                },
            },
            "required": True,
        }
    },
)
async def create_document(
    request: Request, who: str = Depends(owner), db: Session = Depends(db_session)
) -> DocumentOut:
    """Add a document: an upload or text is ready in the answer; a URL is fetched in the background."""
    body, data, file_name = await _parse(request)
    if file_name is None and body.text is not None:
        data = body.text.encode("utf-8")
    given = {"document_url": body.document_url, "file": file_name, "text": body.text}
    sources = [name for name, value in given.items() if value is not None]
    if len(sources) != 1:
        raise _bad(
            "document_url",
            "give exactly one of document_url, a multipart `file` or `text`"
            + (f" (got {', '.join(sources)})" if sources else ""),
        )
    if body.crawl is not None and body.document_url is None:
        raise _bad("crawl", "crawl follows a website's links: it needs a document_url")
    row = DocumentRow(
        id=new_id("d"), owner=who, document_name=_default_name(body, file_name),
        document_url=str(body.document_url) if body.document_url else None, file_name=file_name,
        callback_url=str(body.callback_url) if body.callback_url else None, tags=body.tags,
        properties=body.properties, status="processing", size_bytes=len(data or b""),
        crawl=body.crawl.model_dump() if body.crawl else None,
        created_at=utcnow(), updated_at=utcnow(),
    )  # fmt: skip
    if data is not None:
        try:
            kind, chunks = await asyncio.to_thread(
                read_document, data, name=row.document_name, file_name=file_name
            )
        except DocumentError as exc:
            raise _bad("file" if file_name else "text", str(exc), exc.status) from None
        suffix = {"markdown": "md", "text": "txt"}.get(kind, kind)
        original = file_name or f"text.{suffix}"
        row.original_path = save_original(_documents_dir(request, row.id), data, original)
        db.add(row)
        store_chunks(db, row, kind, chunks)
        emit(db, row)
        db.commit()
        _wake(request)
        return document_out(row)
    db.add(row)
    db.commit()
    start_fetch(request.app, row.id)
    return document_out(row)


def _wake(request: Request) -> None:
    outbox = getattr(request.app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


@router.get("", response_model=Page[DocumentOut], summary="List documents")
def list_documents(
    limit: int = Query(10, ge=1, le=100),
    page: int = Query(
        1, ge=0, description="1-based like the other lists; 0 (Tavus's first page) is page 1 too."
    ),
    sort: Literal["ascending", "descending"] = Query("ascending", description="By creation."),
    status: Literal["processing", "ready", "error"] | None = None,
    name_or_uuid: str | None = Query(None, description="Part of the name, or the document id."),
    tags: str | None = Query(None, description="Comma-separated; a document with any of them."),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[DocumentOut]:
    """This key's documents, filtered and paged."""
    query = select(DocumentRow).where(DocumentRow.owner == who)
    if status:
        query = query.where(DocumentRow.status == status)
    if name_or_uuid:
        pattern = f"%{name_or_uuid.replace('%', '').replace('_', '')}%"
        query = query.where(
            or_(DocumentRow.id == name_or_uuid, DocumentRow.document_name.ilike(pattern))
        )
    order = DocumentRow.created_at.asc() if sort == "ascending" else DocumentRow.created_at.desc()
    rows = db.scalars(query.order_by(order, DocumentRow.id)).all()
    if tags:
        wanted = set(_tags(tags))
        rows = [r for r in rows if wanted.intersection(r.tags or [])]
    start = (max(page, 1) - 1) * limit
    return Page(data=[document_out(r) for r in rows[start : start + limit]], total_count=len(rows))


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    summary="Get a document",
    responses=errors(403, 404),
)
def get_document(
    document_id: str, who: str = Depends(owner), db: Session = Depends(db_session)
) -> DocumentOut:
    """One document and its processing status."""
    return document_out(owned(db.get(DocumentRow, document_id), who, "document", document_id))


@router.patch(
    "/{document_id}",
    response_model=DocumentOut,
    summary="Update a document",
    responses=errors(400, 403, 404),
)
def patch_document(
    document_id: str, body: DocumentPatch, who: str = Depends(owner), db: Session = Depends(db_session)
) -> DocumentOut:  # fmt: skip
    """Rename a document or replace its tags (conversations started later see the change)."""
    row = owned(db.get(DocumentRow, document_id), who, "document", document_id)
    if body.document_name is not None:
        row.document_name = body.document_name
    if body.tags is not None:
        row.tags = _tags(body.tags)
    row.updated_at = utcnow()
    db.commit()
    return document_out(row)


@router.delete(
    "/{document_id}", status_code=204, summary="Delete a document", responses=errors(403, 404)
)
def delete_document(
    document_id: str, request: Request, who: str = Depends(owner), db: Session = Depends(db_session)
) -> Response:  # fmt: skip
    """Delete a document, its chunks and its original file.

    Live conversations keep what they loaded; personas that name it skip it from then on.
    """
    row = owned(db.get(DocumentRow, document_id), who, "document", document_id)
    db.execute(delete(DocumentChunkRow).where(DocumentChunkRow.document_id == document_id))
    db.delete(row)
    db.commit()
    shutil.rmtree(_documents_dir(request, document_id), ignore_errors=True)
    return Response(status_code=204)
