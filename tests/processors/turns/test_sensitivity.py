"""``conversation.sensitivity`` in a live pipeline: the VAD and the turn change, nothing else.

Real pipecat objects as ``pipelines/local.yaml`` builds them (Silero, smart-turn with the floor
and speculative start), behind pipecat's own user aggregator: the interrupt sensitivity reaches
the VAD through pipecat's ``VADParamsUpdateFrame``, the pause sensitivity the smart-turn analyzer
under presence's wrappers.
"""

from __future__ import annotations

from pipecat.frames.frames import InputTransportMessageFrame, OutputTransportMessageUrgentFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import run_test

import presence
from presence.processors.interactions.processor import InteractionsProcessor
from presence.processors.turns.sensitivity import TurnControls, _innermost


def sensitivity(**properties) -> InputTransportMessageFrame:
    return InputTransportMessageFrame(
        message={
            "message_type": "conversation",
            "event_type": "conversation.sensitivity",
            "properties": properties,
        }  # fmt: skip
    )


def local_turn_stages():
    vad = presence.stage("vad", "silero", stop_secs=0.2)
    turn = presence.stage("turn", "smart-turn", stop_secs=1.0, speculative=True,
                          floor={"hold_s": 0.65, "complete_s": 0.2})  # fmt: skip
    return vad, turn


def smart_turn(turn):
    return _innermost(turn.stop[0])._turn_analyzer


async def run_pipeline(vad, turn, frames):
    interactions = InteractionsProcessor(turn_controls=TurnControls(vad, turn))
    user = LLMUserAggregator(
        LLMContext(), params=LLMUserAggregatorParams(vad_analyzer=vad, user_turn_strategies=turn)
    )
    down, _ = await run_test(Pipeline([interactions, user]), frames_to_send=frames)
    return [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]


async def test_interrupt_and_pause_sensitivity_change_the_vad_and_the_turn_in_the_call():
    vad, turn = local_turn_stages()
    assert vad.params.start_secs == 0.2 and smart_turn(turn).params.stop_secs == 1.0
    errors = await run_pipeline(vad, turn, [sensitivity(
        participant_interrupt_sensitivity="low", participant_pause_sensitivity="high")])  # fmt: skip
    assert errors == []
    # low interrupt sensitivity: more of the user's voice is needed to interrupt
    assert vad.params.start_secs == 0.5
    assert vad.params.stop_secs == 0.2  # the rest of the VAD's settings stay
    # a pause-sensitive replica is impatient: the silence fallback shortens
    assert smart_turn(turn).params.stop_secs == 0.6


async def test_one_sensitivity_leaves_the_other_alone_and_superlow_applies_as_low():
    vad, turn = local_turn_stages()
    await run_pipeline(vad, turn, [sensitivity(participant_pause_sensitivity="superlow")])
    assert smart_turn(turn).params.stop_secs == 2.0  # patient
    assert vad.params.start_secs == 0.2


async def test_a_session_without_a_turn_model_says_what_it_could_not_change():
    vad, _ = local_turn_stages()
    errors = await run_pipeline(vad, None, [sensitivity(
        participant_interrupt_sensitivity="high", participant_pause_sensitivity="low")])  # fmt: skip
    assert vad.params.start_secs == 0.1  # what could change did
    (error,) = errors
    assert error["event_type"] == "conversation.error"
    assert error["properties"]["event_type"] == "conversation.sensitivity"
    assert "no pause setting" in error["properties"]["error"]


def test_speech_timeout_patience_follows_the_pause_sensitivity():
    turn = presence.stage("turn", "speech-timeout", user_speech_timeout=0.6)
    assert TurnControls(None, turn).set_pause("high") is None
    assert _innermost(turn.stop[0])._user_speech_timeout == 0.4
