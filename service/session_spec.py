"""What the supervisor and a launcher exchange: the conversation's spec and the session events.

Plain data and protocols only (no service state), so a launcher can run a session in another
process: ``ConversationSpec`` is picklable, and ``SessionEvents`` calls carry only plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


@dataclass
class ConversationSpec:
    """Everything a launcher needs to run one conversation (plain data, picklable).

    Attributes:
        conversation_id: The conversation.
        pipeline: Pipeline YAML to load.
        overrides: ``--set``-style overrides from the persona's layers.
        persona: Field updates applied to the pipeline's persona after loading (``system_prompt``,
            ``context``, ``greeting``, ``name``, ``knowledge_base``, ``replica``).
        properties: The conversation's ``properties`` (timeouts, recording, language).
        recording_path: Where to write the MP4 when recording is on, else ``None``.
        guardrails: The persona's guardrail items (``/v2/guardrails`` data), in order.
        objectives: The persona's objective items (``/v2/objectives`` data).
    """

    conversation_id: str
    pipeline: Path
    overrides: list[str] = field(default_factory=list)
    persona: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)
    recording_path: Path | None = None
    guardrails: list[dict[str, Any]] = field(default_factory=list)
    objectives: list[dict[str, Any]] = field(default_factory=list)


class SessionEvents(Protocol):
    """What a running session reports to the supervisor (all safe to call repeatedly)."""

    def joined(self) -> None:
        """The user connected and the replica is in the call."""

    def left(self) -> None:
        """The user disconnected (or the pipeline stopped by itself)."""

    def transcript(self, turns: list[dict[str, Any]]) -> None:
        """The transcript so far (``[{role, content, ...}]``); persisted as it grows."""

    def perception(self, analysis: dict[str, Any]) -> None:
        """The perception processor's latest ``analysis()``."""

    def recording(self, path: str, duration: float | None) -> None:
        """The recording is complete at ``path``."""

    def failed(self, stage: str | None, message: str) -> None:
        """A stage failed; the conversation ends with reason ``exception``."""

    def guardrail(self, trigger: dict[str, Any]) -> None:
        """A guardrail fired: ``{guardrail_name, side, matched}``."""

    def objective(self, completion: dict[str, Any], state: list[dict[str, Any]]) -> None:
        """An objective completed; ``state`` is every objective's progress.

        ``completion`` is ``{objective_name, output_variables, next_objectives}``.
        """


class SessionLauncher(Protocol):
    """Runs conversations' pipelines; the supervisor decides when they end."""

    async def start(self, spec: ConversationSpec, events: SessionEvents) -> Any:
        """Get the session ready for the user to join; returns a handle for ``end``."""

    async def end(self, handle: Any, reason: str) -> None:
        """Stop the session (idempotent); report the final transcript before returning."""

    def join_app(self, conversation_id: str) -> Any:
        """The ASGI app serving ``/c/{id}/...`` for this conversation, or ``None``."""
