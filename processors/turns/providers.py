"""Registry entries for voice activity detection and turn-taking.

Both build pipecat components that the user context aggregator runs: a ``VADAnalyzer`` (``vad``)
and ``UserTurnStrategies`` (``turn``).
"""

from __future__ import annotations

from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import (
    SpeechTimeoutUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pydantic import Field, model_validator

from presence.framework.registry import STAGE_INSERTS, BuildContext, StageParams, register
from presence.processors.audio.quiet_gain import QuietVoiceGain
from presence.processors.turns.floor import FloorEngine, FloorUserTurnStopStrategy
from presence.processors.turns.resume_gate import ResumeGate
from presence.processors.turns.speculative import speculative


class SileroParams(StageParams):
    """Silero VAD (bundled ONNX model, 16 kHz).

    Attributes:
        confidence: Minimum voice probability of a 32 ms window.
        start_secs: Voice needed before the user counts as speaking.
        stop_secs: Silence needed before the user counts as stopped.
        min_volume: Minimum normalised volume to count as voice.
        quiet_gain_db: The most gain given to a user heard too quietly (a far or low-gain
            microphone) before the VAD and STT hear them; speech at ordinary levels is never
            changed (``presence.processors.audio.quiet_gain``). 0 turns it off.
    """

    confidence: float = Field(0.7, ge=0.0, le=1.0)
    start_secs: float = Field(0.2, ge=0.0, le=2.0)
    stop_secs: float = Field(0.2, ge=0.0, le=5.0)
    min_volume: float = Field(0.6, ge=0.0, le=1.0)
    quiet_gain_db: float = Field(30.0, ge=0.0, le=40.0)


@register("vad", "silero", SileroParams, summary="Silero VAD bundled with pipecat (offline)")
def build_silero(params: SileroParams, ctx: BuildContext) -> SileroVADAnalyzer:
    """Build pipecat's Silero analyzer with the given thresholds (and the quiet voice gain)."""
    if params.quiet_gain_db > 0:
        gain = QuietVoiceGain(max_gain_db=params.quiet_gain_db)
        ctx.extras.setdefault(STAGE_INSERTS, {}).setdefault("after_input", []).append(gain)
    return SileroVADAnalyzer(
        sample_rate=ctx.audio_in_sample_rate,
        params=VADParams(**params.model_dump(exclude={"quiet_gain_db"})),
    )


class FloorParams(StageParams):
    """Transcript-aware floor logic on top of smart-turn (``presence.processors.turns.floor``).

    Attributes:
        complete_s: Silence after the VAD's stop that a finished sentence smart-turn judged
            complete still waits before the turn ends (at most ``grace_s``): a pause after a whole question is often followed by
            more ("do I need a graphics card … to run it"), and an answer that starts later is
            more often held back unheard when the user goes on (``resume_hold_s``).
        grace_s: Silence after which a finished-looking sentence ends the turn although smart-turn
            judged it incomplete (instead of waiting for ``stop_secs``).
        min_words: Words a transcript needs to count as a finished sentence.
        hold_s: Silence for which a transcript ending in a hanging word ("and", "the", "to", "um")
            holds the floor although smart-turn judged it complete; default ``stop_secs``.
        adapt: Hold longer for a user who resumed right after the persona started (up to
            ``adapt_max_s`` more, ``adapt_step_s`` per resumed turn).
        adapt_step_s: Extra hold per resumed turn.
        adapt_max_s: Upper bound of the extra hold.
        statement_words: A statement shorter than this (neither a question nor a request: "well
            done", often a misheard start) holds the floor like unfinished words; 0: off.
        context_first: A sentence that tells about the user and asks nothing yet ("I run a small
            law office.") holds the floor like unfinished words, whatever its length.
        doubt_p: smart-turn probability below which a finished-looking sentence waits
            ``doubt_s`` rather than ``grace_s``: at a pause after "uh" Whisper writes no "uh" and
            often closes the clause with "?", while smart-turn still hears the user going on;
            0 turns the rule off.
        doubt_s: That wait; at least ``grace_s``, at most ``hold_s`` (a longer one is cut to
            it); unset, ``hold_s``: a sentence smart-turn is sure goes on holds like unfinished
            words.
        resume_hold_s: Hold the start of an answer up to this long when the user's voice comes
            back within a second of the turn's end, and drop it if the user goes on speaking (see
            ``presence.processors.turns.resume_gate``); 0 turns the gate off.
    """

    complete_s: float = Field(0.0, ge=0.0, le=5.0)
    grace_s: float = Field(0.35, ge=0.0, le=5.0)
    min_words: int = Field(3, ge=1, le=20)
    hold_s: float | None = Field(None, gt=0.0, le=10.0)
    adapt: bool = False
    adapt_step_s: float = Field(0.2, gt=0.0, le=2.0)
    adapt_max_s: float = Field(0.6, ge=0.0, le=5.0)
    statement_words: int = Field(8, ge=0, le=50)
    context_first: bool = True
    resume_hold_s: float = Field(0.35, ge=0.0, le=2.0)
    doubt_p: float = Field(0.0, ge=0.0, le=0.5)
    doubt_s: float | None = Field(None, ge=0.0, le=5.0)

    @model_validator(mode="after")
    def _complete_within_grace(self) -> FloorParams:
        if self.complete_s > self.grace_s:
            raise ValueError(
                f"complete_s ({self.complete_s}) cannot exceed grace_s ({self.grace_s}): a "
                "sentence smart-turn judged complete would wait longer than one it judged "
                "incomplete; raise grace_s too"
            )
        if self.doubt_s is not None and self.doubt_s < self.grace_s:
            raise ValueError(
                f"doubt_s ({self.doubt_s}) cannot be below grace_s ({self.grace_s}): it is the "
                "longer wait of a finished sentence smart-turn doubts; raise it or lower grace_s"
            )
        return self


class SmartTurnStageParams(StageParams):
    """smart-turn v3.2 end-of-turn model (bundled ONNX, CPU).

    Attributes:
        stop_secs: Silence after which the turn ends even if the model judged it incomplete.
        cpu_count: ONNX runtime threads.
        wait_for_transcript: End the turn only once a transcript is in hand.
        speculative: Start the LLM at the first likely end of turn and commit or withdraw it
            when the turn is decided (see ``presence.processors.turns.speculative``).
        floor: Our transcript-aware floor logic over smart-turn's verdict: ``true`` for the
            defaults, or its settings (``FloorParams``); off by default.
    """

    stop_secs: float = Field(1.0, gt=0.0, le=10.0)
    cpu_count: int = Field(1, ge=1, le=16)
    wait_for_transcript: bool = True
    speculative: bool = False
    floor: FloorParams | bool = False


def floor_engine(params: SmartTurnStageParams) -> FloorEngine | None:
    """The floor's decision engine for ``params`` (None when ``floor`` is off)."""
    floor = FloorParams() if params.floor is True else params.floor
    if not floor:
        return None
    hold_s = params.stop_secs if floor.hold_s is None else floor.hold_s
    grace_s = min(floor.grace_s, hold_s)
    return FloorEngine(
        complete_s=min(floor.complete_s, grace_s), grace_s=grace_s, hold_s=hold_s,
        min_words=floor.min_words,
        adapt=floor.adapt, adapt_step_s=floor.adapt_step_s, adapt_max_s=floor.adapt_max_s,
        statement_words=floor.statement_words,
        context_first=floor.context_first,
        doubt_p=floor.doubt_p,
        doubt_s=hold_s if floor.doubt_s is None else min(max(floor.doubt_s, grace_s), hold_s),
    )  # fmt: skip


@register(
    "turn",
    "smart-turn",
    SmartTurnStageParams,
    summary="smart-turn v3.2 end-of-turn model (offline)",
)
def build_smart_turn(params: SmartTurnStageParams, ctx: BuildContext) -> UserTurnStrategies:
    """Stop strategy driven by pipecat's local smart-turn v3 analyzer."""
    analyzer = LocalSmartTurnAnalyzerV3(
        cpu_count=params.cpu_count, params=SmartTurnParams(stop_secs=params.stop_secs)
    )
    stop = TurnAnalyzerUserTurnStopStrategy(
        turn_analyzer=analyzer, wait_for_transcript=params.wait_for_transcript
    )
    engine = floor_engine(params)
    if engine is not None:
        stop = FloorUserTurnStopStrategy(stop, engine)
        floor = FloorParams() if params.floor is True else params.floor
        if floor.resume_hold_s > 0:
            gate = ResumeGate(hold_s=floor.resume_hold_s, window_s=engine.resume_window_s)
            ctx.extras.setdefault(STAGE_INSERTS, {}).setdefault("before_renderer", []).append(gate)
    strategies = UserTurnStrategies(stop=[stop])
    return speculative(strategies) if params.speculative else strategies


class SpeechTimeoutParams(StageParams):
    """Fixed silence window after VAD stop.

    Attributes:
        user_speech_timeout: Seconds the user may pause and still hold the floor.
        speculative: Start the LLM at VAD stop and commit or withdraw it at the turn decision.
    """

    user_speech_timeout: float = Field(0.6, ge=0.0, le=5.0)
    speculative: bool = False


@register(
    "turn",
    "speech-timeout",
    SpeechTimeoutParams,
    summary="end the turn after a fixed silence once a transcript is in",
)
def build_speech_timeout(params: SpeechTimeoutParams, ctx: BuildContext) -> UserTurnStrategies:
    """Stop strategy with pipecat's speech-timeout timers."""
    strategies = UserTurnStrategies(
        stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=params.user_speech_timeout)]
    )
    return speculative(strategies) if params.speculative else strategies
