"""The interactions protocol (Tavus CVI names), as pure data: parse what comes in, shape what goes out.

Incoming, over the data channel or ``POST /v2/conversations/{id}/interactions``::

    {"message_type": "conversation", "event_type": "conversation.echo",
     "conversation_id": "c...", "properties": {"text": "Hello there"}}

=====================================  ====================================================
``event_type``                          effect (``properties``)
=====================================  ====================================================
``conversation.echo``                   the replica says ``text`` (no LLM turn)
``conversation.respond``                as if the user said ``text``: a user turn, LLM answers
``conversation.interrupt``              the replica stops speaking now
``conversation.overwrite_llm_context``  ``context`` replaces the conversational context
``conversation.append_llm_context``     ``context`` is added to the conversational context
``conversation.sensitivity``            ``participant_pause_sensitivity`` and/or
                                        ``participant_interrupt_sensitivity`` (``low``,
                                        ``medium``, ``high``) change turn-taking now
=====================================  ====================================================

A message that does not parse never raises past ``parse_interaction``: it raises
``InteractionError`` whose text says what to change; the processor sends it back as a
``conversation.error`` event.

Outgoing (``EventTracker``): ``conversation.utterance`` (``role`` ``user``/``replica``, ``speech``),
``conversation.user.started_speaking``/``stopped_speaking`` and
``conversation.replica.started_speaking``/``stopped_speaking`` (with ``interrupted``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MESSAGE_TYPE = "conversation"
ECHO = "conversation.echo"
RESPOND = "conversation.respond"
INTERRUPT = "conversation.interrupt"
OVERWRITE_CONTEXT = "conversation.overwrite_llm_context"
APPEND_CONTEXT = "conversation.append_llm_context"
SENSITIVITY = "conversation.sensitivity"
EVENT_TYPES = (ECHO, RESPOND, INTERRUPT, OVERWRITE_CONTEXT, APPEND_CONTEXT, SENSITIVITY)

UTTERANCE = "conversation.utterance"
USER_STARTED = "conversation.user.started_speaking"
USER_STOPPED = "conversation.user.stopped_speaking"
REPLICA_STARTED = "conversation.replica.started_speaking"
REPLICA_STOPPED = "conversation.replica.stopped_speaking"
ERROR = "conversation.error"

MAX_TEXT_CHARS = 4000


class InteractionError(ValueError):
    """A message is not a valid interaction; the text says what to change.

    Attributes:
        event_type: The message's ``event_type`` when it was a string.
        field: Dotted path of the offending field (``properties.text``) when one is to blame.
    """

    def __init__(self, message: str, event_type: Any = None, field: str | None = None):
        super().__init__(message)
        self.event_type = event_type if isinstance(event_type, str) else None
        self.field = field


class NotRunningError(InteractionError):
    """The conversation's pipeline is not running (nobody joined yet, or it ended)."""


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore")

    message_type: Literal["conversation"]
    event_type: str
    conversation_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class _Text(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class _Context(BaseModel):
    model_config = ConfigDict(extra="ignore")

    context: str = Field(max_length=MAX_TEXT_CHARS * 4)


Level = Literal["superlow", "verylow", "low", "medium", "high"]


class _Sensitivity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    participant_pause_sensitivity: Level | None = None
    participant_interrupt_sensitivity: Level | None = None


@dataclass(frozen=True)
class Interaction:
    """A validated interaction.

    Attributes:
        event_type: One of ``EVENT_TYPES``.
        text: What to say (echo) or what the user "said" (respond); else ``""``.
        context: The new or added context (context events); else ``""``.
        pause_sensitivity: The new pause sensitivity (sensitivity events), else None.
        interrupt_sensitivity: The new interrupt sensitivity (sensitivity events), else None.
    """

    event_type: str
    text: str = ""
    context: str = ""
    pause_sensitivity: str | None = None
    interrupt_sensitivity: str | None = None


def is_interaction(message: Any) -> bool:
    """Whether ``message`` claims to be an interaction (``message_type == "conversation"``)."""
    return isinstance(message, dict) and message.get("message_type") == MESSAGE_TYPE


def _short(value: Any, limit: int = 60) -> str:
    """``value`` quoted for an error message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _first_field(exc: ValidationError, prefix: str = "") -> str:
    return prefix + ".".join(str(p) for p in exc.errors()[0]["loc"])


def _reasons(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{where}: {err['msg']}")
    return "; ".join(parts)


def parse_interaction(message: Any, conversation_id: str | None = None) -> Interaction:
    """Validate one incoming message.

    Args:
        message: The decoded JSON object (a JSON string is decoded first).
        conversation_id: This session's conversation; a message naming another one is refused.

    Raises:
        InteractionError: Not JSON, not an interaction, an unknown ``event_type``, another
            conversation's id, or missing/invalid ``properties``; ``field`` names the field.
    """
    if isinstance(message, (str, bytes)):
        try:
            message = json.loads(message)
        except (ValueError, RecursionError):
            raise InteractionError("interaction messages must be JSON objects") from None
    if not isinstance(message, dict):
        raise InteractionError("interaction messages must be JSON objects")
    try:
        envelope = _Envelope.model_validate(message)
    except ValidationError as exc:
        raise InteractionError(
            f"invalid interaction ({_reasons(exc)}); expected "
            '{"message_type": "conversation", "event_type": ..., "properties": {...}}',
            event_type=message.get("event_type"),
            field=_first_field(exc),
        ) from None
    kind = envelope.event_type
    if kind not in EVENT_TYPES:
        raise InteractionError(
            f"unknown event_type {_short(kind)}; expected one of {', '.join(EVENT_TYPES)}",
            event_type=kind if len(kind) <= 60 else None,
            field="event_type",
        )
    if conversation_id and envelope.conversation_id not in (None, "", conversation_id):
        raise InteractionError(
            f"conversation_id {_short(envelope.conversation_id)} is not this conversation "
            f"('{conversation_id}')",
            event_type=kind,
            field="conversation_id",
        )
    try:
        if kind in (ECHO, RESPOND):
            text = _Text.model_validate(envelope.properties).text.strip()
            if not text:
                raise InteractionError(
                    f"{kind} needs a non-blank properties.text", kind, field="properties.text"
                )
            return Interaction(kind, text=text)
        if kind in (OVERWRITE_CONTEXT, APPEND_CONTEXT):
            return Interaction(kind, context=_Context.model_validate(envelope.properties).context)
        if kind == SENSITIVITY:
            levels = _Sensitivity.model_validate(envelope.properties)
            if (levels.participant_pause_sensitivity, levels.participant_interrupt_sensitivity) == (
                None,
                None,
            ):
                raise InteractionError(
                    f"{kind} needs properties.participant_pause_sensitivity or "
                    "properties.participant_interrupt_sensitivity (low, medium or high)",
                    kind,
                    field="properties",
                )
            return Interaction(
                kind,
                pause_sensitivity=levels.participant_pause_sensitivity,
                interrupt_sensitivity=levels.participant_interrupt_sensitivity,
            )
    except ValidationError as exc:
        raise InteractionError(
            f"invalid {kind} ({_reasons(exc, 'properties.')})",
            event_type=kind,
            field=_first_field(exc, "properties."),
        ) from None
    return Interaction(kind)


def event(event_type: str, conversation_id: str | None, /, **properties: Any) -> dict[str, Any]:
    """An outgoing message in the interactions envelope."""
    return {
        "message_type": MESSAGE_TYPE,
        "event_type": event_type,
        "conversation_id": conversation_id,
        "properties": properties,
        "timestamp": time.time(),
    }


def error_event(conversation_id: str | None, exc: InteractionError) -> dict[str, Any]:
    """The ``conversation.error`` reply to a refused message."""
    return event(ERROR, conversation_id, error=str(exc), event_type=exc.event_type)


class ConversationalContext:
    """The system message: the persona's prompt plus a conversational context that can change.

    Args:
        system_prompt: The persona's system prompt (kept as is).
        context: The conversational context the session started with.
    """

    def __init__(self, system_prompt: str = "", context: str = ""):
        self.system_prompt = system_prompt.strip()
        self.context = context.strip()

    def apply(self, interaction: Interaction) -> str:
        """Overwrite or append ``interaction.context``; returns the new system message."""
        added = interaction.context.strip()
        if interaction.event_type == OVERWRITE_CONTEXT:
            self.context = added
        elif added:
            self.context = f"{self.context}\n{added}".strip()
        return self.system_message()

    def system_message(self) -> str:
        """The system message text (same shape as ``Persona.full_system_prompt``)."""
        return f"{self.system_prompt}\n\n{self.context}".strip()


def replace_system_message(messages: list[Any], content: str) -> list[Any]:
    """``messages`` with its leading system message set to ``content`` (inserted if absent)."""
    out = list(messages)
    first = out[0] if out else None
    if isinstance(first, dict) and first.get("role") == "system":
        out[0] = {**first, "content": content}
    else:
        out.insert(0, {"role": "system", "content": content})
    return out


class EventTracker:
    """Turns speaking/transcript observations into outgoing events (pure; one per session).

    User utterances: final transcript text gathered during a user turn goes out when the user
    stops speaking (text that arrives after that goes out at once). Replica utterances: the text
    the replica spoke goes out when it stops speaking, after ``replica.stopped_speaking``.

    Args:
        conversation_id: Put in every event.
    """

    def __init__(self, conversation_id: str | None = None):
        self.conversation_id = conversation_id
        self._user_speaking = False
        self._user_text: list[str] = []
        self._replica_speaking = False
        self._replica_text: list[str] = []
        self._interrupted = False

    def _event(self, kind: str, **props: Any) -> dict[str, Any]:
        return event(kind, self.conversation_id, **props)

    def _flush_user(self) -> list[dict[str, Any]]:
        speech = " ".join(" ".join(self._user_text).split())
        self._user_text = []
        return [self._event(UTTERANCE, role="user", speech=speech)] if speech else []

    def user_started(self) -> list[dict[str, Any]]:
        """The user started speaking."""
        out = self._flush_user()
        self._user_speaking = True
        return out + [self._event(USER_STARTED)]

    def user_stopped(self) -> list[dict[str, Any]]:
        """The user's turn ended."""
        self._user_speaking = False
        return [self._event(USER_STOPPED)] + self._flush_user()

    def user_text(self, text: str, revises: str = "") -> list[dict[str, Any]]:
        """A final transcript of the user's speech; it replaces ``revises`` at the end if there."""
        revises = revises.strip()
        if revises and self._user_text and " ".join(self._user_text).endswith(revises):
            kept = " ".join(self._user_text)[: -len(revises)].strip()
            self._user_text = [kept] if kept else []
        if text.strip():
            self._user_text.append(text.strip())
        return [] if self._user_speaking else self._flush_user()

    def user_said(self, text: str) -> list[dict[str, Any]]:
        """A ``respond`` interaction: the whole user utterance at once."""
        return self._flush_user() + [self._event(UTTERANCE, role="user", speech=text)]

    def replica_started(self) -> list[dict[str, Any]]:
        """The replica started speaking."""
        if self._replica_speaking:
            return []
        self._replica_speaking = True
        self._interrupted = False
        return self._flush_user() + [self._event(REPLICA_STARTED)]

    def replica_text(self, text: str, *, spaced: bool = False) -> None:
        """Text the replica spoke (``spaced``: the pieces carry their own spacing)."""
        if spaced and self._replica_text:
            self._replica_text[-1] += text
        elif text.strip():
            self._replica_text.append(text)

    def interrupted(self) -> None:
        """The replica was interrupted (marks the current stop as interrupted)."""
        if self._replica_speaking:
            self._interrupted = True

    def replica_stopped(self) -> list[dict[str, Any]]:
        """The replica stopped speaking (finished or interrupted)."""
        if not self._replica_speaking:
            return []
        self._replica_speaking = False
        speech = " ".join(" ".join(self._replica_text).split())
        self._replica_text = []
        out = [self._event(REPLICA_STOPPED, interrupted=self._interrupted)]
        if speech:
            out.append(self._event(UTTERANCE, role="replica", speech=speech))
        return out
