"""The guard processors in a pipecat pipeline: what passes, what is replaced, what is reported."""

from __future__ import annotations

from pipecat.frames.frames import (
    EagerEndOfTurnCancelFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportMessageUrgentFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from presence.processors.guardrails.engines.rules import Guardrail, Guardrails
from presence.processors.guardrails.processor import (
    InputGuardProcessor,
    OutputGuardProcessor,
    make_guards,
)

RULES = Guardrails(
    [
        Guardrail("no_falcon", phrases=("project falcon",), replacement="No comment."),
        Guardrail("no_refunds", topics=("refund",), replacement="Please email support."),
    ]
)


def of(frames, cls):
    return [f for f in frames if isinstance(f, cls)]


def answer(*chunks: str) -> list:
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


def context(user: str, *, speculation: bool = False) -> LLMContextFrame:
    messages = [
        {"role": "system", "content": "You are a guide."},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": user},
    ]
    return LLMContextFrame(LLMContext(messages), speculation=speculation)


async def test_output_guard_passes_clean_sentences_and_replaces_a_forbidden_one():
    fired = []
    guard = OutputGuardProcessor(RULES, conversation_id="c1", on_trigger=fired.append)
    down, _ = await run_test(
        guard,
        frames_to_send=[
            *answer("Plans start at ten dollars. ", "Project Falcon is next. ", "Bye now."),
            *answer("A second answer."),
        ],
    )
    texts = [f.text for f in of(down, LLMTextFrame)]
    assert texts == ["Plans start at ten dollars. ", "No comment.", "A second answer."]
    assert len(of(down, LLMFullResponseEndFrame)) == 2  # the turn still ends for TTS
    assert [(t.guardrail_name, t.side) for t in fired] == [("no_falcon", "output")]
    (event,) = [f.message for f in of(down, OutputTransportMessageUrgentFrame)]
    assert event["event_type"] == "conversation.guardrail_triggered"
    assert event["properties"] == {"guardrail_name": "no_falcon", "side": "output"}


async def test_an_interruption_drops_the_held_sentence():
    down, _ = await run_test(
        OutputGuardProcessor(RULES),
        frames_to_send=[
            LLMFullResponseStartFrame(),
            LLMTextFrame("Half a sent"),
            InterruptionFrame(),
        ],
    )
    assert not of(down, LLMTextFrame)


async def test_input_guard_answers_a_forbidden_turn_without_the_llm():
    fired = []
    down, _ = await run_test(
        InputGuardProcessor(RULES, conversation_id="c1", on_trigger=fired.append),
        frames_to_send=[context("Can I get my refunds?"), context("What are the prices?")],
    )
    assert [f.text for f in of(down, TTSSpeakFrame)] == ["Please email support."]
    (passed,) = of(down, LLMContextFrame)  # only the clean turn reaches the LLM
    assert passed.context.get_messages()[-1]["content"] == "What are the prices?"
    assert [(t.guardrail_name, t.side) for t in fired] == [("no_refunds", "input")]


async def test_a_speculative_forbidden_turn_is_answered_only_once_confirmed():
    confirmed, _ = await run_test(
        InputGuardProcessor(RULES),
        frames_to_send=[
            UserStartedSpeakingFrame(),
            context("a refund", speculation=True),
            UserStoppedSpeakingFrame(),
        ],
    )
    assert [f.text for f in of(confirmed, TTSSpeakFrame)] == ["Please email support."]
    assert not of(confirmed, LLMContextFrame)

    withdrawn, _ = await run_test(
        InputGuardProcessor(RULES),
        frames_to_send=[
            UserStartedSpeakingFrame(),
            context("a refund", speculation=True),
            EagerEndOfTurnCancelFrame(),
            UserStartedSpeakingFrame(),
            context("what are the prices"),
        ],
    )
    assert not of(withdrawn, TTSSpeakFrame)
    assert of(withdrawn, LLMContextFrame)[-1].context.get_messages()[-1]["content"] == (
        "what are the prices"
    )


def test_make_guards_places_only_the_sides_that_are_watched():
    assert set(make_guards(RULES)) == {"before_llm", "before_tts"}
    output_only = Guardrails([Guardrail("x", phrases=("y",), applies_to="output")])
    assert set(make_guards(output_only)) == {"before_tts"}
    assert make_guards(Guardrails([Guardrail("prompt_only")])) == {}
