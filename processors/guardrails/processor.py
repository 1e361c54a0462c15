"""Guardrail processors: the persona never says, and never answers, what its guardrails forbid.

Two processors share one ``Guardrails`` (``engines.rules``)::

    user aggregator ─ InputGuardProcessor ─ llm ─ OutputGuardProcessor ─ tts ─ ...
                      (insert point before_llm)     (insert point before_tts)

* ``OutputGuardProcessor`` holds the LLM's streamed text back sentence by sentence
  (``engines.screen.OutputScreen``) and passes on only sentences that break no guardrail, as
  new ``LLMTextFrame``s. A sentence that breaks one is never passed to TTS (so it is neither
  spoken, captioned, nor added to the context): the guardrail's replacement goes instead and
  the rest of that answer is dropped. It sets ``screens_llm_output``, which tells the builder
  not to send the LLM's raw tokens to the RTVI client (``bot-llm-text``): the client's captions
  then come from what is spoken (``bot-output``, ``bot-tts-text``), after the screen.
* ``InputGuardProcessor`` reads the user's turn in each ``LLMContextFrame``: when it breaks a
  guardrail the LLM is not called; the persona says the replacement (``TTSSpeakFrame``). A
  speculative context (an eager end of turn) is held until the turn is confirmed
  (``UserStoppedSpeakingFrame``) and dropped when it is withdrawn.

With a ``judge`` (``LLMJudge``: the conversation's cloud LLM), a sentence or turn the rules let
through is also put to the LLM when some guardrail of that side has a ``prompt``
(``engines.judge``): a broken one is replaced the same way. Each checked sentence then waits for
the verdict (at most the judge's ``timeout_s``; on a failure or timeout the rules' verdict
stands, so the turn always goes on).

The judge's verdict on the user's turn is awaited *in parallel* with the LLM by default
(``make_guards(parallel_input=True)``): the turn goes on to the LLM at once, and the output guard
holds the answer's first sentence until that verdict (``InputVerdicts``). A broken turn's answer
is then dropped unheard and the replacement said instead, so the user's wait is the longer of
the two, not their sum. The LLM does run on such a turn (its function calls too, if it makes
any); ``parallel_input=False`` keeps the LLM from seeing it at all, at the cost of one verdict's
latency on every turn.

Each firing calls ``on_trigger(trigger)`` (the service turns it into the
``application.guardrail_triggered`` webhook) and, unless ``app_message`` is off, sends the
client a data-channel event in the Tavus shape::

    {"message_type": "conversation", "event_type": "conversation.guardrail_triggered",
     "conversation_id": "c...", "properties": {"guardrail_name": "...", "side": "output"}}

The client is not told which phrase matched (it may itself be what must stay unsaid); the
callback (server side) is. Logs name the guardrail and the side only, never what the user said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    Frame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMSpecificMessage, standard_message_text
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.processors.guardrails.engines.judge import JudgedGuardrails
from presence.processors.guardrails.engines.rules import Guardrails, Trigger
from presence.processors.guardrails.engines.screen import OutputScreen, Screened
from presence.processors.llm.engines.judge import LLMJudge

EVENT_TYPE = "conversation.guardrail_triggered"
OnTrigger = Callable[[Trigger], Awaitable[None] | None]


def user_turn_text(messages: list[Any]) -> str:
    """The user's words since the persona last spoke (the trailing user messages, joined)."""
    texts: list[str] = []
    for message in reversed(messages):
        if isinstance(message, LLMSpecificMessage):
            continue
        role = message.get("role")
        if role == "assistant":
            break
        if role == "user":
            texts.insert(0, standard_message_text(message).strip())
    return " ".join(t for t in texts if t)


class InputVerdicts:
    """The judge's verdict on the latest user turn, shared by the input and output guards.

    The input guard ``start``s a verdict (or ``clear``s it) for every context it passes on; the
    output guard ``take``s it once per answer, before the answer's first sentence.
    """

    def __init__(self):
        self._task: asyncio.Task | None = None

    def start(self, task: asyncio.Task) -> None:
        """The verdict on the context just passed to the LLM."""
        self._task = task

    def clear(self) -> None:
        """The context just passed on needs no verdict."""
        self._task = None

    async def take(self) -> Trigger | None:
        """The guardrail the latest turn broke, once its verdict is in (None: none, or no turn)."""
        task, self._task = self._task, None
        if task is None:
            return None
        await asyncio.wait({task})
        return None if task.cancelled() or task.exception() else task.result()


class _GuardBase(FrameProcessor):
    """What both guards share: the rules, the trigger callback and the client event."""

    def __init__(
        self,
        guardrails: Guardrails,
        *,
        conversation_id: str | None = None,
        on_trigger: OnTrigger | None = None,
        app_message: bool = True,
        judge: LLMJudge | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.guardrails = guardrails
        self.checker = JudgedGuardrails(guardrails, judge)
        self.conversation_id = conversation_id
        self._on_trigger = on_trigger
        self._app_message = app_message
        self.triggers: list[Trigger] = []  # every firing, for callers and tests

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Warm the judge up when the pipeline starts (its first verdict is then not a cold one)."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame) and self.checker.judge is not None:
            self.create_task(self._warm(self.checker.judge), f"{self}::warm-judge")

    @staticmethod
    async def _warm(judge: LLMJudge) -> None:
        try:
            await judge.warm()
        except Exception as exc:  # noqa: BLE001 — the first verdict will say what is wrong
            logger.warning(f"guardrails: the judge could not be prepared: {exc!r}")

    async def cleanup(self):
        """Close the judge's client."""
        if self.checker.judge is not None:
            await self.checker.judge.close()
        await super().cleanup()

    async def _fired(self, trigger: Trigger) -> None:
        self.triggers.append(trigger)
        logger.info(f"{self}: guardrail {trigger.guardrail_name!r} fired on the {trigger.side}")
        if self._app_message:
            message = {
                "message_type": "conversation",
                "event_type": EVENT_TYPE,
                "conversation_id": self.conversation_id,
                # not ``matched``: the forbidden phrase itself may be what must stay unsaid
                "properties": {"guardrail_name": trigger.guardrail_name, "side": trigger.side},
            }
            await self.push_frame(OutputTransportMessageUrgentFrame(message=message))
        if self._on_trigger is not None:
            try:
                result = self._on_trigger(trigger)
                if result is not None:
                    await result
            except Exception as exc:  # reporting must never break the conversation
                logger.warning(f"{self}: guardrail report failed: {exc!r}")


class OutputGuardProcessor(_GuardBase):
    """Screens the LLM's answer sentence by sentence before TTS (place it at ``before_tts``).

    Args:
        guardrails: The rules (those applying to ``output`` are used).
        conversation_id: Put in the client event.
        on_trigger: Called with each ``Trigger`` (may be async).
        app_message: Send the client a ``conversation.guardrail_triggered`` event.
        judge: Also ask this LLM about the guardrails' prompts, sentence by sentence.
        verdicts: The input guard's verdicts, judged while the LLM answers: each answer's first
            sentence waits for its turn's verdict, and a broken turn's answer is replaced.
    """

    screens_llm_output = True
    """Tells the builder that the LLM's raw text must not reach the client."""

    def __init__(self, guardrails: Guardrails, *, verdicts: InputVerdicts | None = None,
                 **kwargs):  # fmt: skip
        super().__init__(guardrails, **kwargs)
        self._screen = OutputScreen(guardrails)
        self._template: LLMTextFrame | None = None
        self._verdicts = verdicts
        self._input_due = False  # this answer's turn verdict is still to be taken

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Hold and check LLM text; pass everything else in order."""
        await super().process_frame(frame, direction)
        if direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._screen.reset()
            self._input_due = self._verdicts is not None
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMTextFrame):
            self._template = frame
            await self._emit(self._screen.feed(frame.text))
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._emit(self._screen.finish(), last=True)
            self._screen.reset()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._screen.reset()
            self._input_due = False
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _emit(self, screened: Screened, *, last: bool = False) -> None:
        template = self._template
        if self._input_due and (screened.texts or last):
            self._input_due = False
            if (trigger := await self._verdicts.take()) is not None:
                self._screen.block()  # the answer to a broken turn is never said
                await self.push_frame(LLMTextFrame(trigger.replacement))
                await self._fired(trigger)
                return
        if self.checker.judge is not None:
            screened = await self._judged(screened)
        for text in screened.texts:
            out = LLMTextFrame(text)
            if template is not None:
                out.skip_tts = template.skip_tts
                out.append_to_context = template.append_to_context
            await self.push_frame(out)
        if screened.trigger is not None:
            await self._fired(screened.trigger)

    async def _judged(self, screened: Screened) -> Screened:
        """The sentences the rules passed, put to the judge in order until one breaks a prompt."""
        passed = screened.texts[:-1] if screened.trigger else screened.texts
        for index, sentence in enumerate(passed):
            trigger = await self.checker.check(sentence, "output")
            if trigger is not None:
                self._screen.block()
                lead = sentence[: len(sentence) - len(sentence.lstrip())]
                return Screened([*passed[:index], f"{lead}{trigger.replacement}"], trigger)
        return screened


class InputGuardProcessor(_GuardBase):
    """Answers a forbidden user turn with the replacement, without the LLM (place at ``before_llm``).

    Args:
        guardrails: The rules (those applying to ``input`` are used).
        conversation_id: Put in the client event.
        on_trigger: Called with each ``Trigger`` (may be async).
        app_message: Send the client a ``conversation.guardrail_triggered`` event.
        judge: Also ask this LLM about the guardrails' prompts (the LLM waits for the verdict,
            unless ``verdicts`` is given).
        verdicts: Judge each turn while the LLM answers it: the rules still decide before the
            LLM, the judge's verdict goes here for the output guard (which must share it).
    """

    def __init__(self, guardrails: Guardrails, *, verdicts: InputVerdicts | None = None,
                 **kwargs):  # fmt: skip
        super().__init__(guardrails, **kwargs)
        self._held: Trigger | None = None  # a speculative turn that broke a rule
        self._turn_ended = False  # the user's turn was confirmed before its context arrived
        self._verdicts = verdicts if self.checker.judge is not None else None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Check each user turn before the LLM sees it."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            text = user_turn_text(frame.context.get_messages())
            if self._verdicts is None:
                trigger = await self.checker.check(text, "input")
            elif (trigger := self.guardrails.check(text, "input")) is None and text.strip():
                judged = self.create_task(self.checker.check(text, "input"), f"{self}::judge")
                self._verdicts.start(judged)  # the output guard waits for it, not the LLM
            else:
                self._verdicts.clear()
            if trigger is None:
                if not frame.speculation:
                    self._held = None
                await self.push_frame(frame, direction)
            elif frame.speculation and not self._turn_ended:
                self._held = trigger  # said only once the turn is confirmed
            else:
                await self._answer(trigger)
            return
        if isinstance(frame, UserStartedSpeakingFrame):
            self._turn_ended = False
            self._held = None
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._turn_ended = True
            if self._held is not None:
                held, self._held = self._held, None
                await self.push_frame(frame, direction)
                await self._answer(held)
                return
        elif isinstance(frame, (EagerEndOfTurnCancelFrame, InterruptionFrame)):
            self._held = None
        await self.push_frame(frame, direction)

    async def _answer(self, trigger: Trigger) -> None:
        await self._fired(trigger)
        await self.push_frame(TTSSpeakFrame(trigger.replacement))


def make_guards(
    guardrails: Guardrails,
    *,
    conversation_id: str | None = None,
    on_trigger: OnTrigger | None = None,
    app_message: bool = True,
    judge: LLMJudge | None = None,
    parallel_input: bool = True,
) -> dict[str, list[FrameProcessor]]:
    """The processors for ``guardrails`` by insert point (``build_session(insert=...)``).

    Only the sides some rule watches (or, with a ``judge``, some prompt) get a processor, except
    that a user turn judged in parallel (``parallel_input``, with a ``judge`` that has input
    prompts to judge) always gets the output guard that holds its answer for the verdict.
    """
    options = {
        "conversation_id": conversation_id,
        "on_trigger": on_trigger,
        "app_message": app_message,
        "judge": judge,
    }
    points: dict[str, list[FrameProcessor]] = {}
    checker = JudgedGuardrails(guardrails, judge)
    judged_input = judge is not None and any(
        r.prompt and r.applies("input") for r in guardrails.rules
    )
    verdicts = InputVerdicts() if parallel_input and judged_input else None
    if checker.watches("input"):
        points["before_llm"] = [InputGuardProcessor(guardrails, verdicts=verdicts, **options)]
    if checker.watches("output") or verdicts is not None:
        points["before_tts"] = [OutputGuardProcessor(guardrails, verdicts=verdicts, **options)]
    return points
