"""Keeping documents: their chunks and original in storage, ``document_url`` fetches, webhooks.

``save_read_document`` stores what ``presence.service.documents.read_document`` made of a
document (its chunks in the database, the original under ``<data_dir>/documents/<id>/``) and
queues ``document.ready``/``document.error`` for its ``callback_url``. ``start_fetch`` fetches a
``document_url`` in the background (``httpx``, redirects followed, ``MAX_BYTES`` at most,
``FETCH_TIMEOUT_S``), or crawls the site from it when the document has a ``crawl`` config
(``presence.service.crawl``), and stores it the same way; ``resume_fetches`` restarts the fetches a
stopped service left ``processing``.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
from loguru import logger
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from presence.service.crawl import CrawlConfig, crawl_site, download
from presence.service.db import DocumentChunkRow, DocumentRow, WebhookEvent, utcnow
from presence.service.documents import MAX_BYTES, Chunk, DocumentError, read_document

FETCH_TIMEOUT_S = 30.0
_tasks: set[asyncio.Task] = set()


def documents_dir(data_dir: Path, document_id: str) -> Path:
    """Folder of a document's original file."""
    return Path(data_dir) / "documents" / document_id


def emit(db: Session, row: DocumentRow) -> None:
    """Queue ``document.ready``/``document.error`` for the document's ``callback_url``."""
    if not row.callback_url:
        return
    now = utcnow()
    event_type = f"document.{row.status}"
    envelope = {
        "properties": {
            "status": row.status, "document_name": row.document_name,
            "chunk_count": row.chunk_count, "error_message": row.error_message,
        },
        "document_id": row.id, "webhook_url": row.callback_url, "event_type": event_type,
        "message_type": "document", "timestamp": now.isoformat(),
    }  # fmt: skip
    db.add(
        WebhookEvent(
            conversation_id=row.id, url=row.callback_url, event_type=event_type,
            body=json.dumps(envelope, separators=(",", ":"), ensure_ascii=False),
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        )
    )  # fmt: skip


def store_chunks(db: Session, row: DocumentRow, kind: str, chunks: list[Chunk]) -> None:
    """Replace the document's chunks with ``chunks`` and mark it ready (in ``db``'s transaction)."""
    db.execute(delete(DocumentChunkRow).where(DocumentChunkRow.document_id == row.id))
    db.add_all(
        DocumentChunkRow(document_id=row.id, position=i, title=c.title, text=c.text)
        for i, c in enumerate(chunks)
    )
    row.content_type, row.chunk_count, row.status, row.error_message = (
        kind,
        len(chunks),
        "ready",
        None,
    )
    row.updated_at = utcnow()


def save_original(folder: Path, data: bytes, file_name: str | None) -> str:
    """Write the original bytes as ``original<ext>`` in ``folder``; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = PurePosixPath(file_name or "").suffix.lower()[:10]
    if not re.fullmatch(r"\.[a-z0-9]+", suffix):  # an upload's name is the client's text
        suffix = ".bin"
    path = folder / f"original{suffix}"
    path.write_bytes(data)
    return str(path)


def start_fetch(app: Any, document_id: str) -> None:
    """Fetch and read a ``document_url`` document in the background."""
    task = asyncio.get_running_loop().create_task(_fetch(app, document_id))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _fetch(app: Any, document_id: str) -> None:
    sessions: sessionmaker = app.state.sessions
    with sessions() as db:
        row = db.get(DocumentRow, document_id)
        url, name = (row.document_url, row.document_name) if row else (None, "")
        crawl = CrawlConfig.model_validate(row.crawl) if row and row.crawl is not None else None
    if not url:
        return
    crawled: list[str] = []
    try:
        async with httpx.AsyncClient(follow_redirects=True, timeout=FETCH_TIMEOUT_S) as client:
            if crawl is None:
                data, ctype, _ = await download(client, url, MAX_BYTES)
                path_name = PurePosixPath(urlsplit(url).path).name or None
            else:
                text, crawled = await crawl_site(client, url, crawl, max_bytes=MAX_BYTES)
                data, ctype, path_name = text.encode(), "text/markdown", "site.md"
        kind, chunks = await asyncio.to_thread(
            read_document, bytes(data), name=name, file_name=path_name, content_type=ctype
        )
        error = None
    except (httpx.HTTPError, httpx.InvalidURL, DocumentError) as exc:
        error, data, path_name = f"cannot read {url}: {exc}", b"", None
        logger.warning(f"document {document_id}: {error}")
    except Exception as exc:  # a reader's or client's own bug must still end "processing"
        error, data, path_name = f"cannot read {url}: {type(exc).__name__}: {exc}", b"", None
        logger.exception(f"document {document_id}: {error}")

    def write() -> None:
        with sessions.begin() as db:
            row = db.get(DocumentRow, document_id)
            if row is None:  # deleted meanwhile
                return
            if crawl is not None:
                row.crawled_urls, row.last_crawled_at = crawled, utcnow()
            if error is None:
                folder = documents_dir(app.state.settings.data_dir, document_id)
                row.original_path = save_original(folder, bytes(data), path_name)
                row.size_bytes = len(data)
                store_chunks(db, row, kind, chunks)
            else:
                row.status, row.error_message, row.updated_at = "error", error, utcnow()
            emit(db, row)

    await asyncio.to_thread(write)
    outbox = getattr(app.state, "outbox", None)
    if outbox is not None:
        outbox.wake()


def resume_fetches(app: Any) -> None:
    """Fetch again the URL documents a stopped service left ``processing``."""
    with app.state.sessions() as db:
        ids = db.scalars(select(DocumentRow.id).where(DocumentRow.status == "processing")).all()
    for did in ids:
        start_fetch(app, did)
