"""Speculative start: begin the LLM at the first likely end of turn, before the turn is decided.

A turn detector waits after the user falls silent (a speech timeout, or smart-turn's model plus
its fallback), and the LLM only starts once it has decided. ``SpeculativeUserTurnStopStrategy``
wraps that detector and starts a *speculative* inference as soon as the user is silent (VAD stop)
and a transcript is in — the first likely end of turn — so the LLM's time to first token runs
during the detector's wait instead of after it.

It builds entirely on pipecat 1.14's speculation machinery:

* the inference runs against a provisional copy of the context (the user aggregator's
  ``_run_speculative_inference``): the real context is never written by a speculation;
* the LLM service's ``SpeculationGate`` holds everything the response produces (text, so no TTS
  audio either) until the turn is confirmed by ``UserStoppedSpeakingFrame``;
* a withdrawal is an ``EagerEndOfTurnCancelFrame``, broadcast ahead of anything queued: the LLM
  stops generating and the gate drops what it held.

Outcomes:

* **commit** — the detector ends the turn and the transcript is the one speculated on (per
  ``match_policy``): the turn is finalized with ``confirms_speculation=True``, which writes the
  user message once and releases the held response; no second inference runs;
* **discard** — the user speaks again (VAD start) before the decision, or the transcript changed:
  the speculation is withdrawn; a later silence speculates again, and a changed transcript at
  the decision runs a normal inference on the committed text;
* the turn ends any other way (watchdog, interruption): the speculation is withdrawn.

The turn decision itself is untouched — false and missed end-of-turn rates are the wrapped
detector's — only when the LLM starts changes. Off by default: opt in with ``speculative()``
(``speculative: true`` on a turn stage; on in ``pipelines/local.yaml``, where the knowledge base's
``SpeechPreviewFrame`` lets Piper make the held answer's first audio during the detector's wait).
"""

from __future__ import annotations

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.turns.types import ProcessFrameResult, UserTurnSpeculation
from pipecat.turns.user_stop import BaseUserTurnStopStrategy, EagerMatchPolicy, NormalizedMatch
from pipecat.turns.user_stop.base_user_turn_stop_strategy import UserTurnStoppedParams
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from presence.framework.frames import revise_text
from presence.processors.turns.wrapping import WrappingUserTurnStopStrategy


class SpeculativeUserTurnStopStrategy(WrappingUserTurnStopStrategy):
    """Wraps a stop strategy and speculates at every silence that follows a transcript.

    Args:
        inner: The detector that decides the turn (speech timeout, smart-turn, ...).
        match_policy: Whether the committed transcript still matches the speculated one
            (default: ``NormalizedMatch``, ignoring case and punctuation).
        **kwargs: Passed to ``BaseUserTurnStopStrategy``.

    Attributes:
        started: Speculations started.
        committed: Speculations whose response was released.
        discarded: Speculations withdrawn.
    """

    def __init__(self, inner: BaseUserTurnStopStrategy, *, match_policy: EagerMatchPolicy | None = None,
                 **kwargs):  # fmt: skip
        super().__init__(inner, **kwargs)
        self._match = match_policy or NormalizedMatch()
        self._text = ""
        self._silent = False
        self._speculation: UserTurnSpeculation | None = None
        self._decided = False  # the detector decided while handling the current frame
        self.started = self.committed = self.discarded = 0

    async def handle_user_turn_started(self):
        """A new turn: forget the last one's text."""
        await self._withdraw("a new turn started")
        self._text, self._silent, self._decided = "", False, False
        await self._inner.handle_user_turn_started()

    async def handle_user_turn_stopped(self):
        """The turn ended: an unresolved speculation (watchdog, interruption) is withdrawn."""
        await self._withdraw("the turn ended without confirming it")
        self._text, self._silent = "", False
        await self._inner.handle_user_turn_stopped()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult | None:
        """Track silence and text, speculate or withdraw, then let the detector decide."""
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._silent = False
            await self._withdraw("the user kept talking")
        elif isinstance(frame, InterimTranscriptionFrame):
            await self._withdraw("more speech is being transcribed")
        elif isinstance(frame, TranscriptionFrame):
            self._text = revise_text(self._text, frame)
            if self._speculation is not None and not self._match.matches(
                self._speculation.text, self._text
            ):
                await self._withdraw("the transcript grew")
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._silent = True
        result = await self._inner.process_frame(frame)
        # Speculate after the detector saw the frame, so one that decides at once (a transcript
        # arriving after its timer) finalizes normally rather than speculating first.
        if self._silent and self._text and self._speculation is None and not self._decided:
            await self._speculate()
        self._decided = False
        return result

    async def _speculate(self) -> None:
        self._speculation = UserTurnSpeculation(text=self._text)
        self.started += 1
        logger.debug(f"{self}: speculative start on [{self._text}]")
        await self.trigger_user_turn_inference_triggered(speculation=self._speculation)

    async def _withdraw(self, reason: str) -> None:
        if self._speculation is None:
            return
        self._speculation = None
        self.discarded += 1
        logger.debug(f"{self}: withdrawing the speculative response ({reason})")
        await self.trigger_user_turn_speculation_cancelled()

    # -- the detector's events ------------------------------------------------------------------

    async def _on_inner_inference(self, _inner, speculation):
        """The detector wants inference: skip it when the speculation answers the same text."""
        self._decided = True
        if speculation is not None:  # the detector speculates itself: pass it through
            await self.trigger_user_turn_inference_triggered(speculation=speculation)
            return
        if self._speculation is not None and self._match.matches(
            self._speculation.text, self._text
        ):
            return  # the finalization below confirms it instead
        await self._withdraw("the committed transcript differs")
        await self.trigger_user_turn_inference_triggered()

    async def _on_inner_stopped(self, _inner, params: UserTurnStoppedParams):
        """The detector ended the turn: confirm the speculation when it still applies."""
        self._decided = True
        speculation, self._speculation = self._speculation, None
        confirms = params.confirms_speculation
        if speculation is not None and self._match.matches(speculation.text, self._text):
            self.committed += 1
            confirms = True
        elif speculation is not None:
            self.discarded += 1
            await self.trigger_user_turn_speculation_cancelled()
        await self.trigger_user_turn_finalized(
            enable_user_speaking_frames=params.enable_user_speaking_frames,
            confirms_speculation=confirms,
        )


def speculative(
    strategies: UserTurnStrategies, *, match_policy: EagerMatchPolicy | None = None
) -> UserTurnStrategies:
    """``strategies`` with every stop strategy wrapped in ``SpeculativeUserTurnStopStrategy``."""
    stop = [
        SpeculativeUserTurnStopStrategy(s, match_policy=match_policy) for s in strategies.stop or []
    ]
    return UserTurnStrategies(start=strategies.start, stop=stop)
