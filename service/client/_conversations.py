"""Operations on personas, replicas, conversations and usage (each written once, see ``_core``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from presence.service.client._core import Call, Op, Upload, body, operation, upload
from presence.service.client._endpoints import ENDPOINTS
from presence.service.interaction_schemas import InteractionOut
from presence.service.schemas import (
    ConversationCreate,
    ConversationOut,
    JsonPatchOp,
    Page,
    PersonaCreate,
    PersonaOut,
    PersonaPatch,
    ReplicaOut,
    UsageOut,
)

Status = Literal["active", "ended"]
Patch = list[JsonPatchOp] | list[dict[str, Any]]


def _patch_body(endpoint: str, patch: Any, fields: dict[str, Any]) -> Any:
    return body(ENDPOINTS[endpoint].body, patch, fields)


class ConversationOperations:
    """Personas, replicas, conversations and usage."""

    # personas

    @operation
    def create_persona(self, persona: PersonaCreate | None = None, **fields: Any) -> Op[PersonaOut]:
        """Create a persona from a ``PersonaCreate`` or its fields as keywords."""
        return (yield Call("create_persona", json=body(PersonaCreate, persona, fields)))

    @operation
    def list_personas(
        self,
        *,
        limit: int = 10,
        page: int = 1,
        persona_type: Literal["user", "system"] | None = None,
    ) -> Op[Page[PersonaOut]]:
        """This key's personas, newest first (``limit`` 1..100 per ``page``)."""
        query = {"limit": limit, "page": page, "persona_type": persona_type}
        return (yield Call("list_personas", query=query))

    @operation
    def get_persona(self, persona_id: str) -> Op[PersonaOut]:
        """One persona."""
        return (yield Call("get_persona", {"persona_id": persona_id}))

    @operation
    def patch_persona(
        self, persona_id: str, patch: PersonaPatch | Patch | None = None, **fields: Any
    ) -> Op[PersonaOut]:
        """Change a persona: a ``PersonaPatch`` (or its fields as keywords) or a JSON Patch list.

        Returns the persona as it is after the patch (also when the patch changed nothing).
        """
        ids = {"persona_id": persona_id}
        changed = yield Call("patch_persona", ids, json=_patch_body("patch_persona", patch, fields))
        return changed if changed is not None else (yield Call("get_persona", ids))

    @operation
    def delete_persona(self, persona_id: str) -> Op[None]:
        """Delete a persona."""
        yield Call("delete_persona", {"persona_id": persona_id})

    # replicas

    @operation
    def create_replica(
        self, file: Upload, *, replica_name: str = "", file_name: str | None = None
    ) -> Op[ReplicaOut]:
        """Upload a portrait image or a short video; poll ``get_replica`` until ``ready``.

        Args:
            file: A path, the file's bytes, or a binary file object.
            replica_name: Display name (default: the file's name).
            file_name: The name sent with bytes or a file object (its suffix tells the kind).
        """
        form = {"replica_name": replica_name} if replica_name else {}
        return (yield Call("create_replica", form=form, file=upload(file, file_name)))

    @operation
    def list_replicas(self, *, limit: int = 10, page: int = 1) -> Op[Page[ReplicaOut]]:
        """This key's replicas, newest first."""
        return (yield Call("list_replicas", query={"limit": limit, "page": page}))

    @operation
    def get_replica(self, replica_id: str) -> Op[ReplicaOut]:
        """One replica: ``status`` is ``training`` (with progress), ``ready`` or ``error``."""
        return (yield Call("get_replica", {"replica_id": replica_id}))

    @operation
    def delete_replica(self, replica_id: str) -> Op[None]:
        """Delete a replica and its uploaded source."""
        yield Call("delete_replica", {"replica_id": replica_id})

    # conversations

    @operation
    def create_conversation(
        self, conversation: ConversationCreate | None = None, **fields: Any
    ) -> Op[ConversationOut]:
        """Start a conversation; share its ``conversation_url`` with the participant."""
        json = body(ConversationCreate, conversation, fields)
        return (yield Call("create_conversation", json=json))

    @operation
    def list_conversations(
        self,
        *,
        status: Status | None = None,
        persona_id: str | None = None,
        replica_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 10,
        page: int = 1,
    ) -> Op[Page[ConversationOut]]:
        """This key's conversations, newest first, optionally filtered."""
        query = dict(
            status=status, persona_id=persona_id, replica_id=replica_id,
            created_after=created_after, created_before=created_before, limit=limit, page=page,
        )  # fmt: skip
        return (yield Call("list_conversations", query=query))

    @operation
    def get_conversation(self, conversation_id: str) -> Op[ConversationOut]:
        """One conversation with its transcript, objectives and guardrail events so far."""
        ids = {"conversation_id": conversation_id}
        return (yield Call("get_conversation", ids, query={"verbose": True}))

    @operation
    def transcript(self, conversation_id: str) -> Op[list[dict[str, Any]]]:
        """The conversation's turns so far, each ``{"role": ..., "content": ...}``."""
        ids = {"conversation_id": conversation_id}
        talk = yield Call("get_conversation", ids, query={"verbose": True})
        return talk.transcript

    @operation
    def end_conversation(self, conversation_id: str) -> Op[ConversationOut]:
        """End a live conversation (no-op once ended)."""
        return (yield Call("end_conversation", {"conversation_id": conversation_id}))

    @operation
    def send_interaction(
        self, conversation_id: str, interaction: Any = None, **fields: Any
    ) -> Op[InteractionOut]:
        """Send an interaction (``event_type`` ``conversation.echo``, ``.respond``, ...)."""
        json = body(ENDPOINTS["send_interaction"].body, interaction, fields)
        return (yield Call("send_interaction", {"conversation_id": conversation_id}, json=json))

    @operation
    def echo(self, conversation_id: str, text: str) -> Op[InteractionOut]:
        """Make the replica say ``text`` (no LLM turn)."""
        return (yield _interaction(conversation_id, "conversation.echo", {"text": text}))

    @operation
    def respond(self, conversation_id: str, text: str) -> Op[InteractionOut]:
        """Answer ``text`` as if the user had said it."""
        return (yield _interaction(conversation_id, "conversation.respond", {"text": text}))

    @operation
    def interrupt(self, conversation_id: str) -> Op[InteractionOut]:
        """Stop the replica speaking now."""
        return (yield _interaction(conversation_id, "conversation.interrupt", {}))

    @operation
    def set_sensitivity(
        self, conversation_id: str, *, pause: str | None = None, interrupt: str | None = None
    ) -> Op[InteractionOut]:
        """Change turn-taking for the rest of the call (``conversation.sensitivity``).

        Args:
            conversation_id: The live conversation.
            pause: Pause sensitivity, ``low``/``medium``/``high`` (high: takes the turn sooner).
            interrupt: Interrupt sensitivity (high: stops after less of the user's voice).
        """
        levels = {"participant_pause_sensitivity": pause,
                  "participant_interrupt_sensitivity": interrupt}  # fmt: skip
        properties = {k: v for k, v in levels.items() if v is not None}
        return (yield _interaction(conversation_id, "conversation.sensitivity", properties))

    @operation
    def download_recording(self, conversation_id: str, destination: str | Path) -> Op[Path]:
        """Save an ended conversation's MP4 (``enable_recording``) to ``destination``."""
        ids = {"conversation_id": conversation_id}
        return (yield Call("download_recording", ids, save_to=Path(destination)))

    @operation
    def delete_conversation(self, conversation_id: str, *, hard: bool = False) -> Op[None]:
        """End the conversation if live and delete its record."""
        query = {"hard": hard} if hard else {}
        yield Call("delete_conversation", {"conversation_id": conversation_id}, query=query)

    @operation
    def usage(
        self, *, created_after: datetime | None = None, created_before: datetime | None = None
    ) -> Op[UsageOut]:
        """Minutes of conversation, per conversation and in total, for this key."""
        query = {"created_after": created_after, "created_before": created_before}
        return (yield Call("usage", query=query))


def _interaction(conversation_id: str, event_type: str, properties: dict[str, Any]) -> Call:
    json = body(
        ENDPOINTS["send_interaction"].body, {"event_type": event_type, "properties": properties}, {}
    )
    return Call("send_interaction", {"conversation_id": conversation_id}, json=json)
