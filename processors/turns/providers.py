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
from pydantic import Field

from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.turns.speculative import speculative


class SileroParams(StageParams):
    """Silero VAD (bundled ONNX model, 16 kHz).

    Attributes:
        confidence: Minimum voice probability of a 32 ms window.
        start_secs: Voice needed before the user counts as speaking.
        stop_secs: Silence needed before the user counts as stopped.
        min_volume: Minimum normalised volume to count as voice.
    """

    confidence: float = Field(0.7, ge=0.0, le=1.0)
    start_secs: float = Field(0.2, ge=0.0, le=2.0)
    stop_secs: float = Field(0.2, ge=0.0, le=5.0)
    min_volume: float = Field(0.6, ge=0.0, le=1.0)


@register("vad", "silero", SileroParams, summary="Silero VAD bundled with pipecat (offline)")
def build_silero(params: SileroParams, ctx: BuildContext) -> SileroVADAnalyzer:
    """Build pipecat's Silero analyzer with the given thresholds."""
    return SileroVADAnalyzer(
        sample_rate=ctx.audio_in_sample_rate,
        params=VADParams(**params.model_dump()),
    )


class SmartTurnStageParams(StageParams):
    """smart-turn v3.2 end-of-turn model (bundled ONNX, CPU).

    Attributes:
        stop_secs: Silence after which the turn ends even if the model judged it incomplete.
        cpu_count: ONNX runtime threads.
        wait_for_transcript: End the turn only once a transcript is in hand.
        speculative: Start the LLM at the first likely end of turn and commit or withdraw it
            when the turn is decided (see ``presence.processors.turns.speculative``).
    """

    stop_secs: float = Field(1.0, gt=0.0, le=10.0)
    cpu_count: int = Field(1, ge=1, le=16)
    wait_for_transcript: bool = True
    speculative: bool = False


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
    strategies = UserTurnStrategies(
        stop=[
            TurnAnalyzerUserTurnStopStrategy(
                turn_analyzer=analyzer, wait_for_transcript=params.wait_for_transcript
            )
        ]
    )
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
