"""Floor logic: the engine's decisions, and the stop strategy ending or holding a user turn in a user
aggregator fed scripted VAD, verdict and transcription frames."""

from __future__ import annotations

from pathlib import Path

import pytest
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer, BaseTurnParams, EndOfTurnState
from pipecat.frames.frames import (
    InterimTranscriptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TurnMetricsData
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMUserAggregator,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from presence.framework.frames import VoiceHintFrame
from presence.framework.registry import BuildContext
from presence.processors.turns.floor import FloorEngine, FloorUserTurnStopStrategy
from presence.processors.turns.providers import SmartTurnStageParams, build_smart_turn

# -- the engine ---------------------------------------------------------------------------------


def test_hanging_word_holds_the_floor_although_smart_turn_says_complete():
    engine = FloorEngine(grace_s=0.3, hold_s=1.0)
    for text in ("how do I swap the", "tell me about", "I want a coffee and", "so um"):
        held = engine.decide(True, 0.9, 0.05, text)
        assert not held.end and held.recheck_s == pytest.approx(1.0), text
    # the hold is bounded: a user who really stopped on "and" gets the turn ended
    assert engine.decide(True, 0.9, 1.0, "coffee and").end


def test_complete_verdict_without_hanging_word_ends_at_once():
    engine = FloorEngine()
    assert engine.decide(True, 0.8, 0.0, "what is presence").end
    assert engine.decide(True, 0.6, 0.0, "Swap a provider?").end  # case and punctuation ignored


def test_a_complete_verdict_waits_complete_s_and_cannot_outwait_the_grace():
    engine = FloorEngine(complete_s=0.45, grace_s=0.45, hold_s=1.0)
    early = engine.decide(True, 0.9, 0.25, "do I need a graphics card?")
    assert not early.end and early.recheck_s == pytest.approx(0.45)
    assert engine.decide(True, 0.9, 0.45, "do I need a graphics card?").end
    with pytest.raises(ValueError, match="complete_s"):
        FloorEngine(complete_s=0.5, grace_s=0.35)
    with pytest.raises(ValueError, match="raise grace_s"):
        SmartTurnStageParams(floor={"complete_s": 0.5, "grace_s": 0.35})


def test_finished_sentence_ends_after_the_grace_not_the_fallback():
    engine = FloorEngine(grace_s=0.35, hold_s=1.0, min_words=3)
    early = engine.decide(False, 0.2, 0.1, "how do I run the latency benchmark")
    assert not early.end and early.recheck_s == pytest.approx(0.35)
    assert engine.decide(False, 0.2, 0.35, "how do I run the latency benchmark").end


def test_a_finished_sentence_smart_turn_is_sure_goes_on_waits_longer():
    # "Can my app get notified when a session ends, uh, | without polling?": Whisper writes no
    # "uh" and closes the clause with "?", smart-turn hears the user going on (p 0.01)
    engine = FloorEngine(grace_s=0.35, hold_s=0.65, doubt_p=0.02, doubt_s=0.55)
    text = "Can my app get notified when a session ends?"
    doubted = engine.decide(False, 0.01, 0.4, text)
    assert not doubted.end and doubted.recheck_s == pytest.approx(0.55)
    assert engine.decide(False, 0.01, 0.55, text).end  # still bounded, below hold_s
    assert engine.decide(False, 0.3, 0.4, text).end  # an ordinary doubt keeps the grace
    assert engine.decide(False, None, 0.4, text).end  # no probability: no rule
    assert FloorEngine(grace_s=0.35, hold_s=0.65).decide(False, 0.01, 0.4, text).end  # off
    with pytest.raises(ValueError, match="doubt_s"):
        FloorEngine(grace_s=0.35, hold_s=0.65, doubt_s=0.3)
    with pytest.raises(ValueError, match="doubt_s"):
        SmartTurnStageParams(floor={"grace_s": 0.35, "doubt_s": 0.2})


def test_short_or_hanging_incomplete_text_is_held():
    engine = FloorEngine(grace_s=0.35, hold_s=1.0, min_words=3)
    short = engine.decide(False, 0.2, 0.5, "presence transports")
    assert not short.end and short.recheck_s == pytest.approx(1.0)
    verbless = engine.decide(True, 0.9, 0.5, "which transports")  # held even when "complete"
    assert not verbless.end and verbless.recheck_s == pytest.approx(1.0)
    hanging = engine.decide(False, 0.2, 0.5, "how do I write a")
    assert not hanging.end and hanging.recheck_s == pytest.approx(1.0)
    assert not engine.decide(True, 0.9, 0.5, "").end  # nothing to judge without words


def test_adapt_holds_longer_after_the_user_resumed_and_relaxes_after():
    engine = FloorEngine(adapt=True, adapt_step_s=0.2, adapt_max_s=0.4, resume_window_s=1.0)
    engine.user_spoke_after_turn(0.3)  # the persona talked over the user
    assert not engine.decide(True, 0.9, 0.1, "what is presence").end
    assert engine.decide(True, 0.9, 0.2, "what is presence").end
    for _ in range(5):
        engine.user_spoke_after_turn(0.3)
    assert engine.extra_s == pytest.approx(0.4)  # bounded
    engine.user_spoke_after_turn(5.0)  # a new question much later: the hold relaxes
    assert engine.extra_s < 0.4
    fixed = FloorEngine(adapt=False)
    fixed.user_spoke_after_turn(0.3)
    assert fixed.extra_s == 0.0


def test_grace_above_hold_is_refused():
    with pytest.raises(ValueError, match="grace_s"):
        FloorEngine(grace_s=2.0, hold_s=1.0)


# -- the strategy in a user aggregator ----------------------------------------------------------


class ScriptedAnalyzer(BaseTurnAnalyzer):
    """smart-turn stand-in: the verdict of each VAD stop, in order; never a silence fallback."""

    def __init__(self, verdicts: list[tuple[bool, float]]):
        super().__init__(sample_rate=16000)
        self._verdicts = list(verdicts)

    @property
    def speech_triggered(self) -> bool:
        return False

    @property
    def params(self) -> BaseTurnParams:
        return BaseTurnParams()

    def append_audio(self, buffer: bytes, is_speech: bool) -> EndOfTurnState:
        return EndOfTurnState.INCOMPLETE

    async def analyze_end_of_turn(self):
        complete, p = self._verdicts.pop(0)
        state = EndOfTurnState.COMPLETE if complete else EndOfTurnState.INCOMPLETE
        return state, TurnMetricsData(
            processor="scripted", is_complete=complete, probability=p, e2e_processing_time_ms=1.0
        )

    def clear(self):
        pass


def _final(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "user", "", finalized=True)


async def _converse(frames, verdicts, engine: FloorEngine):
    floor = FloorUserTurnStopStrategy(
        TurnAnalyzerUserTurnStopStrategy(turn_analyzer=ScriptedAnalyzer(verdicts)), engine
    )
    context = LLMContext()
    aggregator = LLMUserAggregator(
        context,
        params=LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(stop=[floor])),
    )
    down, _ = await run_test(aggregator, frames_to_send=frames)
    stops = [f for f in down if isinstance(f, UserStoppedSpeakingFrame)]
    inferences = [f for f in down if isinstance(f, LLMContextFrame)]
    users = [m["content"] for m in context.get_messages() if m.get("role") == "user"]
    return floor, stops, inferences, users


def _utterance(text: str, *, pause_s: float):
    return [
        VADUserStartedSpeakingFrame(),
        InterimTranscriptionFrame(text, "user", ""),
        VADUserStoppedSpeakingFrame(stop_secs=0.2),
        _final(text),
        SleepFrame(sleep=pause_s),
    ]


async def test_hanging_word_keeps_the_turn_open_across_a_pause():
    # smart-turn calls "how do I swap the" complete; the user goes on after a pause far shorter
    # than the hold: one turn, one inference, with the whole sentence
    engine = FloorEngine(grace_s=0.3, hold_s=5.0)
    frames = _utterance("how do I swap the", pause_s=0.3) + _utterance("provider", pause_s=0.3)
    floor, stops, inferences, users = await _converse(frames, [(True, 0.9), (True, 0.9)], engine)
    assert floor.held == 1
    assert len(stops) == 1 and len(inferences) == 1
    assert users == ["how do I swap the provider"]


async def test_without_floor_the_same_pause_ends_the_turn_inside_the_sentence():
    frames = _utterance("how do I swap the", pause_s=0.3) + _utterance("provider", pause_s=0.3)
    strategy = TurnAnalyzerUserTurnStopStrategy(
        turn_analyzer=ScriptedAnalyzer([(True, 0.9), (True, 0.9)])
    )
    aggregator = LLMUserAggregator(
        LLMContext(),
        params=LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(stop=[strategy])),
    )
    down, _ = await run_test(aggregator, frames_to_send=frames)
    assert sum(isinstance(f, UserStoppedSpeakingFrame) for f in down) == 2


async def test_finished_sentence_ends_the_turn_before_the_fallback():
    # smart-turn calls a finished question incomplete and never falls back here: only the floor's
    # grace can end the turn, and it does while the user stays silent
    engine = FloorEngine(grace_s=0.05, hold_s=5.0)
    floor, stops, inferences, users = await _converse(
        _utterance("what does the knowledge base do", pause_s=1.0), [(False, 0.1)], engine
    )
    assert floor.early == 1
    assert len(stops) == 1 and len(inferences) == 1
    assert users == ["what does the knowledge base do"]


async def test_a_pause_smart_turn_is_sure_of_keeps_one_turn_across_a_finished_clause():
    # the first half reads finished and the grace alone would end it inside the pause
    frames = _utterance("can my app get notified when a session ends", pause_s=0.3) + _utterance(
        "without polling", pause_s=0.3
    )
    verdicts = [(False, 0.01), (False, 0.3)]
    graced = FloorEngine(grace_s=0.05, hold_s=5.0)
    _, stops, _, _ = await _converse(frames, verdicts, graced)
    assert len(stops) == 2
    doubting = FloorEngine(grace_s=0.05, hold_s=5.0, doubt_p=0.02, doubt_s=1.0)
    _, stops, inferences, users = await _converse(frames, verdicts, doubting)
    assert len(stops) == 1 and len(inferences) == 1
    assert users == ["can my app get notified when a session ends without polling"]


async def test_incomplete_short_phrase_is_not_ended_early():
    engine = FloorEngine(grace_s=0.05, hold_s=5.0, min_words=3)
    floor, stops, _, _ = await _converse(
        _utterance("which transports", pause_s=0.5), [(False, 0.1)], engine
    )
    assert floor.early == 0 and stops == []


async def test_complete_verdict_ends_the_turn_without_waiting():
    # a hold or grace of 5 s would outlast the test: the turn ends on smart-turn's verdict alone
    engine = FloorEngine(grace_s=5.0, hold_s=5.0)
    floor, stops, inferences, users = await _converse(
        _utterance("what is presence", pause_s=0.3), [(True, 0.95)], engine
    )
    assert (floor.held, floor.early) == (0, 0)
    assert len(stops) == 1 and len(inferences) == 1 and users == ["what is presence"]


# -- the YAML option ----------------------------------------------------------------------------


def test_floor_option_wraps_the_smart_turn_strategy():
    ctx = BuildContext(persona=None, base_dir=Path("."))
    off = build_smart_turn(SmartTurnStageParams(), ctx).stop[0]
    assert isinstance(off, TurnAnalyzerUserTurnStopStrategy)
    on = build_smart_turn(SmartTurnStageParams(floor=True, stop_secs=0.8), ctx).stop[0]
    assert isinstance(on, FloorUserTurnStopStrategy) and on.engine.hold_s == 0.8
    tuned = SmartTurnStageParams.model_validate({"floor": {"grace_s": 0.3, "adapt": True}})
    strategy = build_smart_turn(tuned, ctx).stop[0]
    assert strategy.engine.grace_s == 0.3 and strategy.engine.adapt
    with pytest.raises(ValueError, match="gras_s"):
        SmartTurnStageParams.model_validate({"floor": {"gras_s": 0.3}})
    # doubt_p alone holds a doubted sentence like unfinished words; doubt_s is kept within hold_s
    doubting = SmartTurnStageParams.model_validate({"floor": {"doubt_p": 0.02, "hold_s": 0.7}})
    engine = build_smart_turn(doubting, ctx).stop[0].engine
    assert engine.doubt_p == 0.02 and engine.doubt_s == 0.7
    capped = {"floor": {"doubt_p": 0.02, "doubt_s": 3.0, "hold_s": 0.7}}
    assert (
        build_smart_turn(SmartTurnStageParams.model_validate(capped), ctx).stop[0].engine.doubt_s
        == 0.7
    )


def test_fragment_after_a_resumed_turn_counts_the_ended_words():
    # "how do I write" ended too soon; the user resumed at once with "a processor": the fragment
    # finishes that sentence, so it is long enough to end after the grace
    engine = FloorEngine(grace_s=0.35, hold_s=1.0, min_words=3, resume_window_s=1.0)
    engine.turn_ended("how do I write")
    engine.user_spoke_after_turn(0.5)
    assert engine.decide(False, 0.1, 0.35, "processor").end
    # the same fragment long after the last turn is a fragment
    engine.turn_ended("what is presence")
    engine.user_spoke_after_turn(3.0)
    assert not engine.decide(False, 0.1, 0.35, "processor").end


def test_carried_words_heard_again_by_the_stt_are_not_counted_twice():
    engine = FloorEngine(grace_s=0.35, hold_s=1.0, statement_words=8, resume_window_s=1.0)
    engine.turn_ended("So I want to know about the face.")
    engine.user_spoke_after_turn(0.5)
    engine.heard_again("So I want to know about the face.")
    # only the whole sentence the STT heard again is judged, not the ended words before it
    assert "not a question" in engine.decide(True, 0.97, 0.3, "Well, the face.").reason
    engine.heard_again("nothing carried says this")  # a revision of other words changes nothing
    assert engine.decide(True, 0.97, 0.3, "What is presence?").end


def test_a_question_missing_its_verb_or_object_holds_the_floor_until_hold_s():
    engine = FloorEngine(grace_s=0.35, hold_s=1.0, min_words=3)
    for fragment in ("how does the renderer", "Can I use", "so how do I...", "how do I change"):
        held = engine.decide(True, 0.95, 0.4, fragment)
        assert not held.end and held.recheck_s == pytest.approx(1.0), fragment
        assert engine.decide(True, 0.95, 1.05, fragment).end  # the user really stopped there


def test_whisper_punctuation_ends_a_short_finished_question_that_smart_turn_doubts():
    engine = FloorEngine(grace_s=0.35, hold_s=1.0, min_words=3)
    assert engine.decide(False, 0.3, 0.4, "Why?").end
    assert not engine.decide(False, 0.3, 0.4, "presence why").end


async def test_a_voice_heard_again_holds_a_complete_verdict_until_the_vad_confirms_it():
    # "can I run the whole thing" reads finished and smart-turn says complete, but the STT heard
    # the voice come back before the VAD did: the sentence goes on, one turn
    engine = FloorEngine(grace_s=0.3, hold_s=5.0)
    first = _utterance("can I run the whole thing", pause_s=0.0)
    first.insert(3, VoiceHintFrame(voiced=True))  # after the VAD stop, before the transcript
    frames = first + [SleepFrame(sleep=0.2)] + _utterance("on my own servers", pause_s=0.3)
    floor, stops, inferences, users = await _converse(frames, [(True, 0.9), (True, 0.9)], engine)
    assert floor.held == 1
    assert len(stops) == 1 and len(inferences) == 1
    assert users == ["can I run the whole thing on my own servers"]


async def test_a_voice_blip_that_falls_quiet_again_lets_the_turn_end():
    engine = FloorEngine(grace_s=0.3, hold_s=5.0)
    frames = _utterance("what is presence", pause_s=0.0)
    frames[3:3] = [VoiceHintFrame(voiced=True)]
    frames += [VoiceHintFrame(voiced=False), SleepFrame(sleep=0.3)]
    floor, stops, _, users = await _converse(frames, [(True, 0.95)], engine)
    assert len(stops) == 1 and users == ["what is presence"]


async def test_silence_counts_from_where_the_stt_heard_the_voice_end_not_an_early_vad_stop():
    # the VAD stopped inside a soft "uh" the STT still heard for 0.25 s more: held words wait
    # hold_s from where the voice really ended, so a 0.6 s pause after the VAD stop is one turn
    def frames(hint: bool):
        first = _utterance("how do I swap the", pause_s=0.3)
        if hint:
            first.append(VoiceHintFrame(voiced=False, quiet_s=0.05))
        return [*first, SleepFrame(sleep=0.3), *_utterance("provider", pause_s=0.3)]

    engine = FloorEngine(grace_s=0.3, hold_s=0.5)
    _, stops, _, users = await _converse(frames(True), [(True, 0.9), (True, 0.9)], engine)
    assert len(stops) == 1 and users == ["how do I swap the provider"]
    engine = FloorEngine(grace_s=0.3, hold_s=0.5)
    _, stops, _, _ = await _converse(frames(False), [(True, 0.9), (True, 0.9)], engine)
    assert len(stops) == 2  # counted from the VAD's stop, the hold ran out inside the pause


@pytest.mark.parametrize("text", ["Well done!", "Good night, Logan.", "presence transports"])
def test_a_short_statement_holds_the_floor_even_when_smart_turn_says_complete(text):
    """With a guide, a short statement is most often the misheard start of a question."""
    engine = FloorEngine(hold_s=0.65)
    held = engine.decide(True, 0.97, 0.25, text)
    assert not held.end and held.recheck_s == pytest.approx(0.65)
    assert "not a question" in held.reason
    assert engine.decide(True, 0.97, 0.7, text).end  # the hold is bounded
    assert engine.decide(True, 0.97, 0.25, text + " What is presence?").end
    assert FloorEngine(hold_s=0.65, statement_words=0).decide(True, 0.97, 0.25, text).end


def test_a_user_telling_about_themselves_keeps_the_floor_for_the_question_that_follows():
    """However long, a sentence about the user's situation is usually followed by a question."""
    said = "I run a small law office, and client chats can't leave our building."
    engine = FloorEngine(complete_s=0.2, hold_s=0.65)
    held = engine.decide(True, 0.97, 0.3, said)
    assert not held.end and held.recheck_s == pytest.approx(0.65)
    assert "context first" in held.reason
    assert engine.decide(True, 0.97, 0.7, said).end  # the hold is bounded
    assert engine.decide(True, 0.97, 0.3, said + " Would that work here?").end
    assert (
        FloorEngine(complete_s=0.2, hold_s=0.65, context_first=False)
        .decide(True, 0.97, 0.3, said)
        .end
    )


@pytest.mark.parametrize(
    "text",
    ["What is presence?", "tell me about the renderer", "I'd like to know how to swap the voice",
     "can I run it offline", "I want to know whether it needs a GPU for the renderer"],
)  # fmt: skip
def test_questions_and_requests_end_the_turn_at_once(text):
    assert FloorEngine(hold_s=0.65).decide(True, 0.97, 0.25, text).end


def test_a_wish_holds_the_floor_for_its_question_but_not_past_hold_s():
    engine = FloorEngine(complete_s=0.2, hold_s=0.65)
    wish = "I'd like to keep everything local but use Deepgram for transcription."
    assert not engine.decide(True, 0.97, 0.45, wish).end  # a breath before "how do I swap it?"
    assert engine.decide(True, 0.97, 0.66, wish).end  # a request said alone is still answered
    assert engine.decide(True, 0.97, 0.25, wish + " How do I swap just that?").end
