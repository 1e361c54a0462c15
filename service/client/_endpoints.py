"""Every route of the ``/v2`` API, declared once: the tests check it against ``openapi.json``."""

from __future__ import annotations

from presence.service.client._core import Endpoint
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
from presence.service.interaction_schemas import InteractionIn, InteractionOut
from presence.service.routes.documents import DocumentCreate, DocumentOut, DocumentPatch
from presence.service.routes.memories import MemoryIn, MemoryOut, StoreOut
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

PAGED = ("limit", "page")
PERSONA = "/v2/personas/{persona_id}"
REPLICA = "/v2/replicas/{replica_id}"
CONVERSATION = "/v2/conversations/{conversation_id}"
DOCUMENT = "/v2/documents/{document_id}"
STORE = "/v2/memories/{memory_store}"
GUARDRAILS = "/v2/guardrails/{set_id}"
OBJECTIVES = "/v2/objectives/{set_id}"

ENDPOINTS: dict[str, Endpoint] = {
    # personas
    "create_persona": Endpoint("POST", "/v2/personas", PersonaCreate, PersonaOut),
    "list_personas": Endpoint(
        "GET", "/v2/personas", None, Page[PersonaOut], (*PAGED, "persona_type")
    ),
    "get_persona": Endpoint("GET", PERSONA, None, PersonaOut),
    "patch_persona": Endpoint("PATCH", PERSONA, PersonaPatch | list[JsonPatchOp], PersonaOut),
    "delete_persona": Endpoint("DELETE", PERSONA),
    # replicas
    "create_replica": Endpoint(
        "POST", "/v2/replicas", None, ReplicaOut, form=("file", "replica_name")
    ),
    "list_replicas": Endpoint("GET", "/v2/replicas", None, Page[ReplicaOut], PAGED),
    "get_replica": Endpoint("GET", REPLICA, None, ReplicaOut),
    "delete_replica": Endpoint("DELETE", REPLICA),
    # conversations
    "create_conversation": Endpoint(
        "POST", "/v2/conversations", ConversationCreate, ConversationOut
    ),
    "list_conversations": Endpoint(
        "GET",
        "/v2/conversations",
        None,
        Page[ConversationOut],
        ("status", "persona_id", "replica_id", "created_after", "created_before", *PAGED),
    ),
    "get_conversation": Endpoint("GET", CONVERSATION, None, ConversationOut, ("verbose",)),
    "end_conversation": Endpoint("POST", f"{CONVERSATION}/end", None, ConversationOut),
    "send_interaction": Endpoint(
        "POST", f"{CONVERSATION}/interactions", InteractionIn, InteractionOut
    ),
    "download_recording": Endpoint("GET", f"{CONVERSATION}/recording", download="video/mp4"),
    "delete_conversation": Endpoint("DELETE", CONVERSATION, query=("hard",)),
    "usage": Endpoint("GET", "/v2/usage", None, UsageOut, ("created_after", "created_before")),
    # documents (the knowledge base)
    "create_document": Endpoint("POST", "/v2/documents", DocumentCreate, DocumentOut),
    "upload_document": Endpoint(
        "POST",
        "/v2/documents",
        None,
        DocumentOut,
        form=("file", "document_name", "tags", "callback_url", "properties"),
    ),
    "list_documents": Endpoint(
        "GET",
        "/v2/documents",
        None,
        Page[DocumentOut],
        (*PAGED, "sort", "status", "name_or_uuid", "tags"),
    ),
    "get_document": Endpoint("GET", DOCUMENT, None, DocumentOut),
    "patch_document": Endpoint("PATCH", DOCUMENT, DocumentPatch, DocumentOut),
    "delete_document": Endpoint("DELETE", DOCUMENT),
    # memories
    "list_memory_stores": Endpoint("GET", "/v2/memories", None, Page[StoreOut], PAGED),
    "list_memories": Endpoint("GET", STORE, None, Page[MemoryOut], PAGED),
    "add_memory": Endpoint("POST", STORE, MemoryIn, MemoryOut),
    "delete_memory": Endpoint("DELETE", f"{STORE}/{{memory_id}}"),
    "delete_memory_store": Endpoint("DELETE", STORE),
    # guardrails and objectives
    "create_guardrails": Endpoint(
        "POST", "/v2/guardrails", GuardrailsCreate | GuardrailItem, GuardrailsOut
    ),
    "list_guardrails": Endpoint("GET", "/v2/guardrails", None, Page[GuardrailsOut], PAGED),
    "get_guardrails": Endpoint("GET", GUARDRAILS, None, GuardrailsOut),
    "patch_guardrails": Endpoint(
        "PATCH", GUARDRAILS, GuardrailsPatch | list[JsonPatchOp], GuardrailsOut
    ),
    "delete_guardrails": Endpoint("DELETE", GUARDRAILS),
    "create_objectives": Endpoint(
        "POST", "/v2/objectives", ObjectivesCreate | list[ObjectiveItem], ObjectivesOut
    ),
    "list_objectives": Endpoint("GET", "/v2/objectives", None, Page[ObjectivesOut], PAGED),
    "get_objectives": Endpoint("GET", OBJECTIVES, None, ObjectivesOut),
    "patch_objectives": Endpoint(
        "PATCH", OBJECTIVES, ObjectivesPatch | list[JsonPatchOp], ObjectivesOut
    ),
    "delete_objectives": Endpoint("DELETE", OBJECTIVES),
}
"""Route of each client method of the same name (``DERIVED`` methods reuse another's)."""

DERIVED = {
    "transcript": "get_conversation",
    "echo": "send_interaction",
    "respond": "send_interaction",
    "interrupt": "send_interaction",
    "set_sensitivity": "send_interaction",
}
"""Convenience methods and the route they call."""
