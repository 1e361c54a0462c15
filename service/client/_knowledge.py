"""Operations on documents, memories, guardrails and objectives (each written once)."""

from __future__ import annotations

import json
from typing import Any, Literal

from presence.service.client._conversations import Patch
from presence.service.client._core import Call, Op, Upload, body, operation, upload
from presence.service.client._endpoints import ENDPOINTS
from presence.service.intelligence import (
    GuardrailItem,
    GuardrailsCreate,
    GuardrailsOut,
    GuardrailsPatch,
    ObjectiveItem,
    ObjectivesCreate,
    ObjectivesOut,
    ObjectivesPatch,
)
from presence.service.routes.documents import DocumentCreate, DocumentOut, DocumentPatch
from presence.service.routes.memories import MemoryOut, StoreOut
from presence.service.schemas import Page

DocumentStatus = Literal["processing", "ready", "error"]
MemoryKind = Literal["name", "preference", "work", "location", "family", "fact"]


class KnowledgeOperations:
    """Documents, memories, guardrails and objectives."""

    # documents

    @operation
    def create_document(
        self, document: DocumentCreate | None = None, **fields: Any
    ) -> Op[DocumentOut]:
        """Add a document from ``text`` (ready in the answer) or a ``document_url`` (fetched)."""
        return (yield Call("create_document", json=body(DocumentCreate, document, fields)))

    @operation
    def upload_document(
        self,
        file: Upload,
        *,
        file_name: str | None = None,
        document_name: str | None = None,
        tags: list[str] | None = None,
        callback_url: str | None = None,
        properties: dict[str, Any] | None = None,
    ) -> Op[DocumentOut]:
        """Upload a file (markdown, text, HTML, PDF, DOCX, CSV); the answer is the ready document.

        Args:
            file: A path, the file's bytes, or a binary file object.
            file_name: The name sent with bytes or a file object (its suffix tells the kind).
            document_name: Display name (default: the file's name).
            tags: Tags for ``document_tags`` to select it by.
            callback_url: Gets ``document.ready`` (or ``document.error``).
            properties: Your own data kept with it.
        """
        form = {"document_name": document_name, "callback_url": callback_url}
        form = {k: v for k, v in form.items() if v is not None}
        if tags:
            form["tags"] = ",".join(tags)
        if properties is not None:
            form["properties"] = json.dumps(properties)
        return (yield Call("upload_document", form=form, file=upload(file, file_name)))

    @operation
    def list_documents(
        self,
        *,
        limit: int = 10,
        page: int = 1,
        sort: Literal["ascending", "descending"] = "ascending",
        status: DocumentStatus | None = None,
        name_or_uuid: str | None = None,
        tags: list[str] | None = None,
    ) -> Op[Page[DocumentOut]]:
        """This key's documents, oldest first by default; ``tags`` matches any of them."""
        query = dict(
            limit=limit, page=page, sort=sort, status=status, name_or_uuid=name_or_uuid,
            tags=tags or None,
        )  # fmt: skip
        return (yield Call("list_documents", query=query))

    @operation
    def get_document(self, document_id: str) -> Op[DocumentOut]:
        """One document and its processing status."""
        return (yield Call("get_document", {"document_id": document_id}))

    @operation
    def patch_document(
        self, document_id: str, patch: DocumentPatch | None = None, **fields: Any
    ) -> Op[DocumentOut]:
        """Rename a document or replace its tags (``document_name``, ``tags``)."""
        json_body = body(DocumentPatch, patch, fields)
        return (yield Call("patch_document", {"document_id": document_id}, json=json_body))

    @operation
    def delete_document(self, document_id: str) -> Op[None]:
        """Delete a document, its passages and its original file."""
        yield Call("delete_document", {"document_id": document_id})

    # memories

    @operation
    def list_memory_stores(self, *, limit: int = 10, page: int = 1) -> Op[Page[StoreOut]]:
        """This key's memory stores and their sizes, most recently updated first."""
        return (yield Call("list_memory_stores", query={"limit": limit, "page": page}))

    @operation
    def list_memories(
        self, memory_store: str, *, limit: int = 50, page: int = 1
    ) -> Op[Page[MemoryOut]]:
        """A store's memories, newest first (an unknown store is empty)."""
        ids, query = {"memory_store": memory_store}, {"limit": limit, "page": page}
        return (yield Call("list_memories", ids, query=query))

    @operation
    def add_memory(
        self, memory_store: str, content: str, *, kind: MemoryKind = "fact"
    ) -> Op[MemoryOut]:
        """Add a memory by hand (a ``name`` replaces the store's old one)."""
        json_body = body(ENDPOINTS["add_memory"].body, {"content": content, "kind": kind}, {})
        return (yield Call("add_memory", {"memory_store": memory_store}, json=json_body))

    @operation
    def delete_memory(self, memory_store: str, memory_id: str) -> Op[None]:
        """Forget one memory."""
        yield Call("delete_memory", {"memory_store": memory_store, "memory_id": memory_id})

    @operation
    def delete_memory_store(self, memory_store: str) -> Op[None]:
        """Forget every memory of a store (the user's right to be forgotten)."""
        yield Call("delete_memory_store", {"memory_store": memory_store})

    # guardrails

    @operation
    def create_guardrails(
        self, guardrails: GuardrailsCreate | GuardrailItem | None = None, **fields: Any
    ) -> Op[GuardrailsOut]:
        """Create a set ``{name, data: [...]}`` or, with ``guardrail_name``, one guardrail."""
        return (
            yield Call("create_guardrails", json=_set_body("create_guardrails", guardrails, fields))
        )

    @operation
    def list_guardrails(self, *, limit: int = 10, page: int = 1) -> Op[Page[GuardrailsOut]]:
        """This key's guardrail sets, newest first."""
        return (yield Call("list_guardrails", query={"limit": limit, "page": page}))

    @operation
    def get_guardrails(self, set_id: str) -> Op[GuardrailsOut]:
        """One guardrail set, with what presence cannot enforce in ``warnings``."""
        return (yield Call("get_guardrails", {"set_id": set_id}))

    @operation
    def patch_guardrails(
        self, set_id: str, patch: GuardrailsPatch | Patch | None = None, **fields: Any
    ) -> Op[GuardrailsOut]:
        """Change a set: a ``GuardrailsPatch`` (or ``name``/``data``) or a JSON Patch list."""
        ids = {"set_id": set_id}
        json_body = body(ENDPOINTS["patch_guardrails"].body, patch, fields)
        changed = yield Call("patch_guardrails", ids, json=json_body)
        return changed if changed is not None else (yield Call("get_guardrails", ids))

    @operation
    def delete_guardrails(self, set_id: str) -> Op[None]:
        """Delete a set (refused with 409 while a persona uses it)."""
        yield Call("delete_guardrails", {"set_id": set_id})

    # objectives

    @operation
    def create_objectives(
        self, objectives: ObjectivesCreate | list[ObjectiveItem] | None = None, **fields: Any
    ) -> Op[ObjectivesOut]:
        """Create a set ``{name, data: [objective, ...]}`` (or pass the bare list)."""
        return (
            yield Call("create_objectives", json=_set_body("create_objectives", objectives, fields))
        )

    @operation
    def list_objectives(self, *, limit: int = 10, page: int = 1) -> Op[Page[ObjectivesOut]]:
        """This key's objective sets, newest first."""
        return (yield Call("list_objectives", query={"limit": limit, "page": page}))

    @operation
    def get_objectives(self, set_id: str) -> Op[ObjectivesOut]:
        """One objective set, with what presence cannot judge in ``warnings``."""
        return (yield Call("get_objectives", {"set_id": set_id}))

    @operation
    def patch_objectives(
        self, set_id: str, patch: ObjectivesPatch | Patch | None = None, **fields: Any
    ) -> Op[ObjectivesOut]:
        """Change a set: an ``ObjectivesPatch`` (or ``name``/``data``) or a JSON Patch list."""
        ids = {"set_id": set_id}
        json_body = body(ENDPOINTS["patch_objectives"].body, patch, fields)
        changed = yield Call("patch_objectives", ids, json=json_body)
        return changed if changed is not None else (yield Call("get_objectives", ids))

    @operation
    def delete_objectives(self, set_id: str) -> Op[None]:
        """Delete a set (refused with 409 while a persona uses it)."""
        yield Call("delete_objectives", {"set_id": set_id})


def _set_body(endpoint: str, given: Any, fields: dict[str, Any]) -> Any:
    return body(ENDPOINTS[endpoint].body, given, fields)
