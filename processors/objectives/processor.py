"""``ObjectivesProcessor``: follows the conversation's objectives turn by turn.

Place it after the user aggregator (insert point ``after_user_aggregator``). On each
``LLMContextFrame`` it reads the user's turn (the user messages since the persona last spoke),
gives it to the ``ObjectiveTracker`` (``engines.tracker``), and passes the frame on. Before it
does, it keeps one system message in the context current, listing the active objectives'
prompts and the variables still missing, so an LLM steers toward them (Tavus injects the
``objective_prompt`` the same way; the offline knowledge-base responder ignores it).

With a ``judge`` (``LLMJudge``: the conversation's cloud LLM), each user turn that leaves
active objectives open is also put to the LLM (``engines.judge``) in the background: the turn
does not wait for it; an objective it finds complete is completed then (with the values it read,
and the conditional successor it chose). A failed or slow judge leaves the rules' verdict.

Each completion calls ``on_completed(completion, state)`` (the service stores the state on the
conversation and sends the ``application.objective_completed`` webhook) and sends the client a
data-channel event::

    {"message_type": "conversation", "event_type": "conversation.objective_completed",
     "conversation_id": "c...", "properties": {"objective_name": "...",
     "output_variables": {...}, "next_objectives": [...]}}

Logs name the objective only, never the values collected.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    LLMContextFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.aggregators.llm_context import (
    LLMContext,
    LLMSpecificMessage,
    standard_message_text,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.processors.guardrails.processor import user_turn_text
from presence.processors.llm.engines.judge import LLMJudge
from presence.processors.objectives.engines.judge import judge_turn
from presence.processors.objectives.engines.tracker import Completion, ObjectiveTracker

EVENT_TYPE = "conversation.objective_completed"
MARK = "Conversation objectives"
OnCompleted = Callable[[Completion, list[dict]], Awaitable[None] | None]


def objectives_prompt(tracker: ObjectiveTracker) -> str | None:
    """The system note for the active objectives, or ``None`` when none has a prompt."""
    lines = []
    collected = {s["objective_name"]: s["output_variables"] for s in tracker.state()}
    for objective in tracker.active():
        if not objective.prompt:
            continue
        missing = [v for v in objective.output_variables if v not in collected[objective.name]]
        need = f" (still to collect: {', '.join(missing)})" if missing else ""
        lines.append(f"- {objective.prompt}{need}")
    if not lines:
        return None
    return (
        f"{MARK} (work toward them naturally, one at a time; do not list them to the user):\n"
        + "\n".join(lines)
    )


def set_note(context: LLMContext, note: str | None) -> None:
    """Put ``note`` in the context as the system message after the leading one (or remove it)."""
    messages = context.get_messages()
    at = next(
        (
            i
            for i, m in enumerate(messages)
            if not isinstance(m, LLMSpecificMessage)
            and m.get("role") == "system"
            and str(m.get("content", "")).startswith(MARK)
        ),
        None,
    )
    if at is not None:
        if note is None:
            messages.pop(at)
        else:
            messages[at] = {"role": "system", "content": note}
    elif note is not None:
        first = messages[0] if messages else None
        leading_system = isinstance(first, dict) and first.get("role") == "system"
        messages.insert(1 if leading_system else 0, {"role": "system", "content": note})
    context.set_messages(messages)


class ObjectivesProcessor(FrameProcessor):
    """Tracks objectives on each user turn and steers the LLM toward the active ones.

    Args:
        tracker: The conversation's objectives.
        conversation_id: Put in the client event.
        on_completed: Called with each ``Completion`` and the state of every objective.
        app_message: Send the client a ``conversation.objective_completed`` event.
        steer: Keep the active objectives' prompts in the LLM context.
        judge: Also ask this LLM, after each user turn, which open objectives are complete.
    """

    def __init__(
        self,
        tracker: ObjectiveTracker,
        *,
        conversation_id: str | None = None,
        on_completed: OnCompleted | None = None,
        app_message: bool = True,
        steer: bool = True,
        judge: LLMJudge | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.tracker = tracker
        self.conversation_id = conversation_id
        self._on_completed = on_completed
        self._app_message = app_message
        self._steer = steer
        self._last: tuple[int, str] | None = None
        self.judge = judge
        self._judging: asyncio.Task | None = None  # verdicts are applied in turn order
        self.completions: list[Completion] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Read each new user turn, then pass the frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._read(frame.context)
            if self._steer:
                set_note(frame.context, objectives_prompt(self.tracker))
        elif isinstance(frame, EndFrame) and self._judging is not None:
            # the call ends: the last turn's verdict still counts (bounded by the judge's timeout)
            judging, self._judging = self._judging, None
            with contextlib.suppress(Exception):
                await judging
        elif isinstance(frame, CancelFrame) and self._judging is not None:
            await self.cancel_task(self._judging)
            self._judging = None
        await self.push_frame(frame, direction)

    async def _read(self, context: LLMContext) -> None:
        messages = context.get_messages()
        text = user_turn_text(messages)
        answered = sum(
            1
            for m in messages
            if not isinstance(m, LLMSpecificMessage) and m.get("role") == "assistant"
        )
        key = (answered, text)  # one turn is read once, however often its context passes
        if not text or key == self._last:
            return
        self._last = key
        for completion in self.tracker.user_turn(text):
            self.completions.append(completion)
            await self._report(completion)
        if self.judge is not None and self.tracker.active():
            said = [
                {"role": m["role"], "content": standard_message_text(m)}
                for m in messages
                if not isinstance(m, LLMSpecificMessage) and m.get("role") in ("user", "assistant")
            ]
            self._judging = self.create_task(self._judged(self._judging, said), "objective-judge")

    async def _judged(self, before: asyncio.Task | None, said: list[dict[str, str]]) -> None:
        """Ask the judge about the open objectives after one turn (after the turn before)."""
        if before is not None:
            with contextlib.suppress(Exception):
                await before
        open_ = [o for o in self.tracker.active() if o.name in self._open()]
        for verdict in await judge_turn(self.judge, open_, said):
            completion = self.tracker.judged(
                verdict.objective_name, verdict.output_variables, verdict.next_objective
            )
            if completion is not None:
                logger.info(f"{self}: the judge completed objective {completion.objective_name!r}")
                self.completions.append(completion)
                await self._report(completion)

    def _open(self) -> set[str]:
        return {s["objective_name"] for s in self.tracker.state() if s["status"] == "active"}

    async def _report(self, completion: Completion) -> None:
        logger.info(f"{self}: objective {completion.objective_name!r} completed")
        if self._app_message:
            message: dict[str, Any] = {
                "message_type": "conversation",
                "event_type": EVENT_TYPE,
                "conversation_id": self.conversation_id,
                "properties": {
                    "objective_name": completion.objective_name,
                    "output_variables": completion.output_variables,
                    "next_objectives": completion.activated,
                },
            }
            await self.push_frame(OutputTransportMessageUrgentFrame(message=message))
        if self._on_completed is not None:
            try:
                result = self._on_completed(completion, self.tracker.state())
                if result is not None:
                    await result
            except Exception as exc:  # reporting must never break the conversation
                logger.warning(f"{self}: objective report failed: {exc!r}")
