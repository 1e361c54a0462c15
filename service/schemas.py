"""Request and response models of the REST API (Tavus CVI nouns and field names).

Requests forbid unknown fields, so a typo is a 422 that names the field rather than a silent
default. Every field Tavus documents for personas and conversations is accepted under Tavus's
name and type (a wrong type or enum value is still a 422); ``presence.service.tavus`` maps each
onto presence's pipeline or lists it under ``warnings`` when it has no meaning here. A layer
also takes presence's own stage keys (``provider``, ``voice``, ...), validated against the
pipeline like ``presence validate --set``, so a misspelt key is still refused. Times go out as
RFC 3339 in UTC (``2026-01-31T09:30:00Z``), whatever the database returns; refusals carry
``ErrorOut`` (``{"error": "...", "detail": "..."}``, Tavus's shape; see ``service.errors``),
documented per route with ``errors(...)``.

Tavus documentation these models follow (read 2026):

- https://docs.tavus.io/api-reference/personas/create-persona
- https://docs.tavus.io/api-reference/personas/patch-persona (RFC 6902 JSON Patch)
- https://docs.tavus.io/api-reference/personas/get-personas (limit, page, persona_type)
- https://docs.tavus.io/api-reference/conversations/create-conversation
- https://docs.tavus.io/api-reference/conversations/get-conversations (limit, page, status)
- https://docs.tavus.io/api-reference/conversations/get-conversation (verbose)
- https://docs.tavus.io/api-reference/conversations/delete-conversation (hard)
- https://docs.tavus.io/sections/conversational-video-interface/persona/llm,
  .../persona/tts, .../persona/stt, .../persona/perception, .../persona/perception-tool,
  .../persona/conversational-flow, .../custom-llm-onboarding (``layers.vqa``,
  ``tts_engine: playht``), .../pal/tts (``azure``), .../pal/stt (STT engine names)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, Field

from presence.service.layer_schemas import Layers, _Request

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes for aware columns; every stored time is UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
"""A time that serialises with its UTC offset (a naive one is taken as UTC)."""


class ErrorOut(BaseModel):
    """A refused request (Tavus's shape): ``error`` says what is wrong."""

    error: str = Field(description="One sentence naming the field or resource at fault.")
    detail: str = Field(description="The same reason (FastAPI's field).")


class UnauthorizedOut(ErrorOut):
    """A request without an accepted key (Tavus's 401 shape adds ``message``)."""

    message: str = Field(description="The same reason (Tavus's 401 field).")


ERROR_TEXT = {
    400: "The body cannot be parsed (not JSON, or not UTF-8).",
    401: "The x-api-key header is missing or not accepted.",
    403: "The resource belongs to another API key.",
    404: "No such resource.",
    409: "The conversation is not live, or nobody has joined yet.",
    413: "The document is over the size limit (50 MB).",
    415: "The document is not of a kind presence reads (markdown, plain text, HTML, PDF with a "
    "text layer, DOCX or CSV).",
    429: "The service already runs its maximum of live conversations; retry later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route may answer with (``ErrorOut`` bodies)."""
    return {
        code: {
            "model": UnauthorizedOut if code == 401 else ErrorOut,
            "description": ERROR_TEXT[code],
        }
        for code in codes
    }


class Document(_Request):
    """A knowledge-base document (markdown) the persona answers from."""

    document_name: str = Field(min_length=1, max_length=200, pattern=r"^[\w .-]+$")
    content: str = Field(min_length=1, max_length=1_000_000)


class PersonaCreate(_Request):
    """``POST /v2/personas``."""

    persona_name: str = Field(default="Assistant", min_length=1, max_length=200)
    system_prompt: str = ""
    context: str = ""
    greeting: str = ""
    default_replica_id: str | None = None
    pipeline: str | None = Field(
        default=None,
        description="Name of a pipeline YAML shipped with presence (e.g. 'local', 'cloud') "
        "that the layers apply to; default 'local'.",
    )
    layers: Layers | None = None
    documents: list[Document] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    pipeline_mode: Literal["full", "echo"] | None = None
    document_ids: list[str] | None = Field(
        default=None, description="Documents (POST /v2/documents) every conversation gets."
    )
    document_tags: list[str] | None = Field(
        default=None, description="Tags whose ready documents every conversation gets."
    )
    guardrails_id: str | None = Field(default=None, description="A set from /v2/guardrails.")
    guardrail_ids: list[str] | None = Field(
        default=None, description="Individual guardrails (each a set of one) from /v2/guardrails."
    )
    guardrail_tags: list[str] | None = Field(
        default=None, description="Every guardrail of this key with one of these tags applies."
    )
    objectives_id: str | None = Field(default=None, description="A set from /v2/objectives.")


class PersonaPatch(_Request):
    """``PATCH /v2/personas/{id}``: the fields given replace the stored ones."""

    persona_name: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = None
    context: str | None = None
    greeting: str | None = None
    default_replica_id: str | None = None
    pipeline: str | None = None
    layers: Layers | None = None
    documents: list[Document] | None = None
    tools: list[dict[str, Any]] | None = None
    pipeline_mode: Literal["full", "echo"] | None = None
    document_ids: list[str] | None = None
    document_tags: list[str] | None = None
    guardrails_id: str | None = None
    guardrail_ids: list[str] | None = None
    guardrail_tags: list[str] | None = None
    objectives_id: str | None = None


class JsonPatchOp(_Request):
    """One RFC 6902 operation (Tavus's ``PATCH /v2/personas/{id}`` body is a list of them)."""

    op: Literal["add", "remove", "replace", "copy", "move", "test"]
    path: str = Field(pattern=r"^(/.*)?$", description="JSON Pointer, e.g. /layers/llm/model.")
    value: Any = None
    from_: str | None = Field(default=None, alias="from")


class PersonaOut(BaseModel):
    """A persona."""

    persona_id: str
    persona_name: str
    system_prompt: str
    context: str
    greeting: str
    default_replica_id: str | None
    pipeline: str | None
    layers: dict[str, Any]
    documents: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    pipeline_mode: str = "full"
    document_ids: list[str] = Field(default_factory=list)
    document_tags: list[str] = Field(default_factory=list)
    guardrails_id: str | None = None
    guardrail_ids: list[str] = Field(default_factory=list)
    guardrail_tags: list[str] = Field(default_factory=list)
    objectives_id: str | None = None
    warnings: list[str] = Field(
        default_factory=list,
        description="Fields accepted for Tavus compatibility that presence does not apply "
        "(or applies differently), one sentence each.",
    )
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ReplicaOut(BaseModel):
    """A replica and its registration state."""

    replica_id: str
    replica_name: str
    status: Literal["training", "ready", "error"]
    training_progress: str = Field(description="Percent done as 'N/100' (Tavus style).")
    progress: float = Field(description="Fraction done, 0..1.")
    progress_message: str
    error_message: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ConversationProperties(_Request):
    """``properties`` of a conversation (seconds)."""

    max_call_duration: float = Field(default=3600, gt=0, le=24 * 3600)
    participant_left_timeout: float = Field(default=60, ge=0, le=24 * 3600)
    participant_absent_timeout: float = Field(default=300, gt=0, le=24 * 3600)
    enable_recording: bool = False
    enable_transcription: bool = True
    language: str = "english"
    enable_closed_captions: bool | None = None
    apply_greenscreen: bool | None = None
    recording_s3_bucket_name: str | None = None
    recording_s3_bucket_region: str | None = None
    aws_assume_role_arn: str | None = None


class ConversationCreate(_Request):
    """``POST /v2/conversations``."""

    replica_id: str | None = None
    persona_id: str | None = None
    callback_url: AnyHttpUrl | None = None
    conversation_name: str = Field(default="", max_length=200)
    conversational_context: str = ""
    custom_greeting: str | None = None
    enable_dynamic_greeting: bool | None = Field(
        default=None,
        description="Tavus: the LLM writes the opening line. presence says custom_greeting, else "
        "the persona's greeting; true is accepted with a warning.",
    )
    properties: ConversationProperties = Field(default_factory=ConversationProperties)
    audio_only: bool | None = None
    memory_stores: list[str] | None = Field(
        default=None,
        description="Stores whose memories join this conversation's context and receive what "
        "the user shares in it (GET /v2/memories/{store}).",
    )
    document_ids: list[str] | None = Field(
        default=None, description="Documents (POST /v2/documents) added to the persona's."
    )
    document_tags: list[str] | None = Field(
        default=None, description="Every ready document carrying one of these tags is added."
    )
    document_retrieval_strategy: Literal["speed", "quality", "balanced"] | None = Field(
        default=None,
        description="quality: the offline responder re-ranks with embeddings; a cloud LLM's "
        "turn gets 2/3/5 passages for speed/balanced/quality.",
    )
    test_mode: bool = Field(
        default=False,
        description="Create the conversation already ended, with no session (Tavus semantics).",
    )
    require_auth: bool | None = Field(
        default=None,
        description="Tavus's private rooms; presence refuses true with a 400 (its join link is "
        "an unguessable capability, not a token-protected room).",
    )
    max_participants: int | None = Field(default=None, ge=2)


class ConversationOut(BaseModel):
    """A conversation (``GET`` includes the transcript so far)."""

    conversation_id: str
    conversation_name: str
    conversation_url: str
    status: Literal["active", "ended"]
    callback_url: str | None
    replica_id: str | None
    persona_id: str | None
    conversational_context: str
    custom_greeting: str | None
    properties: dict[str, Any]
    shutdown_reason: str | None = None
    failed_stage: str | None = None
    error_message: str | None = None
    transcript: list[dict[str, Any]] = Field(default_factory=list)
    perception_analysis: dict[str, Any] | None = None
    recording_path: str | None = None
    recording_storage: dict[str, Any] | None = Field(
        default=None,
        description="Where the recording was copied (s3_bucket, s3_key, s3_uri, s3_url), or "
        "s3_error when the upload failed; null when no bucket is configured.",
    )
    duration_seconds: float | None = Field(
        default=None, description="Creation to end (or to now while active)."
    )
    objectives: list[dict[str, Any]] = Field(
        default_factory=list,
        description="The persona's objectives: objective_name, status (pending, active, "
        "awaiting_confirmation, completed), output_variables collected, completed_turn.",
    )
    guardrails_triggered: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Each guardrail firing: guardrail_name, side (input or output), matched "
        "(the configured phrase or topic, or the prompt the LLM judge found broken), by "
        "(rules or llm), at.",
    )
    created_at: UtcDateTime
    joined_at: UtcDateTime | None = None
    ended_at: UtcDateTime | None = None
    updated_at: UtcDateTime
    warnings: list[str] = Field(
        default_factory=list,
        description="Request fields accepted for Tavus compatibility that presence does not "
        "apply (or applies differently), one sentence each.",
    )


class Page(BaseModel, Generic[T]):
    """A page of a list."""

    data: list[T]
    total_count: int


class UsageItem(BaseModel):
    """One conversation's minutes (creation to end, or to now while live)."""

    conversation_id: str
    status: Literal["active", "ended"]
    minutes: float
    created_at: UtcDateTime
    ended_at: UtcDateTime | None


class UsageOut(BaseModel):
    """Minutes of conversation per conversation and in total for this key."""

    total_minutes: float
    conversations: list[UsageItem]
