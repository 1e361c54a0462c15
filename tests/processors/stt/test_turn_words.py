"""The turn's revisable words: what a decode after a pause takes whole, and what prompts it."""

from __future__ import annotations

import pytest

from presence.processors.stt.engines.turn_words import CONTEXT_S, TurnWords

RATE = 16000
SECOND = b"\x00\x00" * RATE


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def words(clock, revise_s=8.0, resume_s=1.0) -> TurnWords:
    return TurnWords(sample_rate=RATE, revise_s=revise_s, resume_s=resume_s, clock=clock)


def test_the_user_going_on_gets_the_whole_turn_decoded_and_its_words_replaced(clock):
    w = words(clock)
    audio, revises = w.whole(SECOND)
    assert (audio, revises) == (SECOND, "")
    w.delivered("do I need a graphics card", SECOND, revises)
    audio, revises = w.whole(SECOND)  # the user went on
    assert audio == SECOND * 2 and revises == "do I need a graphics card"
    w.delivered("do I need a graphics card to run it", SECOND, revises)
    assert w.text == "do I need a graphics card to run it" and w.revised == 1
    assert w.heard == ""  # its words are the turn's, not context before it


def test_a_turn_longer_than_revise_s_goes_on_part_by_part(clock):
    w = words(clock, revise_s=1.5)
    w.delivered("first part", SECOND, "")
    audio, revises = w.whole(SECOND)
    assert (audio, revises) == (SECOND, "")
    assert w.heard == "first part"  # the closed part prompts the next decode


def test_no_revision_at_all_when_revise_s_is_zero(clock):
    w = words(clock, revise_s=0.0)
    w.delivered("first part", SECOND, "")
    assert w.whole(SECOND) == (SECOND, "") and w.heard == "first part"


def test_recent_words_prompt_only_for_a_while_and_the_answer_forgets_them(clock):
    w = words(clock)
    w.delivered("hello there", SECOND, "")
    w.take()
    assert w.recent() == "hello there"
    clock.now += CONTEXT_S + 0.1
    assert w.recent() == ""
    w.delivered("what is presence", SECOND, "")
    w.forget()  # the persona began to answer
    assert w.recent() == "" and w.text == ""


def test_a_taken_turn_is_resumed_only_when_the_user_speaks_again_at_once(clock):
    w = words(clock)
    w.delivered("can I run it", SECOND, "")
    w.take()
    clock.now += 0.5
    assert w.resume()
    assert w.text == "can I run it" and w.heard == ""  # heard again, not context
    audio, revises = w.whole(SECOND)
    assert audio == SECOND * 2 and revises == "can I run it"

    w.take()
    clock.now += 1.5  # past resume_s
    assert not w.resume()
    assert w.whole(SECOND) == (SECOND, "")


def test_a_decode_of_a_turn_closed_meanwhile_replaces_its_words_in_the_context(clock):
    w = words(clock)
    w.delivered("how do I", SECOND, "")
    _, revises = w.whole(SECOND)
    w.take()  # the turn-taking ended the turn while the whole was being decoded
    assert w.heard == "how do I"
    w.delivered("how do I change the voice", SECOND, revises)
    assert w.heard == "how do I change the voice" and w.revised == 1
