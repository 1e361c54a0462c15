"""``/v2/replicas``: upload an image or short video, watch its registration, list, delete.

Registration (``presence.processors.renderer.replica.register_replica``) runs in a background
thread; its progress lands in the row (``training`` → ``ready`` or ``error`` with the reason).
Replicas still ``training`` when the service stopped are registered again at start-up.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from loguru import logger
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from presence.service.auth import owned, owner
from presence.service.db import ReplicaRow, new_id, utcnow
from presence.service.deps import db_session, paginate
from presence.service.schemas import Page, ReplicaOut, errors

router = APIRouter(prefix="/v2/replicas", tags=["replicas"], responses=errors(401))

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".mp4", ".mov", ".webm", ".mkv", ".y4m"}


def replica_out(row: ReplicaRow) -> ReplicaOut:
    """The API view of a replica row."""
    return ReplicaOut(
        replica_id=row.id,
        replica_name=row.replica_name,
        status=row.status,
        training_progress=f"{round(row.progress * 100)}/100",
        progress=row.progress,
        progress_message=row.progress_message,
        error_message=row.error_message,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def register_in_background(
    sessions: sessionmaker, replica_id: str, cache_dir: Path
) -> threading.Thread:
    """Register a replica row's source in a daemon thread, writing progress to the row."""

    def update(**fields) -> None:
        with sessions.begin() as db:
            row = db.get(ReplicaRow, replica_id)
            if row is not None:
                for key, value in fields.items():
                    setattr(row, key, value)
                row.updated_at = utcnow()

    def work() -> None:
        with sessions() as db:
            row = db.get(ReplicaRow, replica_id)
            if row is None:
                return
            source, name = row.source_path, row.replica_name
        last = [0.0]

        def progress(fraction: float, message: str) -> None:
            now = time.monotonic()
            if now - last[0] > 0.2 or fraction >= 1.0:
                last[0] = now
                update(progress=min(float(fraction), 0.99), progress_message=message[:200])

        try:
            from presence.processors.renderer.replica import register_replica

            register_replica(source, name, cache_dir, progress=progress)
        except Exception as exc:  # ReplicaError says what to change; anything else is reported too
            reason = (
                str(exc) if type(exc).__name__ == "ReplicaError" else f"{type(exc).__name__}: {exc}"
            )
            logger.info(f"replica {replica_id} failed: {reason}")
            update(status="error", error_message=reason, progress_message="failed")
            return
        update(status="ready", progress=1.0, progress_message="ready")

    thread = threading.Thread(target=work, name=f"replica-{replica_id}", daemon=True)
    thread.start()
    return thread


@router.post(
    "",
    response_model=ReplicaOut,
    summary="Create a replica from an image or video",
    responses=errors(400),
)
async def create_replica(
    request: Request,
    file: UploadFile = File(description="A portrait image or a short video with one face."),
    replica_name: str = Form("", max_length=200),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> ReplicaOut:
    """Store the upload and start registering it; poll ``GET /v2/replicas/{id}`` for status."""
    suffix = Path(file.filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["body", "file"],
                    "msg": f"file type {suffix or '(none)'} not accepted; "
                    f"upload one of {', '.join(sorted(SUFFIXES))}",
                    "type": "value_error",
                }
            ],
        )
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if not data or len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(
            422,
            detail=[
                {
                    "loc": ["body", "file"],
                    "msg": "file is empty or larger than 50 MB",
                    "type": "value_error",
                }
            ],
        )
    settings = request.app.state.settings
    rid = new_id("r")
    folder = settings.data_dir / "replicas" / rid
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"source{suffix}"
    source.write_bytes(data)
    row = ReplicaRow(
        id=rid,
        owner=who,
        replica_name=replica_name or Path(file.filename or rid).stem,
        status="training",
        progress=0.0,
        progress_message="queued",
        source_path=str(source),
    )
    db.add(row)
    db.commit()
    register_in_background(request.app.state.sessions, rid, settings.data_dir / "replica-cache")
    return replica_out(row)


@router.get("", response_model=Page[ReplicaOut], summary="List replicas")
def list_replicas(
    limit: int = Query(10, ge=1, le=100),
    page: int = Query(1, ge=1),
    who: str = Depends(owner),
    db: Session = Depends(db_session),
) -> Page[ReplicaOut]:
    """This key's replicas, newest first."""
    offset, limit = paginate(limit, page)
    query = select(ReplicaRow).where(ReplicaRow.owner == who)
    total = db.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.scalars(query.order_by(ReplicaRow.created_at.desc()).offset(offset).limit(limit))
    return Page(data=[replica_out(r) for r in rows], total_count=total or 0)


@router.get(
    "/{replica_id}",
    response_model=ReplicaOut,
    summary="Get a replica and its status",
    responses=errors(403, 404),
)
def get_replica(replica_id: str, who: str = Depends(owner), db: Session = Depends(db_session)):
    """One replica: ``status`` is ``training`` (with progress), ``ready`` or ``error``."""
    return replica_out(owned(db.get(ReplicaRow, replica_id), who, "replica", replica_id))


@router.delete(
    "/{replica_id}", status_code=204, summary="Delete a replica", responses=errors(403, 404)
)
def delete_replica(
    replica_id: str, request: Request, who: str = Depends(owner), db: Session = Depends(db_session)
) -> Response:
    """Delete a replica and its uploaded source."""
    row = owned(db.get(ReplicaRow, replica_id), who, "replica", replica_id)
    db.delete(row)
    db.commit()
    shutil.rmtree(request.app.state.settings.data_dir / "replicas" / replica_id, ignore_errors=True)
    return Response(status_code=204)
