"""Surviving a provider's bad minute: retries within a budget, apologies, stall fallbacks.

Three pieces, each built on pipecat's own services and switcher:

- ``ResilientLLMMixin`` (mixed into a pipecat ``LLMService``): a failed turn (5xx, 429, timeout,
  dropped stream, malformed payload) is retried once when nothing was said yet and the turn's time
  budget allows; then either a backup provider takes the same turn (when a ``fallback:`` list
  gave one) or the persona says a short apology. The pipeline keeps running and the next turn is
  tried afresh. A failure after the reply started is not retried (that would repeat words).
- ``StallFallbackTTSMixin`` (mixed into a pipecat ``TTSService``): when a context produces no
  audio for ``stall_timeout_s``, the text not yet spoken is handed to the backup voice (or, with
  none, reported as a ``ProviderTimeout`` error). When a websocket voice's connection drops
  mid-sentence, pipecat reconnects and closes the contexts of the old connection; the text they
  had not spoken yet is said again once on the new connection (a second loss of the same text
  takes the stall path).
- ``build_with_fallback(stage, specs, ctx)`` (``presence.processors.fallback``): a stage's
  providers in a pipecat switcher that fails over, replays the failed turn on the next provider,
  and goes back to the primary at a later turn (``recover_after_s``).

Errors reach the rest of the pipeline as one ``ErrorFrame`` per failed turn whose ``exception`` is
a ``ProviderTimeout`` or ``ProviderUnavailable`` (the presence error tree).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loguru import logger
from pipecat.frames.frames import (
    AggregatedTextProgressFrame,
    ErrorFrame,
    Frame,
    FunctionCallInProgressFrame,
    FunctionCallsStartedFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.utils.errors import classify_http_exception
from pipecat.utils.http import TIMEOUT_EXCEPTIONS

from presence.framework.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from presence.processors.fallback import (
    FallbackStrategy,
    TurnFailedFrame,
    build_with_fallback,
)

__all__ = [
    "DEFAULT_APOLOGY",
    "FallbackStrategy",
    "ResilientLLMMixin",
    "StallFallbackTTSMixin",
    "TurnFailedFrame",
    "build_with_fallback",
]

if TYPE_CHECKING:
    pass

DEFAULT_APOLOGY = "Sorry, I'm having trouble answering right now. Could you say that again?"


def _retry_after_s(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for key, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(key)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                return None
    return None


def _is_timeout(exc: BaseException | None) -> bool:
    # SDKs wrap transport timeouts in their own APITimeoutError (anthropic, openai)
    return isinstance(exc, (ProviderTimeout, TimeoutError, *TIMEOUT_EXCEPTIONS)) or (
        type(exc).__name__ == "APITimeoutError"
    )


class _Attempt:
    def __init__(self):
        self.output = False
        self.failure: BaseException | None = None
        self.errors: list[ErrorFrame] = []

    def fail(self, exc: BaseException) -> None:
        self.failure = self.failure or exc


class ResilientLLMMixin:
    """Retry-then-apologize turns for a pipecat ``LLMService`` (put it first in the bases).

    Call ``_init_resilience`` from the subclass ``__init__``. ``has_backup`` is set by
    ``build_with_fallback``; when it returns True a failed turn is handed to the backup instead
    of apologizing.
    """

    has_backup: Callable[[], bool] | None = None

    def _init_resilience(
        self,
        *,
        provider: str,
        retries: int = 1,
        turn_budget_s: float = 20.0,
        retry_wait_s: float = 0.25,
        apology: str = DEFAULT_APOLOGY,
    ) -> None:
        self._provider_name = provider
        self._retries = retries
        self._turn_budget_s = turn_budget_s
        self._retry_wait_s = retry_wait_s
        self._apology = apology
        self._attempt: _Attempt | None = None
        self._response_open = False
        self._end_held = False

    async def _process_context(self, context):  # noqa: D102 - see class docstring
        started = time.monotonic()
        tries = 0
        try:
            while True:
                tries += 1
                attempt = await self._run_attempt(context, started)
                if attempt.failure is None:
                    return
                wait = self._retry_wait(attempt, started, tries)
                if wait is None:
                    await self._give_up(context, attempt)
                    return
                logger.warning(
                    f"{self}: {self._provider_name} failed ({attempt.failure!r}); retrying in {wait:.2f}s"
                )
                await asyncio.sleep(wait)
        finally:
            if self._end_held:
                self._end_held = False
                await self.push_frame(LLMFullResponseEndFrame())

    async def _run_attempt(self, context, started: float) -> _Attempt:
        attempt = self._attempt = _Attempt()
        remaining = max(self._turn_budget_s - (time.monotonic() - started), 0.01)
        try:
            async with asyncio.timeout(remaining):
                await super()._process_context(context)
        except TimeoutError as exc:
            attempt.fail(ProviderTimeout(f"no answer within {self._turn_budget_s:.0f} s"))
            attempt.failure.__cause__ = exc
        except TIMEOUT_EXCEPTIONS as exc:
            attempt.fail(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the provider's own failure, mapped below
            attempt.fail(exc)
        finally:
            self._attempt = None
        if attempt.failure is None and attempt.errors:
            attempt.fail(attempt.errors[0].exception or ProviderError(attempt.errors[0].error))
        return attempt

    def _retry_wait(self, attempt: _Attempt, started: float, tries: int) -> float | None:
        if attempt.output or tries > self._retries:
            return None
        if classify_http_exception(attempt.failure).is_permanent:
            return None
        wait = _retry_after_s(attempt.failure)
        wait = self._retry_wait_s if wait is None else wait
        if time.monotonic() - started + wait >= self._turn_budget_s:
            return None
        return wait

    async def _give_up(self, context, attempt: _Attempt) -> None:
        failure = attempt.failure
        kind = ProviderTimeout if _is_timeout(failure) else ProviderUnavailable
        error = kind(f"{failure}", provider=self._provider_name, stage="llm")
        error.__cause__ = failure
        if attempt.output:
            await self.push_error(f"reply cut short: {failure}", exception=error)
            return
        if self.has_backup is not None and self.has_backup():
            frame = TurnFailedFrame(
                error=f"{self._provider_name} failed: {failure}",
                exception=error,
                replay=LLMContextFrame(context=context),
            )
            await self.push_error_frame(frame, force_treat_as_permanent=True)
            return
        await self.push_error(
            f"{self._provider_name} failed, apologized: {failure}", exception=error
        )
        if not self._response_open:
            await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(self._apology))

    async def push_error_frame(self, error: ErrorFrame, force_treat_as_permanent: bool = False):
        """Hold a provider error raised during an attempt; the turn decides what to report."""
        if self._attempt is not None:
            self._attempt.errors.append(error)
            return
        await super().push_error_frame(error, force_treat_as_permanent=force_treat_as_permanent)

    async def _call_event_handler(self, event_name: str, *args, **kwargs):
        if event_name == "on_completion_timeout" and self._attempt is not None:
            self._attempt.fail(ProviderTimeout("the response stream stalled"))
        await super()._call_event_handler(event_name, *args, **kwargs)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        """Keep one response start/end pair per turn however many attempts it took."""
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, LLMFullResponseStartFrame):
                if self._response_open:
                    return
                self._response_open = True
            elif isinstance(frame, LLMFullResponseEndFrame):
                if self._attempt is not None:
                    self._end_held = True
                    return
                self._response_open = False
            elif self._attempt is not None and isinstance(
                frame, (LLMTextFrame, FunctionCallsStartedFrame, FunctionCallInProgressFrame)
            ):
                self._attempt.output = True
        await super().push_frame(frame, direction)


class StallFallbackTTSMixin:
    """Bounded wait on a pipecat ``TTSService`` context, then hand its text to a backup voice.

    The wait is the service's ``stop_frame_timeout_s`` (pass ``stall_timeout_s`` there). Call
    ``_init_stall_fallback`` from the subclass ``__init__``; ``has_backup`` is set by
    ``build_with_fallback``. Subclasses that know how much of a context was spoken override
    ``_unspoken_text``; the default assumes nothing was when no audio came, all of it otherwise.
    """

    has_backup: Callable[[], bool] | None = None

    def _init_stall_fallback(self, *, provider: str) -> None:
        self._provider_name = provider
        self._context_text: dict[str, str] = {}
        self._stalled: set[str] = set()
        self._abandoned: set[str] = set()
        self._dropped: set[str] = set()  # contexts of a connection that was lost
        self._said_again: deque[str] = deque(maxlen=16)  # texts already re-sent after a drop
        self._to_say_again: list[str] = []  # waiting for the new connection
        self._reconnecting = False

    async def run_tts(self, text: str, context_id: str):  # noqa: D102 - records the text
        self._context_text[context_id] = self._context_text.get(context_id, "") + text
        async for frame in super().run_tts(text, context_id):
            yield frame

    async def _next_audio_context_item(self, context_id: str):
        try:
            return await self._audio_context_manager.get(
                context_id, timeout=self._stop_frame_timeout_s
            )
        except TimeoutError:
            self._stalled.add(context_id)
            return None

    def _unspoken_text(self, context_id: str, text: str, received_audio: bool) -> str:
        return "" if received_audio else text

    async def _reconnect_websocket(self, attempt_number: int) -> bool:
        # the connection was lost: pipecat closes its contexts next, their unsaid text with them
        self._dropped.update(self.get_audio_contexts())
        self._reconnecting = True
        try:
            return await super()._reconnect_websocket(attempt_number)
        finally:
            self._reconnecting = False
            await self._say_again()

    async def _say_again(self) -> None:
        """Queue the text lost with a dropped connection, once the new one is up."""
        texts, self._to_say_again = self._to_say_again, []
        for text in texts:
            await self.queue_frame(TTSSpeakFrame(text))

    async def _end_audio_context(self, context_id: str, playback) -> None:
        text = self._context_text.pop(context_id, "")
        unspoken = ""
        lost = context_id in self._stalled or context_id in self._dropped
        if lost:
            unspoken = self._unspoken_text(context_id, text, playback.received_audio).strip()
        if unspoken:
            self._abandoned.add(context_id)
        await super()._end_audio_context(context_id, playback)
        self._stalled.discard(context_id)
        dropped = context_id in self._dropped
        self._dropped.discard(context_id)
        if unspoken and dropped and unspoken not in self._said_again:
            self._said_again.append(unspoken)
            await self.push_error(
                f"{self._provider_name} connection dropped mid-sentence; saying the rest again"
            )
            self._to_say_again.append(unspoken)
            if not self._reconnecting:  # else once the reconnect is done: it closes new contexts
                await self._say_again()
        elif unspoken:
            await self._on_stall(context_id, unspoken)

    async def _apply_force_complete(self, context_id: str):
        # pipecat marks a context's untimed words spoken when it ends; the words of a context
        # handed to the backup voice are the backup's to speak (else they show up twice)
        if context_id not in self._abandoned:
            await super()._apply_force_complete(context_id)
            return
        frames = self._aggregated_frame_sequencer.force_complete(
            context_id, self._word_timestamp_tracker.last_pts
        )
        unsaid = (TTSTextFrame, AggregatedTextProgressFrame)
        await self._push_word_frames([f for f in frames if not isinstance(f, unsaid)])

    async def _record_context_audio_outcome(self, context_id: str, received_audio: bool):
        if context_id in self._abandoned:  # reported by _on_stall instead
            return
        await super()._record_context_audio_outcome(context_id, received_audio)

    async def _on_stall(self, context_id: str, unspoken: str) -> None:
        seconds = self._stop_frame_timeout_s
        error = ProviderTimeout(
            f"no audio for {seconds:.1f} s", provider=self._provider_name, stage="tts"
        )
        if self.has_backup is not None and self.has_backup():
            frame = TurnFailedFrame(
                error=f"{self._provider_name} stalled; falling back",
                exception=error,
                replay=TTSSpeakFrame(unspoken),
            )
            await self.push_error_frame(frame, force_treat_as_permanent=True)
        else:
            await self.push_error(
                f"{self._provider_name} stalled; text not spoken", exception=error
            )

    async def append_to_audio_context(self, context_id: str | None, frame: Any):
        """Drop late audio for a context that was handed to the backup voice."""
        if context_id in self._abandoned:
            return
        await super().append_to_audio_context(context_id, frame)
