"""The user aggregator: a revised transcript replaces the turn's earlier words in the context."""

from __future__ import annotations

from pipecat.frames.frames import (
    LLMContextFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework.aggregators import PresenceContextAggregatorPair
from presence.framework.frames import RevisedTranscriptionFrame, revise_text


def said(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "user", "2026-01-01T00:00:00Z")


def revised(text: str, revises: str) -> RevisedTranscriptionFrame:
    return RevisedTranscriptionFrame(text, "user", "2026-01-01T00:00:00Z", revises=revises)


async def user_message(*transcripts: TranscriptionFrame) -> str:
    context = LLMContext([{"role": "system", "content": "be brief"}])
    user = PresenceContextAggregatorPair(context).user()
    frames = [VADUserStartedSpeakingFrame(start_secs=0.2), *transcripts,
              VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(1.0)]  # fmt: skip
    down, _ = await run_test(user, frames_to_send=frames)
    pushed = [f for f in down if isinstance(f, LLMContextFrame)]
    assert len(pushed) == 1, down
    return pushed[0].context.messages[-1]["content"]


async def test_a_revised_transcript_replaces_the_words_it_revises():
    text = await user_message(
        said("How do I change?"), revised("How do I change the voice?", "How do I change?")
    )
    assert text == "How do I change the voice?"


async def test_a_revision_of_two_parts_replaces_both_and_keeps_what_came_before():
    text = await user_message(
        said("Hello."), said("How do I"), said("change it?"),
        revised("How do I change it?", "How do I change it?"),
    )  # fmt: skip
    assert text == "Hello. How do I change it?"


async def test_a_revision_of_words_no_longer_waiting_is_added():
    text = await user_message(said("Thanks."), revised("And the voice?", "What is presence?"))
    assert text == "Thanks. And the voice?"


def test_revise_text_replaces_the_end_it_revises_or_appends():
    assert revise_text("Hi. How do I", revised("How do I change it?", "How do I")) == (
        "Hi. How do I change it?"
    )
    assert revise_text("Hi.", revised("How?", "Gone")) == "Hi. How?"
    assert revise_text("Hi.", said("Bye.")) == "Hi. Bye."
    assert revise_text("", said("  ")) == ""


async def _context_after(history: list[dict], *transcripts: TranscriptionFrame) -> list[dict]:
    context = LLMContext([{"role": "system", "content": "be brief"}, *history])
    user = PresenceContextAggregatorPair(context).user()
    frames = [VADUserStartedSpeakingFrame(start_secs=0.2), *transcripts,
              VADUserStoppedSpeakingFrame(stop_secs=0.2), SleepFrame(1.0)]  # fmt: skip
    down, _ = await run_test(user, frames_to_send=frames)
    pushed = [f for f in down if isinstance(f, LLMContextFrame)]
    assert len(pushed) == 1, down
    return [(m["role"], m["content"]) for m in pushed[0].context.messages]


async def test_a_taken_turn_never_answered_is_replaced_by_its_revision():
    """The turn was taken at a pause, its answer withdrawn; the user's whole sentence stands."""
    whole = revised("Do I need a graphics card to run it?", "Do I need a graphics card?")
    history = [{"role": "user", "content": "Hello. Do I need a graphics card?"}]
    assert await _context_after(history, whole) == [
        ("system", "be brief"),
        ("user", "Hello."),
        ("user", "Do I need a graphics card to run it?"),
    ]


async def test_a_taken_turn_already_answered_stays_in_the_context():
    whole = revised("Do I need a graphics card to run it?", "Do I need a graphics card?")
    history = [
        {"role": "user", "content": "Do I need a graphics card?"},
        {"role": "assistant", "content": "No."},
    ]
    assert (await _context_after(history, whole))[1:] == [
        ("user", "Do I need a graphics card?"),
        ("assistant", "No."),
        ("user", "Do I need a graphics card to run it?"),
    ]
