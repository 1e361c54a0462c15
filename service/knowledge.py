"""A conversation's knowledge base: the persona's own documents, the documents it references, memories.

The pipeline's retrieval (``presence.processors.llm.engines.retrieval``: the offline responder's
index and a cloud LLM's per-turn grounding) reads a persona's ``knowledge_base`` folder of
markdown. A conversation that references documents (``document_ids``/``document_tags`` on the
persona or in the request) or remembers a user (``memory_stores``) gets a folder of its own
under ``<data_dir>/conversations/<id>/knowledge/``, written when it is created::

    persona.md        the persona's own ``documents`` (or, with none and no documents, the
                      pipeline persona's knowledge base), copied
    d<id>.md          each ready document, rendered from its chunks (one passage per chunk)
    memories.md       what the user shared before, as "Your name is Anna." passages

Which documents: every id in the request must exist and belong to the key (else 422); ids the
persona stored that were deleted since, and documents still processing or failed, are left out
with a warning; a tag takes every ready document of the key that carries it.

``document_retrieval_strategy`` (Tavus's speed/balanced/quality): the offline responder answers
from keywords alone (no embeddings) when documents are attached, unless ``quality`` turns its
semantic re-ranker on (or the persona's ``layers.llm.semantic`` says otherwise); a cloud LLM is
grounded with 2, 3 or 5 passages a turn.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from presence.service.db import DocumentChunkRow, DocumentRow, PersonaRow
from presence.service.documents import render_markdown
from presence.service.settings import ServiceSettings

GROUNDING = {"speed": 2, "balanced": 3, "quality": 5}


class UnknownDocuments(LookupError):
    """Document ids in a request that do not exist for this key."""

    def __init__(self, ids: list[str]):
        self.ids = ids
        super().__init__(
            f"no document {', '.join(ids)} for this API key; create it with POST /v2/documents "
            "or list yours with GET /v2/documents"
        )


@dataclass
class Knowledge:
    """What a conversation knows: its folder (``None``: the pipeline's own), and why."""

    folder: Path | None = None
    document_ids: list[str] = field(default_factory=list)
    chunks: int = 0
    warnings: list[str] = field(default_factory=list)


def conversation_dir(settings: ServiceSettings, conversation_id: str) -> Path:
    """Folder of a conversation's files (its knowledge base)."""
    return settings.data_dir / "conversations" / conversation_id


def check_document_ids(db: Session, owner: str, ids: list[str] | None) -> None:
    """Raise ``UnknownDocuments`` for ids in a request that this key has no document for."""
    if not ids:
        return
    found = set(
        db.scalars(
            select(DocumentRow.id).where(DocumentRow.owner == owner, DocumentRow.id.in_(ids))
        )
    )
    missing = [i for i in dict.fromkeys(ids) if i not in found]
    if missing:
        raise UnknownDocuments(missing)


def _tagged(db: Session, owner: str, tags: list[str]) -> list[DocumentRow]:
    if not tags:
        return []
    rows = db.scalars(select(DocumentRow).where(DocumentRow.owner == owner)).all()
    wanted = set(tags)
    return [r for r in rows if wanted.intersection(r.tags or [])]


def select_documents(
    db: Session, owner: str, ids: list[str], tags: list[str]
) -> tuple[list[DocumentRow], list[str]]:
    """The ready documents named by ``ids`` and ``tags`` (in that order), and the warnings."""
    warnings: list[str] = []
    rows = {r.id: r for r in db.scalars(select(DocumentRow).where(DocumentRow.id.in_(ids)))}
    chosen: dict[str, DocumentRow] = {}
    for did in dict.fromkeys(ids):
        row = rows.get(did)
        if row is None or row.owner != owner:
            warnings.append(f"document {did} no longer exists; left out of the knowledge base")
        elif row.status != "ready":
            warnings.append(
                f"document {did} is {row.status}, not ready; left out of this conversation"
            )
        else:
            chosen[did] = row
    for row in _tagged(db, owner, tags):
        if row.id not in chosen and row.status == "ready":
            chosen[row.id] = row
    return list(chosen.values()), warnings


def _pipeline_knowledge(pipeline: Path) -> Path | None:
    """The knowledge folder of a pipeline file's persona (``None`` when it has none)."""
    from presence.framework.persona import load_persona

    try:
        raw = yaml.safe_load(pipeline.read_text()) or {}
        persona = raw.get("persona")
        if not isinstance(persona, str):
            return None
        return load_persona((pipeline.parent / persona).resolve()).knowledge_base
    except Exception:  # an invalid pipeline is reported when the session loads it
        return None


def _copy_markdown(source: Path | None, target: Path) -> None:
    if source is None or not source.exists():
        return
    files = sorted(source.rglob("*.md")) if source.is_dir() else [source]
    parts = [f.read_text(encoding="utf-8") for f in files if f.is_file()]
    if parts:
        target.write_text("\n\n".join(parts), encoding="utf-8")


def _memory_markdown(memories: list[str]) -> str:
    from presence.service.memories import second_person

    lines = ["## What I remember about you", ""]
    lines += [f"{second_person(m)}\n" for m in memories]
    return "\n".join(lines)


def build_knowledge(
    db: Session,
    settings: ServiceSettings,
    *,
    conversation_id: str,
    owner: str,
    persona: PersonaRow | None,
    pipeline: Path,
    request: dict[str, Any],
    memories: list[str],
    own_knowledge: Path | None,
) -> Knowledge:
    """Write the conversation's knowledge folder when it needs one (see the module docstring).

    Args:
        db: The request's database session.
        settings: Service settings (``data_dir``).
        conversation_id: The new conversation.
        owner: The API key's owner id.
        persona: The persona, if any.
        pipeline: The pipeline file the conversation runs.
        request: The request's ``document_ids``/``document_tags`` (checked already).
        memories: The memory store's memories, oldest first.
        own_knowledge: The persona's own documents folder, when it has documents.
    """
    tavus = (persona.tavus_fields or {}) if persona is not None else {}
    ids = [*(tavus.get("document_ids") or []), *(request.get("document_ids") or [])]
    tags = [*(tavus.get("document_tags") or []), *(request.get("document_tags") or [])]
    documents, warnings = select_documents(db, owner, ids, tags)
    if tags and not any(set(tags).intersection(d.tags or []) for d in documents):
        warnings.append(f"no ready document carries the tags {', '.join(dict.fromkeys(tags))}")
    if not documents and not memories:
        return Knowledge(warnings=warnings)
    folder = conversation_dir(settings, conversation_id) / "knowledge"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    base = own_knowledge if own_knowledge is not None else None
    if base is None and not documents:
        base = _pipeline_knowledge(pipeline)
    _copy_markdown(base, folder / "persona.md")
    total = 0
    for doc in documents:
        rows = db.execute(
            select(DocumentChunkRow.title, DocumentChunkRow.text)
            .where(DocumentChunkRow.document_id == doc.id)
            .order_by(DocumentChunkRow.position)
        ).all()
        total += len(rows)
        (folder / f"{doc.id}.md").write_text(render_markdown(list(rows)), encoding="utf-8")
    if memories:
        (folder / "memories.md").write_text(_memory_markdown(memories), encoding="utf-8")
    return Knowledge(folder, [d.id for d in documents], total, warnings)


def retrieval_overrides(
    provider: str | None, strategy: str | None, has_documents: bool, layers: dict[str, Any]
) -> list[str]:
    """``--set`` overrides for ``document_retrieval_strategy`` on the conversation's LLM."""
    llm_layer = (layers or {}).get("llm") or {}
    if provider == "knowledge-base" and has_documents and "semantic" not in llm_layer:
        return [f"stages.llm.semantic={'true' if strategy == 'quality' else 'false'}"]
    if provider in ("openai", "anthropic") and strategy and "grounding_passages" not in llm_layer:
        return [f"stages.llm.grounding_passages={GROUNDING[strategy]}"]
    return []
