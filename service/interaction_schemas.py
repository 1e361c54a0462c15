"""Bodies of ``POST /v2/conversations/{id}/interactions``: the data channel's messages over REST.

The same interaction protocol the page speaks (``processors/interactions``), for server-side
callers: echo, respond, interrupt, the two context events and sensitivity, told apart by
``event_type``.
Unknown fields are refused like every request body; a ``properties`` object ignores keys it does
not use (Tavus sends ``modality``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, model_validator

from presence.processors.interactions.engines.protocol import MAX_TEXT_CHARS
from presence.service.layer_schemas import SttLevel
from presence.service.schemas import _Request


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


class SensitivityProperties(BaseModel):
    """``properties`` of ``conversation.sensitivity`` (at least one; other keys are ignored)."""

    participant_pause_sensitivity: SttLevel | None = Field(
        default=None,
        description="How soon the replica takes the turn at a pause (high: sooner); "
        "verylow/superlow apply as low.",
    )
    participant_interrupt_sensitivity: SttLevel | None = Field(
        default=None,
        description="How little of the user's voice interrupts the replica (high: least); "
        "verylow/superlow apply as low.",
    )

    @model_validator(mode="after")
    def _one_at_least(self) -> SensitivityProperties:
        if self.participant_pause_sensitivity is None and (
            self.participant_interrupt_sensitivity is None
        ):
            raise ValueError(
                "give participant_pause_sensitivity or participant_interrupt_sensitivity"
            )
        return self


class SensitivityInteraction(_Interaction):
    """``conversation.sensitivity``: turn-taking's pause and interrupt sensitivity change now."""

    event_type: Literal["conversation.sensitivity"]
    properties: SensitivityProperties


InteractionIn = Annotated[
    EchoInteraction
    | RespondInteraction
    | InterruptInteraction
    | OverwriteContextInteraction
    | AppendContextInteraction
    | SensitivityInteraction,
    Field(discriminator="event_type"),
]
"""An interaction sent by a server-side caller (the data channel's message, over REST)."""


class InteractionOut(BaseModel):
    """An accepted interaction: it runs in the conversation in arrival order."""

    conversation_id: str
    event_type: str
    status: Literal["accepted"] = "accepted"
