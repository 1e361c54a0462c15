"""The output screen: sentences are released only once checked; a bad one is replaced."""

from __future__ import annotations

from presence.processors.guardrails.engines.rules import Guardrail, Guardrails
from presence.processors.guardrails.engines.screen import OutputScreen

RULES = Guardrails([Guardrail("no_falcon", phrases=("project falcon",), replacement="No comment.")])


def stream(screen: OutputScreen, chunks: list[str]) -> tuple[list[str], list]:
    texts, triggers = [], []
    for chunk in chunks:
        out = screen.feed(chunk)
        texts += out.texts
        triggers += [out.trigger] if out.trigger else []
    out = screen.finish()
    return texts + out.texts, triggers + ([out.trigger] if out.trigger else [])


def test_a_clean_answer_comes_out_exactly_as_it_went_in():
    chunks = [
        "Plans start ",
        "at $10, e.g. the ",
        "basic one. Version 1.5 is ",
        "out!\nCancel any time",
    ]
    texts, triggers = stream(OutputScreen(RULES), chunks)
    assert "".join(texts) == "".join(chunks)
    assert texts[0] == "Plans start at $10, e.g. the basic one. "
    assert not triggers


def test_nothing_is_released_before_its_sentence_is_complete():
    screen = OutputScreen(RULES)
    assert screen.feed("Our plans start at ten dollars").texts == []
    assert screen.feed(". Project").texts == ["Our plans start at ten dollars. "]


def test_a_forbidden_sentence_is_replaced_and_the_rest_of_the_answer_dropped():
    chunks = [
        "Plans start at ten dollars. ",
        "Project Fal",
        "con launches soon. ",
        "Cancel any time.",
    ]
    texts, triggers = stream(OutputScreen(RULES), chunks)
    assert texts == ["Plans start at ten dollars. ", "No comment."]
    assert [t.guardrail_name for t in triggers] == ["no_falcon"]
    assert "falcon" not in "".join(texts).lower()


def test_a_forbidden_last_sentence_without_punctuation_is_caught_at_the_end():
    texts, triggers = stream(OutputScreen(RULES), ["All good. And project falcon"])
    assert texts == ["All good. ", "No comment."] and len(triggers) == 1


def test_a_new_answer_starts_unblocked():
    screen = OutputScreen(RULES)
    stream(screen, ["Project Falcon."])
    screen.reset()
    assert stream(screen, ["Hello there."])[0] == ["Hello there."]


def test_a_sentence_that_never_ends_is_released_at_a_clause_break():
    screen = OutputScreen(RULES, max_chars=40)
    out = screen.feed("one two three four five six, seven eight nine ten eleven twelve")
    assert out.texts == ["one two three four five six, "]
