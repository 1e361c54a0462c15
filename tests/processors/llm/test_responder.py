"""The offline responder: short spoken answers, small talk and the fallback."""

from pathlib import Path

import pytest

import presence.pipelines
from presence.processors.llm.engines.responder import Responder, split_sentences
from presence.processors.llm.engines.retrieval import KnowledgeIndex

GUIDE_KNOWLEDGE = Path(presence.pipelines.__file__).parent / "personas" / "guide" / "knowledge"
FALLBACK = "Sorry, I don't know that one."


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex.from_paths([GUIDE_KNOWLEDGE])


@pytest.fixture
def responder(index) -> Responder:
    return Responder(index, fallback_answer=FALLBACK, name="Guide")


def test_what_is_presence_is_answered_by_the_first_passage(responder):
    answer = responder.answer("What is presence?")
    assert answer.kind == "knowledge"
    assert answer.sentences[0].startswith("Presence is an open-source framework")
    assert "real-time conversational video" in answer.text


def test_answer_is_the_first_sentences_of_the_best_passage(index):
    short = Responder(index, max_sentences=1).answer("how do I swap a provider")
    longer = Responder(index, max_sentences=3).answer("how do I swap a provider")
    assert len(short.sentences) == 1
    assert len(longer.sentences) == 3
    assert longer.sentences[0] == short.sentences[0]
    assert "edit one line" in short.text
    assert "deepgram" in longer.text.lower()


@pytest.mark.parametrize(
    "question",
    [
        "purple elephant banana spaceship",
        "what is your favorite color",
        "how tall is mount everest",
    ],
)
def test_unrelated_questions_get_the_fallback(responder, question):
    answer = responder.answer(question)
    assert answer.kind == "fallback"
    assert answer.sentences == [FALLBACK]


def test_a_higher_threshold_turns_a_weak_match_into_the_fallback(index):
    question = "how does lip sink work"  # weak: one keyword and a misheard one
    assert Responder(index, min_score=0.2).answer(question).kind == "knowledge"
    assert Responder(index, min_score=0.9, guess_score=0.9).answer(question).kind == "fallback"


def test_a_match_between_the_guess_and_answer_scores_is_offered_as_a_named_guess(index):
    question = "how does lip sink work"
    sure = Responder(index, min_score=0.2).answer(question)
    guess = Responder(index, min_score=0.9, guess_score=0.1).answer(question)
    assert guess.kind == "guess"
    title = sure.passages[0].passage.title
    assert guess.sentences[0] == f"I think you're asking about {title[:1].lower() + title[1:]}."
    assert guess.sentences[1:] == sure.sentences  # then the same answer
    off = Responder(index).answer("what is the capital of peru")
    assert off.kind == "fallback"  # nothing related at the default scores: no guess


@pytest.mark.parametrize("hello", ["hello", "Hi there!", "hey", "good morning"])
def test_greetings_get_a_friendly_reply_naming_topics(responder, hello):
    answer = responder.answer(hello)
    assert answer.kind == "greeting"
    assert "Guide" in answer.text
    assert "what presence is" in answer.text and "pipelines" in answer.text


def test_small_talk(responder):
    assert responder.answer("thank you").kind == "thanks"
    assert responder.answer("bye").kind == "farewell"
    assert responder.answer("what can you do?").kind == "help"
    assert responder.answer("").sentences == []


def test_greeting_before_a_question_does_not_hide_the_question(responder):
    answer = responder.answer("hi, what is presence?")
    assert answer.kind == "knowledge"
    assert answer.sentences[0].startswith("Presence is")


def test_top_passages_exposes_retrieval_for_a_real_llm(responder):
    found = responder.top_passages("how do I swap a provider", k=2)
    assert 1 <= len(found) <= 2
    assert found[0].passage.title == "Swapping a provider"
    assert responder.top_passages("purple elephant banana", k=2) == []


def test_sentence_split_keeps_abbreviations_and_versions_whole():
    text = "It uses pipecat 1.14, e.g. for transports. Then it speaks! Does it? Yes."
    assert split_sentences(text) == [
        "It uses pipecat 1.14, e.g. for transports.",
        "Then it speaks!",
        "Does it?",
        "Yes.",
    ]


def test_invalid_settings_are_rejected(index):
    with pytest.raises(ValueError, match="min_score"):
        Responder(index, min_score=1.5)
    with pytest.raises(ValueError, match="max_sentences"):
        Responder(index, max_sentences=0)
