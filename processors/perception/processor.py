"""The perception processor: the persona sees the user.

Place it **between the user context aggregator and the LLM**::

    transport.input() → … → stt → user_aggregator → PerceptionProcessor → llm → tts → …

The user's camera frames (``InputImageRawFrame``/``UserImageRawFrame``, system frames) flow past
every stage, so it sees them there too; being after the aggregator is what lets it put the
perception summary into the context of each user turn without an extra LLM run:

* **Context note.** When an ``LLMContextFrame`` whose last message is the user's passes downstream
  (the aggregator just wrote the turn and is asking the LLM to answer), a ``developer``-role note
  ("[perception] The user is on camera, looking away for 6 s.") is inserted just before that user
  message, in the same context object, before the LLM reads it. No frame is added, so no second
  inference runs; the note stays in the history so the LLM also sees how things changed. With
  ``context_note="changed"`` (default) a note is added only when the summary differs from the last
  one; pipecat's adapters turn ``developer`` into ``user`` for providers without that role.
* **Sampling.** A camera frame is analysed when ``every_ms`` has passed since the last sample, in a
  worker thread (``asyncio.to_thread``), so frames keep flowing. On the wall clock a frame that
  arrives while the engine is busy replaces the waiting one (``dropped`` counts them). With
  ``media_fps`` set (file input, tests) time is counted from the frames received and every due
  sample is analysed in order, and a user turn waits for the samples before it, so results do
  not depend on the machine's speed.
* **No camera.** On the wall clock a watchdog counts time from the pipeline's start: when no camera
  frame has arrived for ``camera_timeout_s`` (the camera stopped, or never sent anything), it feeds
  the tracker a "no frame" sample every ``every_ms``, so ``user_absent`` (reason ``no_camera``)
  follows after the presence debounce just as it does for a black or covered camera. With
  ``media_fps`` time exists only as frames, so a stopped camera is not seen there.
* **Events.** Debounced events (``engines.events``) become ``PerceptionEventFrame``s pushed
  downstream (``UserPresenceFrame`` for presence, ``UserAttentionFrame`` for attention) and the
  event handlers ``on_perception_event(processor, frame)`` and
  ``on_presence_change(processor, present, at)`` fire, for a lifecycle's absent timeout.
* **Triggers.** ``TriggerSpec``s fire when their condition has held ``for_s`` seconds, once per
  episode and at most every ``cooldown_s``, never while the user or the bot is speaking (they wait
  until both are quiet). ``say`` pushes a ``TTSSpeakFrame`` downstream; ``ask`` pushes an
  ``LLMMessagesAppendFrame(run_llm=True)`` *upstream* to the user aggregator, which appends the
  instruction and runs the LLM.
* **Describer.** With a describer, a frame is described every ``describe_interval_s`` and on
  presence changes; the description joins the summary and is pushed as a
  ``PerceptionDescriptionFrame``. Failures are logged and skipped: perception never ends a call.
* **End of call.** ``analysis()`` returns the call's analysis dict (``engines.analysis``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputImageRawFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    StartFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.framework.errors import PresenceError
from presence.processors.perception.engines.analysis import CallAnalysis
from presence.processors.perception.engines.events import (
    PerceptionEvent,
    PerceptionTracker,
    summary_text,
)
from presence.processors.perception.engines.opencv import FaceBox, Observation, to_rgb
from presence.processors.perception.engines.triggers import TriggerBook, TriggerSpec
from presence.processors.perception.frames import (
    PerceptionDescriptionFrame,
    PerceptionEventFrame,
    UserAttentionFrame,
    UserPresenceFrame,
)

NOTE_PREFIX = "[perception] "


class Engine(Protocol):
    """What the processor needs from a frame analyser (``HaarEngine`` is one)."""

    def analyze(
        self, rgb: np.ndarray, *, search_profile: bool = True, hint: FaceBox | None = None
    ) -> Observation:
        """Analyse one RGB frame (called in a worker thread)."""
        ...


class Describer(Protocol):
    """What the processor needs from a describer (``AnthropicDescriber`` is one)."""

    async def describe(self, rgb: np.ndarray) -> str:
        """Describe one RGB frame in one line."""
        ...


class PerceptionProcessor(FrameProcessor):
    """Samples the user's camera, emits perception events and informs the LLM.

    Args:
        engine: The per-frame analyser, run in a worker thread.
        every_ms: Least time between two analysed frames.
        triggers: Persona reactions (see ``TriggerSpec``).
        describer: Optional vision describer.
        describe_interval_s: Least time between two descriptions.
        context_note: ``changed`` adds a note when the summary changed since the last one,
            ``every_turn`` at every user turn, ``off`` never.
        media_fps: Count time from received frames at this rate instead of the wall clock, and
            analyse every due sample (file input, tests).
        clock: Wall clock in seconds (``time.monotonic``); ignored with ``media_fps``.
        camera_timeout_s: On the wall clock, seconds without any camera frame after which the
            camera counts as gone (samples say ``no_camera`` until frames come back).
        tracker: Debouncing tracker (default thresholds when ``None``).
        engine_name: Name shown in the analysis.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        every_ms: int = 200,
        triggers: list[TriggerSpec] | None = None,
        describer: Describer | None = None,
        describe_interval_s: float = 10.0,
        context_note: Literal["changed", "every_turn", "off"] = "changed",
        media_fps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        camera_timeout_s: float = 1.0,
        tracker: PerceptionTracker | None = None,
        engine_name: str = "opencv",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._engine = engine
        self._every_s = every_ms / 1000.0
        self._triggers = TriggerBook(triggers or [])
        self._describer = describer
        self._describe_interval_s = describe_interval_s
        self._context_note = context_note
        self._media_fps = media_fps
        self._clock = clock
        self._camera_timeout_s = camera_timeout_s
        self._last_frame_at: float | None = None
        self._watchdog: asyncio.Task | None = None
        self._tracker = tracker or PerceptionTracker()
        self._analysis = CallAnalysis()
        self._engine_name = engine_name
        self._frames_seen = 0
        self._t0: float | None = None
        self._pending: asyncio.Queue[tuple[float, Any]] | None = None
        self._worker: asyncio.Task | None = None
        self._describing: asyncio.Task | None = None
        self._last_described = float("-inf")
        self._description: tuple[float, str] | None = None
        self._last_note: str | None = None
        self._user_speaking = False
        self._bot_speaking = False
        self._now = 0.0
        self._last_face: FaceBox | None = None
        self._next_due: float | None = None
        self._logged_errors: set[type] = set()
        self._describer_closed = False
        self._register_event_handler("on_perception_event")
        self._register_event_handler("on_presence_change")

    # ------------------------------------------------------------------ public API

    def summary(self) -> str:
        """The current one-line perception summary (empty until something is decided)."""
        description = None
        if self._description and self._now - self._description[0] <= 3 * self._describe_interval_s:
            description = self._description[1]
        return summary_text(self._tracker, self._now, description)

    def analysis(self) -> dict[str, Any]:
        """The call's perception analysis so far (see ``engines.analysis``)."""
        report = self._analysis.report()
        report["engine"] = self._engine_name
        report["every_ms"] = round(self._every_s * 1000)
        return report

    # ------------------------------------------------------------------ frames

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Sample camera frames, note user turns in the context, and pass every frame on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputImageRawFrame) and direction == FrameDirection.DOWNSTREAM:
            await self._on_image(frame)
        elif isinstance(frame, StartFrame):
            self._start_watchdog()
        elif isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            if self._media_fps and self._pending is not None:
                await self._drain(5.0)  # media time: the turn sees every frame before it
            self._note_user_turn(frame)
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, EndFrame):
            await self._finish(drain=True)
        elif isinstance(frame, CancelFrame):
            await self._finish(drain=False)
        await self.push_frame(frame, direction)

    def _queue(self) -> asyncio.Queue[tuple[float, Any]]:
        if self._pending is None:
            self._pending = asyncio.Queue()
            self._worker = self.create_task(self._work(), name="perception-worker")
        return self._pending

    def _start_watchdog(self) -> None:
        if self._media_fps or self._watchdog is not None:
            return
        self._t0 = self._clock()  # live: time counts from the start, camera or not
        self._watchdog = self.create_task(self._watch_camera(), name="perception-camera-watchdog")

    async def _watch_camera(self) -> None:
        """Feed "no frame" samples while the camera sends nothing (see the module docstring)."""
        while True:
            await asyncio.sleep(self._every_s)
            now = self._clock()
            last = self._t0 if self._last_frame_at is None else self._last_frame_at
            if last is not None and now - last >= self._camera_timeout_s and self._queue().empty():
                self._queue().put_nowait((now, None))

    async def _on_image(self, frame: InputImageRawFrame) -> None:
        self._frames_seen += 1
        if self._media_fps:
            t = (self._frames_seen - 1) / self._media_fps
        else:
            t = self._last_frame_at = self._clock()
        if self._next_due is not None and t < self._next_due - 1e-6:
            return
        # keep a steady cadence despite frame jitter, but do not try to catch up after a gap
        due = t if self._next_due is None else self._next_due
        self._next_due = max(due + self._every_s, t + self._every_s / 2)
        pending = self._queue()
        if not self._media_fps and not pending.empty():
            pending.get_nowait()  # live: keep only the newest frame
            pending.task_done()
            self._analysis.dropped += 1
        pending.put_nowait((t, frame))

    async def _work(self) -> None:
        assert self._pending is not None
        while True:
            t, frame = await self._pending.get()
            try:
                await self._sample(t, frame)
            except Exception as exc:  # one bad frame or engine hiccup must not end perception
                if type(exc) not in self._logged_errors:
                    logger.warning(f"{self}: camera frame skipped: {exc}")
                    self._logged_errors.add(type(exc))
            finally:
                self._pending.task_done()

    async def _sample(self, t: float, frame: InputImageRawFrame | None) -> None:
        """Analyse one frame (``None``: no camera frame arrived) and act on the events."""
        rgb, obs = None, None
        if frame is not None:
            rgb = to_rgb(frame.image, frame.size, frame.format)
            search_profile = self._tracker.state("present") is not False
            obs = await asyncio.to_thread(
                self._engine.analyze, rgb, search_profile=search_profile, hint=self._last_face
            )
        self._last_face = obs.face if obs is not None and obs.frontal else None
        if self._t0 is None:
            self._t0 = t
        self._now = t - self._t0
        events = self._tracker.update(self._now, obs)
        self._analysis.record(self._now, self._tracker, events, obs.ms if obs else None)
        for event in events:
            await self._emit(event)
        await self._check_triggers(events)
        if self._describer is not None and rgb is not None:
            self._maybe_describe(rgb, notable=any(e.kind.startswith("user_") for e in events))

    async def _emit(self, event: PerceptionEvent) -> None:
        if event.kind in ("user_present", "user_absent"):
            present = event.kind == "user_present"
            frame: PerceptionEventFrame = UserPresenceFrame(
                kind=event.kind, at=event.t, detail=event.detail, present=present
            )
            await self._call_event_handler("on_presence_change", present, event.t)
        elif event.kind in ("attending", "looking_away"):
            frame = UserAttentionFrame(
                kind=event.kind,
                at=event.t,
                detail=event.detail,
                attending=event.kind == "attending",
            )
        else:
            frame = PerceptionEventFrame(kind=event.kind, at=event.t, detail=event.detail)
        logger.debug(f"{self}: {event.kind} at {event.t:.2f} s")
        await self._call_event_handler("on_perception_event", frame)
        await self.push_frame(frame)

    # ------------------------------------------------------------------ context

    def _note_user_turn(self, frame: LLMContextFrame) -> None:
        if self._context_note == "off":
            return
        messages = frame.context.get_messages()
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
            return
        text = self.summary()
        if not text or (self._context_note == "changed" and text == self._last_note):
            return
        if not frame.speculation:  # a speculative context is a throw-away copy
            self._last_note = text
        note = {"role": "developer", "content": NOTE_PREFIX + text}
        frame.context.transform_messages(lambda msgs: [*msgs[:-1], note, msgs[-1]])

    # ------------------------------------------------------------------ triggers

    async def _check_triggers(self, events: list[PerceptionEvent]) -> None:
        quiet = not (self._user_speaking or self._bot_speaking)
        for spec in self._triggers.due(self._now, self._tracker, events, quiet):
            await self._fire(spec)

    async def _fire(self, spec: TriggerSpec) -> None:
        logger.info(f"{self}: trigger '{spec.when}' fired at {self._now:.1f} s")
        if spec.say is not None:
            await self.push_frame(TTSSpeakFrame(text=spec.say))
            return
        held = f" for {spec.for_s:g} s" if spec.for_s else ""
        reason = f"{NOTE_PREFIX}The camera shows: {spec.when.replace('_', ' ')}{held}."
        message = {"role": "developer", "content": f"{reason} {spec.ask}"}
        await self.push_frame(
            LLMMessagesAppendFrame(messages=[message], run_llm=True), FrameDirection.UPSTREAM
        )

    # ------------------------------------------------------------------ describer

    def _maybe_describe(self, rgb: np.ndarray, *, notable: bool) -> None:
        if self._describing is not None and not self._describing.done():
            return
        if not notable and (
            self._tracker.state("present") is None  # wait for the first presence decision
            or self._now - self._last_described < self._describe_interval_s
        ):
            return
        self._last_described = self._now
        self._describing = self.create_task(self._describe(rgb.copy(), self._now), name="describe")

    async def _describe(self, rgb: np.ndarray, at: float) -> None:
        assert self._describer is not None
        try:
            text = await self._describer.describe(rgb)
        except PresenceError as exc:
            logger.warning(f"{self}: describer skipped: {exc}")
            return
        if not text:
            return
        self._description = (at, text)
        self._analysis.describe(at, text)
        await self.push_frame(PerceptionDescriptionFrame(text=text, at=at))

    # ------------------------------------------------------------------ shutdown

    async def _drain(self, timeout: float) -> None:
        if self._pending is None:
            return
        try:
            await asyncio.wait_for(self._pending.join(), timeout=timeout)
        except TimeoutError:
            logger.warning(f"{self}: camera samples still queued after {timeout:g} s; skipped")

    async def _finish(self, *, drain: bool) -> None:
        if self._watchdog is not None and not self._watchdog.done():
            await self.cancel_task(self._watchdog)  # no "no frame" samples after the end
        if drain:
            await self._drain(10.0)
        if drain and self._describing is not None and not self._describing.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._describing), timeout=5.0)
            except (TimeoutError, asyncio.CancelledError):
                pass
        for task in (self._worker, self._describing):
            if task is not None and not task.done():
                await self.cancel_task(task)
        self._watchdog = self._worker = self._describing = None
        self._pending = None
        close = getattr(self._describer, "close", None)
        if close is not None and not self._describer_closed:
            self._describer_closed = True
            try:
                await close()
            except Exception as exc:  # closing a client must not fail the shutdown
                logger.debug(f"{self}: describer close failed: {exc}")

    async def cleanup(self):
        """Stop the worker tasks."""
        await super().cleanup()
        await self._finish(drain=False)


__all__ = ["PerceptionProcessor", "TriggerSpec"]
