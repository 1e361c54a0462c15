"""The service's database: SQLAlchemy 2 models and a versioned schema.

Tables::

    schema_version     one row: the schema version this database holds
    personas           persona_name, system_prompt, context, layers, documents, tools, ...
                       guardrails_id, objectives_id (tavus_fields: Tavus fields without a
                       column of their own)
    guardrails         a named set of guardrails (data: the guardrail items)
    objectives         a named set of objectives (data: the objective items)
    replicas           registration status (training|ready|error) and progress
    conversations      status, properties, shutdown reason, transcript, usage, the objectives'
                       progress, guardrails fired
    webhook_outbox     signed webhook events waiting for (or done with) delivery
    documents          knowledge-base documents: name, source, tags, status, size
    document_chunks    each document's passages (title, text), in order
    memories           what users shared, by memory store (``memory_stores`` of a conversation)
    service_instances  each running ``presence serve`` replica and its last heartbeat
    conversation_leases which replica runs each live conversation (and an end asked of it)

Every row carries ``owner``: a digest of the API key that created it (keys themselves are never
stored). Nothing here is SQLite-specific; ``database_url`` may be any SQLAlchemy URL
(``postgresql+psycopg://user:pass@host/db`` with psycopg installed).

Schema versions: ``SCHEMA_VERSION`` is what this code writes. ``init_db`` creates missing tables,
records the version, and runs ``MIGRATIONS[v]`` (SQL statements) for each version between the
database's and the code's. A database newer than the code is refused.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from presence.framework.errors import ConfigError

SCHEMA_VERSION = 7
MIGRATIONS: dict[int, list[str]] = {
    2: ["ALTER TABLE conversations ADD COLUMN conversation_url VARCHAR(2000)"],
    3: ["ALTER TABLE conversations ADD COLUMN recording_storage JSON"],
    4: [
        "ALTER TABLE personas ADD COLUMN tavus_fields JSON",
        "ALTER TABLE conversations ADD COLUMN tavus_fields JSON",
    ],
    5: [],  # documents, document_chunks, memories: new tables, made by create_all
    6: [
        "ALTER TABLE personas ADD COLUMN guardrails_id VARCHAR(40)",
        "ALTER TABLE personas ADD COLUMN objectives_id VARCHAR(40)",
        "ALTER TABLE conversations ADD COLUMN objectives JSON",
        "ALTER TABLE conversations ADD COLUMN guardrail_events JSON",
    ],
    7: [
        "ALTER TABLE documents ADD COLUMN crawl JSON",
        "ALTER TABLE documents ADD COLUMN crawled_urls JSON",
        "ALTER TABLE documents ADD COLUMN last_crawled_at TIMESTAMP WITH TIME ZONE",
    ],
}
"""SQL to go from version ``v - 1`` to ``v``, keyed by ``v`` (version 1 is the first)."""


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """An unguessable id such as ``c3f9a...`` (the prefix tells the kind: p, r, c, d, m)."""
    return prefix + secrets.token_hex(12)


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SchemaVersion(Base):
    """The schema version of this database (one row)."""

    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PersonaRow(Base):
    """A persona created through the API."""

    __tablename__ = "personas"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    persona_name: Mapped[str] = mapped_column(String(200))
    system_prompt: Mapped[str] = mapped_column(Text, default="")
    context: Mapped[str] = mapped_column(Text, default="")
    greeting: Mapped[str] = mapped_column(Text, default="")
    default_replica_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    pipeline: Mapped[str | None] = mapped_column(String(500), nullable=True)
    layers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    documents: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tavus_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Tavus fields with no column of their own (pipeline_mode, document_ids, document_tags)."""
    guardrails_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    objectives_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReplicaRow(Base):
    """A replica (face) registered from an uploaded image or video."""

    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    replica_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="training")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str] = mapped_column(String(200), default="queued")
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConversationRow(Base):
    """A conversation: its request, its lifecycle and what it produced."""

    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    persona_id: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)
    replica_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    conversation_name: Mapped[str] = mapped_column(String(200), default="")
    conversational_context: Mapped[str] = mapped_column(Text, default="")
    custom_greeting: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    shutdown_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failed_stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    transcript: Mapped[list[Any]] = mapped_column(JSON, default=list)
    perception_analysis: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    recording_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    recording_storage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    conversation_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    tavus_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Tavus request fields with no column of their own, and the request's ``warnings``."""
    objectives: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    """Each objective's ``{objective_name, status, output_variables, completed_turn}``."""
    guardrail_events: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    """Each guardrail firing: ``{guardrail_name, side, matched, at}``."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GuardrailsRow(Base):
    """A named set of guardrails (Tavus's ``guardrails_id``); ``data`` holds the items."""

    __tablename__ = "guardrails"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ObjectivesRow(Base):
    """A named set of objectives (Tavus's ``objectives_id``); ``data`` holds the items."""

    __tablename__ = "objectives"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WebhookEvent(Base):
    """One webhook in the durable outbox, written in the same transaction as its state change.

    ``body`` is the exact JSON sent (the signature covers these bytes). ``status`` is ``pending``
    until a 2xx answer (``delivered``) or until it is older than the retry horizon (``failed``).
    """

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    event_type: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)


class DocumentRow(Base):
    """A knowledge-base document (Tavus's ``/v2/documents``); its text lives in its chunks.

    ``status``: ``processing`` (a ``document_url`` being fetched), ``ready`` or ``error``.
    """

    __tablename__ = "documents"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    document_name: Mapped[str] = mapped_column(String(200))
    document_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    file_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    content_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    callback_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="processing", index=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    original_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    crawl: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # {depth, max_pages}
    crawled_urls: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    last_crawled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DocumentChunkRow(Base):
    """One passage of a document: the nearest heading and a paragraph-sized text."""

    __tablename__ = "document_chunks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(String(40), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)


class MemoryRow(Base):
    """One thing a user shared (``kind``: name, preference, work, fact, ...), in a memory store."""

    __tablename__ = "memories"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    memory_store: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="fact")
    content: Mapped[str] = mapped_column(Text)
    conversation_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str] = mapped_column(String(16), default="offline")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_memories_store", "owner", "memory_store", "created_at"),)


class ServiceInstance(Base):
    """A ``presence serve`` replica: written at start and on every heartbeat."""

    __tablename__ = "service_instances"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConversationLease(Base):
    """The replica running a live conversation; ``end_reason`` asks it to end the conversation."""

    __tablename__ = "conversation_leases"
    conversation_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(200), index=True)
    end_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as aware UTC (some backends return naive datetimes for aware columns)."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def default_database_url(data_dir: Path) -> str:
    """The SQLite file in ``data_dir`` used when no database URL is given."""
    return f"sqlite:///{(Path(data_dir) / 'presence.db').resolve()}"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get WAL and a busy timeout for the worker threads."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:  # bad URL or missing driver
        raise ConfigError(
            f"cannot use database URL ({exc}); give a SQLAlchemy URL such as "
            "sqlite:///presence.db or postgresql+psycopg://user:pass@host/db",
            field="--database-url",
        ) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


_ADD_COLUMN = re.compile(r"^ALTER TABLE (\w+) ADD COLUMN (\w+)", re.IGNORECASE)


def _column_exists(db: Any, statement: str) -> bool:
    """Whether ``statement`` adds a column the table already has (created by this version)."""
    match = _ADD_COLUMN.match(statement)
    if match is None:
        return False
    table, column = match.groups()
    return column in {c["name"] for c in inspect(db.connection()).get_columns(table)}


def init_db(engine: Engine) -> sessionmaker:
    """Create or upgrade the schema and return a session factory.

    Raises:
        ConfigError: The database was written by a newer presence (its schema version is higher).
    """
    Base.metadata.create_all(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as db:
        current = db.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()))
        if current is None:
            db.add(SchemaVersion(version=SCHEMA_VERSION))
            return factory
        if current > SCHEMA_VERSION:
            raise ConfigError(
                f"the database has schema version {current} but this presence knows only up to "
                f"{SCHEMA_VERSION}; upgrade presence or point --database-url elsewhere",
                field="--database-url",
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS.get(version, []):
                if not _column_exists(db, statement):
                    db.execute(text(statement))
            db.add(SchemaVersion(version=version))
    return factory
