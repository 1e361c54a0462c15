"""Request and response models of the REST API (Tavus CVI nouns and field names).

Requests forbid unknown fields, so a typo is a 422 that names the field rather than a silent
default. Times go out as RFC 3339 in UTC (``2026-01-31T09:30:00Z``), whatever the database
returns; refusals carry ``ErrorOut`` (``{"detail": "..."}``), documented per route with
``errors(...)``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from presence.processors.interactions.engines.protocol import MAX_TEXT_CHARS

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    # SQLite gives back naive datetimes for aware columns; every stored time is UTC
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDateTime = Annotated[datetime, AfterValidator(_utc)]
"""A time that serialises with its UTC offset (a naive one is taken as UTC)."""


class ErrorOut(BaseModel):
    """A refused request: ``detail`` says what is wrong."""

    detail: str


ERROR_TEXT = {
    400: "The body cannot be parsed (not JSON, or not UTF-8).",
    401: "The x-api-key header is missing or not accepted.",
    403: "The resource belongs to another API key.",
    404: "No such resource.",
    409: "The conversation is not live, or nobody has joined yet.",
    429: "The service already runs its maximum of live conversations; retry later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the refusals a route may answer with (``ErrorOut`` bodies)."""
    return {code: {"model": ErrorOut, "description": ERROR_TEXT[code]} for code in codes}


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConversationalFlow(_Request):
    """Turn-taking layers: the ``vad`` and ``turn`` stages' mappings."""

    vad: dict[str, Any] | None = None
    turn: dict[str, Any] | None = None


class Layers(_Request):
    """Per-stage settings mapped onto the base pipeline.

    Each layer is a stage mapping as in a pipeline file: with ``provider`` it replaces the base
    pipeline's stage, without it its keys override the base stage's parameters.
    ``conversational_flow`` takes ``{vad: {...}, turn: {...}}``; ``transport`` the pipeline's
    ``transport`` mapping (e.g. ``{kind: daily, ...}``).
    """

    llm: dict[str, Any] | None = None
    tts: dict[str, Any] | None = None
    stt: dict[str, Any] | None = None
    perception: dict[str, Any] | None = None
    conversational_flow: ConversationalFlow | None = None
    transport: dict[str, Any] | None = None


class Document(_Request):
    """A knowledge-base document (markdown) the persona answers from."""

    document_name: str = Field(min_length=1, max_length=200, pattern=r"^[\w .-]+$")
    content: str = Field(min_length=1, max_length=1_000_000)


class PersonaCreate(_Request):
    """``POST /v2/personas``."""

    persona_name: str = Field(min_length=1, max_length=200)
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


class ConversationCreate(_Request):
    """``POST /v2/conversations``."""

    replica_id: str | None = None
    persona_id: str | None = None
    callback_url: AnyHttpUrl | None = None
    conversation_name: str = Field(default="", max_length=200)
    conversational_context: str = ""
    custom_greeting: str | None = None
    properties: ConversationProperties = Field(default_factory=ConversationProperties)


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
    created_at: UtcDateTime
    joined_at: UtcDateTime | None = None
    ended_at: UtcDateTime | None = None
    updated_at: UtcDateTime


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


class TextProperties(BaseModel):
    """``properties`` of echo and respond (other keys, e.g. Tavus's ``modality``, are ignored)."""

    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        pattern=r"\S",
        description="What the replica says (echo) or what the user said (respond).",
    )


class ContextProperties(BaseModel):
    """``properties`` of the context events (other keys are ignored)."""

    context: str = Field(max_length=MAX_TEXT_CHARS * 4)


class _Interaction(_Request):
    message_type: Literal["conversation"] = "conversation"
    conversation_id: str | None = Field(
        default=None, description="When given, it must be this conversation's id."
    )


class EchoInteraction(_Interaction):
    """``conversation.echo``: the replica says ``properties.text`` (no LLM turn)."""

    event_type: Literal["conversation.echo"]
    properties: TextProperties


class RespondInteraction(_Interaction):
    """``conversation.respond``: answered as if the user said ``properties.text``."""

    event_type: Literal["conversation.respond"]
    properties: TextProperties


class InterruptInteraction(_Interaction):
    """``conversation.interrupt``: the replica stops speaking now."""

    event_type: Literal["conversation.interrupt"]
    properties: dict[str, Any] = Field(default_factory=dict)


class OverwriteContextInteraction(_Interaction):
    """``conversation.overwrite_llm_context``: ``properties.context`` replaces the context."""

    event_type: Literal["conversation.overwrite_llm_context"]
    properties: ContextProperties


class AppendContextInteraction(_Interaction):
    """``conversation.append_llm_context``: ``properties.context`` is added to the context."""

    event_type: Literal["conversation.append_llm_context"]
    properties: ContextProperties


InteractionIn = Annotated[
    EchoInteraction
    | RespondInteraction
    | InterruptInteraction
    | OverwriteContextInteraction
    | AppendContextInteraction,
    Field(discriminator="event_type"),
]
"""An interaction sent by a server-side caller (the data channel's message, over REST)."""


class InteractionOut(BaseModel):
    """An accepted interaction: it runs in the conversation in arrival order."""

    conversation_id: str
    event_type: str
    status: Literal["accepted"] = "accepted"
