"""``InteractionsProcessor``: Tavus-CVI-shaped interactions in, conversation events out.

Place it right after ``transport.input()`` (the builder's ``after_input``) and attach its
``observer()`` to the worker::

    interactions = InteractionsProcessor(conversation_id=cid, system_prompt=..., context=...)
    build_session(loaded, transport, after_input=[interactions],
                  observers=[interactions.observer()])

In: a data-channel message is an ``InputTransportMessageFrame`` whose payload has
``message_type: "conversation"`` (Tavus's shape, e.g. a Daily app-message or the browser page's
data channel), or an RTVI ``client-message`` whose ``t`` is the ``event_type`` and ``d`` the
message or its ``properties`` (pipecat's ``RTVIProcessor`` turns it into an
``RTVIClientMessageFrame``; the reply is an RTVI ``server-response``/``error-response``). Server-side
callers use ``submit(message)``. Actions run in the processor's own task, in arrival order:

- echo: ``TTSSpeakFrame(text)`` (spoken, added to the context as the replica's words);
- respond: interrupt the replica if it is speaking, then
  ``LLMMessagesAppendFrame([user text], run_llm=True)`` — the user aggregator runs the LLM;
- interrupt: ``broadcast_interruption()`` (pipecat's ``InterruptionFrame`` both ways);
- overwrite/append context: ``LLMMessagesTransformFrame`` that rewrites the leading system
  message (persona prompt + conversational context);
- sensitivity: through ``turn_controls`` (``presence.processors.turns.sensitivity``), the
  interrupt sensitivity as a ``VADParamsUpdateFrame`` (the VAD applies it and tells the turn
  analyzer), the pause sensitivity on the turn strategy at once; what cannot apply comes back
  as a ``conversation.error`` event.

Out: ``InteractionsObserver`` watches speaking/transcript frames and this processor sends the
events (``engines.protocol.EventTracker``) as ``OutputTransportMessageUrgentFrame``s: raw JSON
on the data channel, the same shape Tavus sends. A refused message gets a ``conversation.error``
event back (never an exception in the pipeline).
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputTransportMessageFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    LLMMessagesTransformFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADParamsUpdateFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.processors.frameworks.rtvi.frames import (
    RTVIClientMessageFrame,
    RTVIServerResponseFrame,
)
from pipecat.transports.base_output import BaseOutputTransport

from presence.processors.interactions.engines.protocol import (
    APPEND_CONTEXT,
    ECHO,
    EVENT_TYPES,
    INTERRUPT,
    MESSAGE_TYPE,
    OVERWRITE_CONTEXT,
    RESPOND,
    SENSITIVITY,
    ConversationalContext,
    EventTracker,
    Interaction,
    InteractionError,
    NotRunningError,
    error_event,
    is_interaction,
    parse_interaction,
    replace_system_message,
)

DRAIN_SECS = 2.0


class InteractionsProcessor(FrameProcessor):
    """Runs interactions and sends conversation events for one session.

    Args:
        conversation_id: The conversation (checked against incoming messages, put in events).
        system_prompt: The persona's system prompt (context events keep it).
        context: The conversational context the session starts with.
        turn_controls: The session's ``TurnControls`` (``conversation.sensitivity``); set after
            the session is built when it is not known yet.
    """

    def __init__(
        self,
        *,
        conversation_id: str | None = None,
        system_prompt: str = "",
        context: str = "",
        turn_controls: Any = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.conversation_id = conversation_id
        self.turn_controls = turn_controls
        self.context = ConversationalContext(system_prompt, context)
        self.tracker = EventTracker(conversation_id)
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._bot_speaking = False
        self.sent: list[dict[str, Any]] = []  # every event sent, for callers and tests

    def observer(self) -> InteractionsObserver:
        """The observer that feeds this processor's outgoing events (attach it to the worker)."""
        return InteractionsObserver(self)

    # ---- in ---------------------------------------------------------------------------------

    async def submit(self, message: Any) -> Interaction:
        """Validate ``message`` and queue its action (server-side callers, e.g. the REST API).

        Raises:
            InteractionError: The message is invalid, or the session is not running.
        """
        interaction = parse_interaction(message, self.conversation_id)
        if self._queue is None:
            raise NotRunningError("the conversation's pipeline is not running")
        await self._queue.put(interaction)
        return interaction

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Take interaction messages; track whether the replica speaks; pass everything else."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._queue = asyncio.Queue()
            self._task = self.create_task(self._run_actions())
            return
        if isinstance(frame, EndFrame):
            await self._drain()
            await self._stop()
        elif isinstance(frame, CancelFrame):
            await self._stop()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, InputTransportMessageFrame) and is_interaction(frame.message):
            await self._receive(frame.message, None)
            return
        elif isinstance(frame, RTVIClientMessageFrame) and frame.type in EVENT_TYPES:
            data = frame.data if isinstance(frame.data, dict) else {}
            message = (
                data
                if is_interaction(data)
                else {"message_type": MESSAGE_TYPE, "event_type": frame.type, "properties": data}
            )
            await self._receive(message, frame)
            return
        await self.push_frame(frame, direction)

    async def _receive(self, message: Any, rtvi: RTVIClientMessageFrame | None) -> None:
        try:
            interaction = parse_interaction(message, self.conversation_id)
            if self._queue is None:  # the session is ending
                raise NotRunningError("the conversation is ending", interaction.event_type)
        except InteractionError as exc:
            logger.warning(f"{self}: refused interaction: {exc}")
            if rtvi is not None:
                await self.push_frame(RTVIServerResponseFrame(client_msg=rtvi, error=str(exc)))
            else:
                await self.send(error_event(self.conversation_id, exc))
            return
        if rtvi is not None:
            await self.push_frame(
                RTVIServerResponseFrame(client_msg=rtvi, data={"accepted": interaction.event_type})
            )
        await self._queue.put(interaction)

    async def _run_actions(self) -> None:
        assert self._queue is not None
        while True:
            interaction = await self._queue.get()
            try:
                await self._act(interaction)
            except Exception as exc:  # one bad action must not end the session
                logger.warning(f"{self}: {interaction.event_type} failed: {exc!r}")
            finally:
                self._queue.task_done()

    async def _act(self, interaction: Interaction) -> None:
        kind = interaction.event_type
        logger.debug(f"{self}: {kind}")
        if kind == ECHO:
            await self.push_frame(TTSSpeakFrame(interaction.text))
        elif kind == RESPOND:
            if self._bot_speaking:
                await self.broadcast_interruption()
                # the interrupted answer is committed to the context before the new user turn
                await self.pipeline_worker.flush_pipeline()
            for message in self.tracker.user_said(interaction.text):
                await self.send(message)
            await self.push_frame(
                LLMMessagesAppendFrame(
                    messages=[{"role": "user", "content": interaction.text}], run_llm=True
                )
            )
        elif kind == INTERRUPT:
            await self.broadcast_interruption()
        elif kind in (OVERWRITE_CONTEXT, APPEND_CONTEXT):
            content = self.context.apply(interaction)
            await self.push_frame(
                LLMMessagesTransformFrame(
                    transform=lambda messages: replace_system_message(messages, content),
                    run_llm=False,
                )
            )
        elif kind == SENSITIVITY:
            await self._change_sensitivity(interaction)

    async def _change_sensitivity(self, interaction: Interaction) -> None:
        controls, refused = self.turn_controls, []
        if interaction.interrupt_sensitivity:
            params = controls.vad_params(interaction.interrupt_sensitivity) if controls else None
            if params is None:
                refused.append("this conversation has no VAD whose sensitivity can change")
            else:
                await self.push_frame(VADParamsUpdateFrame(params=params))
        if interaction.pause_sensitivity:
            why = (controls.set_pause(interaction.pause_sensitivity) if controls
                   else "this conversation's turn-taking cannot change")  # fmt: skip
            if why:
                refused.append(why)
        for why in refused:
            logger.warning(f"{self}: {SENSITIVITY} not applied: {why}")
            error = InteractionError(why, SENSITIVITY)
            await self.send(error_event(self.conversation_id, error))

    async def _drain(self) -> None:
        """Let queued actions run before the session ends (bounded: ``DRAIN_SECS``)."""
        if self._queue is not None:
            try:
                await asyncio.wait_for(self._queue.join(), DRAIN_SECS)
            except TimeoutError:
                logger.warning(f"{self}: {self._queue.qsize()} interaction(s) dropped at the end")

    async def _stop(self) -> None:
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None
        self._queue = None

    # ---- out --------------------------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        """Send one event to the client over the transport's data channel."""
        self.sent.append(message)
        await self.push_frame(OutputTransportMessageUrgentFrame(message=message))

    async def _send_all(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            await self.send(message)


class InteractionsObserver(BaseObserver):
    """Watches user/replica speech and hands the resulting events to the processor to send."""

    def __init__(self, processor: InteractionsProcessor):
        super().__init__()
        self._processor = processor
        self._tracker = processor.tracker
        self._seen: set[int] = set()

    async def on_push_frame(self, data: FramePushed):
        """Map one frame push to events (each frame once; spoken text as the output sends it)."""
        frame = data.frame
        if isinstance(frame, TTSTextFrame):
            # the output transport passes text on as it is spoken: what the user heard
            if isinstance(data.source, BaseOutputTransport) and frame.id not in self._seen:
                self._seen.add(frame.id)
                self._tracker.replica_text(frame.text, spaced=frame.includes_inter_frame_spaces)
            return
        # broadcast frames come as a pair (one each way): use the downstream one, once
        if data.direction != FrameDirection.DOWNSTREAM or not data.first_push:
            return
        if frame.id in self._seen:
            return
        out: list[dict[str, Any]] = []
        if isinstance(frame, UserStartedSpeakingFrame):
            out = self._tracker.user_started()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            out = self._tracker.user_stopped()
        elif isinstance(frame, TranscriptionFrame):
            out = self._tracker.user_text(frame.text, getattr(frame, "revises", ""))
        elif isinstance(frame, BotStartedSpeakingFrame):
            out = self._tracker.replica_started()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            out = self._tracker.replica_stopped()
        elif isinstance(frame, InterruptionFrame):
            self._tracker.interrupted()
        else:
            return
        self._seen.add(frame.id)
        if out:
            await self._processor._send_all(out)
