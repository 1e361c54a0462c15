"""What a ``Supervisor`` keeps per live conversation, and the ``SessionEvents`` bound to it.

``LiveCall`` is the conversation's state on the replica running it (spec, handle, joined/left,
the latest transcript and the watchdog); ``CallEvents`` turns a launcher's reports into changes of
that state and into the supervisor's database writes (spawned, never blocking the reporter).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from presence.service.intelligence import callback_for
from presence.service.session_spec import ConversationSpec


@dataclass
class LiveCall:
    """A live conversation on this replica: ``started`` is ``time.monotonic()`` at creation."""

    spec: ConversationSpec
    started: float
    handle: Any = None
    joined: bool = False
    left_at: float | None = None
    transcript: list[dict[str, Any]] = field(default_factory=list)
    perception: dict[str, Any] | None = None
    recording: tuple[str, float | None] | None = None
    storage: dict[str, Any] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    watchdog: asyncio.Task | None = None
    save_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class CallEvents:
    """``SessionEvents`` for one conversation, bound to the supervisor."""

    def __init__(self, supervisor: Any, cid: str):
        self._sup = supervisor
        self._cid = cid

    def _live(self) -> LiveCall | None:
        return self._sup.live.get(self._cid)

    def joined(self) -> None:
        """The user joined (or came back): recorded once, with ``system.replica_joined``."""
        live = self._live()
        if live is None:
            return
        live.left_at = None
        live.changed.set()
        if not live.joined:
            live.joined = True
            self._sup._spawn(self._sup._record_joined(self._cid))

    def left(self) -> None:
        """The user left: ``participant_left_timeout`` runs from now."""
        live = self._live()
        if live is not None and live.left_at is None:
            live.left_at = time.monotonic()
            live.changed.set()

    def transcript(self, turns: list[dict[str, Any]]) -> None:
        """The whole transcript so far (stored when it changed)."""
        live = self._live()
        if live is not None and turns != live.transcript:
            live.transcript = [dict(t) for t in turns]
            self._sup._spawn(self._sup._save_transcript(self._cid))

    def perception(self, analysis: dict[str, Any]) -> None:
        """The latest perception analysis (stored at the end)."""
        live = self._live()
        if live is not None:
            live.perception = dict(analysis)

    def recording(self, path: str, duration: float | None) -> None:
        """The call's recording file (stored and announced at the end)."""
        live = self._live()
        if live is not None:
            live.recording = (path, duration)

    def failed(self, stage: str | None, message: str) -> None:
        """A stage failed for good: the conversation ends with ``exception``."""
        if self._live() is not None:
            self._sup._spawn(self._sup.end(self._cid, "exception", stage=stage, error=message))

    def guardrail(self, trigger: dict[str, Any]) -> None:
        """A guardrail fired: recorded, with its webhook."""
        live = self._live()
        if live is not None:
            url = callback_for(
                live.spec.guardrails, "guardrail_name", trigger.get("guardrail_name")
            )
            self._sup._spawn(self._sup._record_guardrail(self._cid, dict(trigger), url))

    def objective(self, completion: dict[str, Any], state: list[dict[str, Any]]) -> None:
        """An objective was completed: recorded with the objectives' state, with its webhook."""
        live = self._live()
        if live is not None:
            name = completion.get("objective_name")
            url = callback_for(live.spec.objectives, "objective_name", name)
            self._sup._spawn(
                self._sup._record_objective(self._cid, dict(completion), list(state), url)
            )

    def lost(self, message: str) -> None:
        """The worker running the pipeline is gone (``worker_lost``)."""
        if self._live() is not None:
            self._sup._spawn(self._sup.end(self._cid, "worker_lost", error=message))
