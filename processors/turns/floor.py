"""Floor logic: a transcript-aware end-of-turn decision on top of smart-turn.

smart-turn judges the audio only. ``FloorEngine`` adds what the transcript says, as a pure decision
over smart-turn's verdict (and probability when known), the silence since VAD stop and the user's
words so far:

* **unfinished words** — the words end in a conjunction, preposition, article, possessive, "I" or
  a filler ("and", "to", "the", "my", "um"), trail off ("so how do I..."), or are a question still
  missing its verb or object ("which transports", "how does the renderer", "can I use"; see
  ``syntax.unfinished``): the user is mid-sentence, so the floor is held until ``hold_s`` of
  silence even when smart-turn says complete;
* **neither a question nor a request** ("well done", "good night, Logan" — with a guide, most
  often the misheard start of a question, see ``intent.asks``): the floor is held up to ``hold_s``
  as for unfinished words, unless the user has said ``statement_words`` words or more;
* **context first** — the last sentence tells about the user and asks nothing yet ("I run a small
  law office, and client chats can't leave our building", see ``intent.sets_context``): the
  question usually follows, so the floor is held up to ``hold_s`` whatever its length;
* **smart-turn complete**, no hanging word: the turn ends at once (plus the adaptive extra hold);
* **smart-turn incomplete** but the words read as a finished sentence (at least ``min_words``, or
  ending in sentence punctuation, and not unfinished as above): the turn ends after ``grace_s`` of
  silence instead of smart-turn's silence fallback, or after ``doubt_s`` when smart-turn's
  probability is below ``doubt_p`` (the audio says "goes on" although the words read finished:
  Whisper drops the "uh" a user pauses on, and closes the clause before it with "?");
* otherwise nothing is decided here: smart-turn's fallback (``stop_secs``) ends the turn.

A user who starts speaking again within ``resume_window_s`` of the turn ending (a false end of turn:
the persona talked over them) is finishing that sentence: the words of the ended turn count towards
``min_words`` for the fragment that follows. With ``adapt`` on, such a resumption also earns
``adapt_step_s`` more hold on every later decision, up to ``adapt_max_s``; each turn that is not
resumed gives back a quarter step.

``FloorUserTurnStopStrategy`` wraps pipecat's ``TurnAnalyzerUserTurnStopStrategy``: the analyzer
and its transcript gating are pipecat's; the wrapper holds the analyzer's decision back or ends the
turn early, as the engine says. It reads smart-turn's verdict from the ``TurnMetricsData`` the
analyzer strategy pushes, and the transcript from the interim and final transcriptions that reach
the user aggregator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InterimTranscriptionFrame,
    MetricsFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TurnMetricsData
from pipecat.processors.frame_processor import FrameDirection
from pipecat.turns.types import ProcessFrameResult
from pipecat.turns.user_stop import BaseUserTurnStopStrategy
from pipecat.turns.user_stop.base_user_turn_stop_strategy import UserTurnStoppedParams

from presence.framework.frames import VoiceHintFrame, revise_text
from presence.processors.turns.intent import asks, sets_context
from presence.processors.turns.syntax import HANGING_WORDS, unfinished, words_of
from presence.processors.turns.wrapping import WrappingUserTurnStopStrategy

__all__ = ["HANGING_WORDS", "FloorDecision", "FloorEngine", "FloorUserTurnStopStrategy", "words_of"]


@dataclass(frozen=True)
class FloorDecision:
    """What to do with the floor now.

    Attributes:
        end: End the user's turn now.
        recheck_s: Silence (seconds since VAD stop) at which to ask again; None when only new
            evidence (a verdict, a transcript, the silence fallback) can change the answer.
        reason: Why, for logs.
    """

    end: bool
    recheck_s: float | None
    reason: str


class FloorEngine:
    """The end-of-turn decision from smart-turn's verdict, the silence and the transcript.

    Args:
        complete_s: Silence a finished sentence that smart-turn judged complete still waits
            before the turn ends (a pause after a whole question is often followed by more).
        grace_s: Silence after which a finished-looking sentence ends the turn although smart-turn
            judged it incomplete.
        hold_s: Silence for which a transcript ending in a hanging word holds the floor.
        min_words: Words a transcript needs to count as a finished sentence.
        adapt: Lengthen every hold after the user resumed right after a turn ended.
        adapt_step_s: Extra hold added per resumed turn.
        adapt_max_s: Upper bound of the extra hold.
        resume_window_s: Speech within this long after a turn ended counts as a resumed turn.
        hanging_words: Words a sentence cannot end on.
        statement_words: A statement (neither a question nor a request) shorter than this holds
            the floor like unfinished words; 0 turns the rule off.
        context_first: Hold the floor like unfinished words after a sentence that tells about
            the user and asks nothing yet.
        doubt_p: smart-turn probability below which a finished-looking sentence waits
            ``doubt_s`` instead of ``grace_s``; 0 turns the rule off.
        doubt_s: That wait (between ``grace_s`` and ``hold_s``).
    """

    def __init__(self, *, complete_s: float = 0.0, grace_s: float = 0.35, hold_s: float = 1.0,
                 min_words: int = 3,
                 adapt: bool = False, adapt_step_s: float = 0.2, adapt_max_s: float = 0.6,
                 resume_window_s: float = 1.0, statement_words: int = 8, context_first: bool = True,
                 doubt_p: float = 0.0, doubt_s: float | None = None,
                 hanging_words: frozenset[str] = HANGING_WORDS):  # fmt: skip
        doubt_s = grace_s if doubt_s is None else doubt_s
        if not 0 <= complete_s <= grace_s <= doubt_s <= hold_s:
            raise ValueError(
                f"need 0 <= complete_s ({complete_s}) <= grace_s ({grace_s}) <= doubt_s "
                f"({doubt_s}) <= hold_s ({hold_s})"
            )
        if not 0 <= doubt_p <= 0.5:
            raise ValueError(f"doubt_p must be within [0, 0.5], got {doubt_p}")
        self.doubt_p, self.doubt_s = doubt_p, doubt_s
        self.complete_s = complete_s
        self.grace_s, self.hold_s, self.min_words = grace_s, hold_s, min_words
        self.adapt, self.adapt_step_s, self.adapt_max_s = adapt, adapt_step_s, adapt_max_s
        self.resume_window_s = resume_window_s
        self.statement_words = statement_words
        self.context_first = context_first
        self.hanging_words = hanging_words
        self.extra_s = 0.0
        self._ended = ""  # the words of the turn that ended last
        self._carried = ""  # the ended turn's words, while the user is finishing its sentence

    def decide(self, complete: bool | None, probability: float | None, silence_s: float,
               transcript: str) -> FloorDecision:  # fmt: skip
        """Decide the floor.

        Args:
            complete: smart-turn's verdict on the last silence; None when it has not run.
            probability: smart-turn's probability that the turn is complete, when known (read
                only by the ``doubt_p`` rule).
            silence_s: Seconds since VAD stop.
            transcript: The user's words so far this turn (finals and the latest interim).

        Returns:
            The decision.
        """
        words = words_of(transcript)
        if not words:
            return FloorDecision(False, None, "no transcript yet")
        said = f"{self._carried} {transcript}".strip()
        reason = unfinished(said)
        if reason is None and words[-1] in self.hanging_words - HANGING_WORDS:
            reason = f"hanging '{words[-1]}'"  # a word this engine was given on top
        if reason is None and len(words_of(said)) < self.statement_words and not asks(said):
            reason = "not a question"
        if reason is None and self.context_first and sets_context(said):
            reason = "context first"
        if reason:
            return self._after(self.hold_s + self.extra_s, silence_s, reason)
        if complete:
            return self._after(self.complete_s + self.extra_s, silence_s, "complete")
        finished = transcript.rstrip().endswith(("?", ".", "!"))
        if complete is False and (
            finished or len(words_of(self._carried)) + len(words) >= self.min_words
        ):
            if probability is not None and probability < self.doubt_p:
                return self._after(self.doubt_s + self.extra_s, silence_s, "finished, audio unsure")
            return self._after(self.grace_s + self.extra_s, silence_s, "finished sentence")
        return FloorDecision(False, None, "left to smart-turn")

    @staticmethod
    def _after(wait_s: float, silence_s: float, why: str) -> FloorDecision:
        if silence_s >= wait_s:
            return FloorDecision(True, None, f"{why}, {silence_s:.2f}s silent")
        return FloorDecision(False, wait_s, f"{why}, holding to {wait_s:.2f}s")

    def turn_ended(self, transcript: str) -> None:
        """A turn ended with ``transcript`` (words carried over from a resumed turn included)."""
        self._ended = f"{self._carried} {transcript}".strip()

    def heard_again(self, revises: str) -> None:
        """The STT heard the carried words again within this turn's transcript: drop them here."""
        revises = revises.strip()
        if revises and self._carried.endswith(revises):
            self._carried = self._carried[: len(self._carried) - len(revises)].strip()

    def user_spoke_after_turn(self, gap_s: float) -> None:
        """The user spoke ``gap_s`` after their last turn ended: carry its words, adapt the hold."""
        resumed = gap_s <= self.resume_window_s
        self._carried = self._ended if resumed else ""
        if not self.adapt:
            return
        if resumed:
            self.extra_s = min(self.adapt_max_s, self.extra_s + self.adapt_step_s)
        else:
            self.extra_s = max(0.0, self.extra_s - self.adapt_step_s / 4)


class FloorUserTurnStopStrategy(WrappingUserTurnStopStrategy):
    """Wraps a smart-turn stop strategy with ``FloorEngine``'s decision.

    Args:
        inner: pipecat's ``TurnAnalyzerUserTurnStopStrategy`` (or any stop strategy that pushes
            ``TurnMetricsData`` with its verdict).
        engine: The decision; default settings when None.
        clock: Monotonic seconds (injectable for tests).
        **kwargs: Passed to ``BaseUserTurnStopStrategy``.

    Attributes:
        held: Decisions of the inner strategy held back for a hanging word or the adaptive hold.
        early: Turns ended before smart-turn's silence fallback on a finished sentence.
    """

    def __init__(self, inner: BaseUserTurnStopStrategy, engine: FloorEngine | None = None, *,
                 clock: Callable[[], float] = time.monotonic, **kwargs):  # fmt: skip
        super().__init__(inner, **kwargs)
        self.engine = engine or FloorEngine()
        self._clock = clock
        self._final = ""  # final transcripts this turn
        self._interim = ""  # the latest interim since the last final
        self._fresh_final = False  # a final arrived since the user last started speaking
        self._stopped_at: float | None = None  # VAD stop of the current silence
        self._vad_stop_s = 0.0  # the VAD's stop_secs (its stop comes this long after the voice)
        self._complete: bool | None = None
        self._probability: float | None = None
        self._held: UserTurnStoppedParams | None = None
        self._timer: asyncio.Task | None = None
        self._ended_at: float | None = None
        self._voice_back = False  # the STT heard the voice come back during this silence
        self.held = self.early = 0

    @property
    def transcript(self) -> str:
        """The user's words so far this turn."""
        return f"{self._final} {self._interim}".strip()

    async def cleanup(self):
        """Stop the pending recheck, then clean up both."""
        await self._cancel_timer()
        await super().cleanup()

    async def handle_user_turn_started(self):
        """A new turn: forget the last one's words."""
        await self._reset()
        await self._inner.handle_user_turn_started()

    async def handle_user_turn_stopped(self):
        """The turn ended (by us or otherwise): remember when, for the adaptive hold."""
        self._ended_at = self._clock()
        self.engine.turn_ended(self.transcript)
        await self._reset()
        await self._inner.handle_user_turn_stopped()

    async def _reset(self) -> None:
        self._final = self._interim = ""
        self._fresh_final = False
        self._stopped_at = self._complete = self._probability = None
        self._held = None
        self._voice_back = False
        await self._cancel_timer()

    async def process_frame(self, frame: Frame) -> ProcessFrameResult | None:
        """Track speech, silence and words, let the wrapped strategy see the frame, then decide."""
        if isinstance(frame, VADUserStartedSpeakingFrame):
            if self._ended_at is not None:
                self.engine.user_spoke_after_turn(self._clock() - self._ended_at)
                self._ended_at = None
            self._stopped_at = self._complete = self._probability = None
            self._fresh_final, self._held = False, None
            await self._cancel_timer()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._stopped_at = self._clock()
            self._vad_stop_s = getattr(frame, "stop_secs", 0.0) or 0.0
            self._voice_back = False
        elif isinstance(frame, VoiceHintFrame) and self._stopped_at is not None:
            self._voice_back = frame.voiced
            if frame.voiced:
                await self._cancel_timer()  # the user may be going on: decide nothing yet
            else:
                # the STT still heard the voice after the VAD stopped (a soft "uh" the VAD did
                # not count): the silence starts where the voice really ended, as if the VAD
                # had stopped its usual time after that
                heard_until = self._clock() - frame.quiet_s
                self._stopped_at = max(self._stopped_at, heard_until + self._vad_stop_s)
                await self._evaluate()
        elif isinstance(frame, TranscriptionFrame):
            self.engine.heard_again(getattr(frame, "revises", ""))
            self._final = revise_text(self._final, frame)
            self._interim, self._fresh_final = "", True
        elif isinstance(frame, InterimTranscriptionFrame):
            self._interim, self._fresh_final = frame.text or "", False
        result = await self._inner.process_frame(frame)
        if isinstance(frame, (VADUserStoppedSpeakingFrame, TranscriptionFrame,
                              InterimTranscriptionFrame)):  # fmt: skip
            await self._evaluate()
        return result

    async def _evaluate(self) -> None:
        """Ask the engine, unless the wrapped strategy's own decision is what will end the turn."""
        if self._stopped_at is None or self._voice_back:
            return
        if self._held is None and (self._complete is not False or not self._fresh_final):
            # smart-turn said complete (the wrapped strategy ends the turn once its transcript is
            # in, and we judge that decision when it comes) or has not spoken; or the words of
            # this utterance are not final yet
            return
        decision = self.engine.decide(
            self._complete, self._probability, self._clock() - self._stopped_at, self.transcript
        )
        logger.debug(f"{self}: p={self._probability}; {decision.reason}")
        if decision.end:
            await self._end()
        elif decision.recheck_s is not None:
            await self._recheck_at(self._stopped_at + decision.recheck_s)

    async def _end(self) -> None:
        held, self._held = self._held, None
        await self._cancel_timer()
        if held is None:
            self.early += 1
        await self.trigger_user_turn_stopped(
            enable_user_speaking_frames=held.enable_user_speaking_frames if held else None
        )

    async def _recheck_at(self, when: float) -> None:
        await self._cancel_timer()
        self._timer = self.task_manager.create_task(self._wait(when), f"{self}::recheck")

    async def _wait(self, when: float) -> None:
        try:
            await asyncio.sleep(max(0.0, when - self._clock()))
        except asyncio.CancelledError:
            return
        self._timer = None
        await self._evaluate()

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self.task_manager.cancel_task(timer)

    # -- the wrapped strategy's events ----------------------------------------------------------

    async def _forward_push(self, _inner, frame: Frame, direction: FrameDirection):
        if isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TurnMetricsData):
                    self._complete, self._probability = data.is_complete, data.probability
        await super()._forward_push(_inner, frame, direction)

    async def _on_inner_inference(self, _inner, speculation):
        """Inference comes with the turn end (below); a speculation is passed through."""
        if speculation is not None:
            await self.trigger_user_turn_inference_triggered(speculation=speculation)

    async def _on_inner_stopped(self, _inner, params: UserTurnStoppedParams):
        """The wrapped strategy ended the turn: let it, or hold the floor a while longer."""
        if self._held is not None:
            return  # already holding this silence's decision
        if self._voice_back:
            self._held = params  # decided when the voice is quiet again, or dropped at VAD start
            self.held += 1
            return
        if self._stopped_at is None or not self._complete:
            # no VAD silence (a transcript-only turn) or smart-turn's silence fallback: final
            await self.trigger_user_turn_stopped(
                enable_user_speaking_frames=params.enable_user_speaking_frames
            )
            return
        decision = self.engine.decide(
            self._complete, self._probability, self._clock() - self._stopped_at, self.transcript
        )
        logger.debug(f"{self}: smart-turn says complete (p={self._probability}); {decision.reason}")
        if decision.end:
            await self.trigger_user_turn_stopped(
                enable_user_speaking_frames=params.enable_user_speaking_frames
            )
            return
        self._held = params
        self.held += 1
        await self._recheck_at(self._stopped_at + (decision.recheck_s or 0.0))
