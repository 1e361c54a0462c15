"""Spoken-question understanding: fillers, concepts, negation, everyday words, misheard words."""

from pathlib import Path

import pytest

import presence.pipelines
from presence.processors.llm.engines.fuzzy import FuzzyMatcher
from presence.processors.llm.engines.lexicon import ConceptLexicon
from presence.processors.llm.engines.question import asked_subject, clean_words, is_deictic
from presence.processors.llm.engines.responder import Responder
from presence.processors.llm.engines.retrieval import KnowledgeIndex
from presence.processors.llm.engines.text import negated_positions, stem, words

GUIDE_KNOWLEDGE = Path(presence.pipelines.__file__).parent / "personas" / "guide" / "knowledge"
FALLBACK = "Sorry, I don't know that one."


@pytest.fixture(scope="module")
def guide() -> Responder:
    return Responder(KnowledgeIndex.from_paths([GUIDE_KNOWLEDGE]), fallback_answer=FALLBACK)


def heading(responder: Responder, question: str) -> str | None:
    answer = responder.answer(question)
    return answer.passages[0].passage.title if answer.kind == "knowledge" else None


def test_fillers_greetings_and_wrappers_leave_the_question():
    assert clean_words("Hello there. Um, can you tell me what presence is, you know?") == [
        "what",
        "presence",
        "is",
    ]
    assert clean_words("uh hi") == []
    assert clean_words("is there a rest api") == ["is", "there", "a", "rest", "api"]


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("what is presence", ["presence"]),
        ("whats the warp renderer", ["warp", "renderer"]),
        ("what does s t t stand for", ["s", "t", "t"]),
        ("what kind of project is presence", ["presence"]),
        ("explain this project to me", ["project"]),
        ("how do i swap a provider", None),
    ],
)
def test_asked_subject(question, subject):
    ws = question.split()
    found = asked_subject(ws)
    if subject is None:
        assert found is None
    else:
        (start, end), _ = found
        assert ws[start:end] == subject


def test_deictic_subjects_point_at_the_main_subject(guide):
    assert is_deictic(["this", "project"]) and is_deictic(["it"])
    assert not is_deictic(["s", "t", "t"]) and not is_deictic([])
    assert guide.index.main_subject == "presence"
    assert heading(guide, "Can you tell me what this project does?") == "What presence is"


def test_concept_phrases_allow_a_gap_and_prefer_the_longest():
    lexicon = ConceptLexicon(
        {"hosting": "host yourself | own server", "net": "internet | internet access"}
    )
    found = lexicon.find([stem(w) for w in words("host presence yourself on my own servers")])
    assert {(name, first, last) for first, last, name in found} == {
        ("hosting", 0, 2),
        ("hosting", 5, 6),
    }
    assert lexicon.find([stem(w) for w in words("internet access")]) == [(0, 1, "net")]


def test_negation_scope():
    ws = words("Every part can run offline, with no internet connection, no cloud account")
    assert [ws[i] for i in negated_positions(ws)] == ["internet", "connection", "cloud", "account"]
    ws = words("You do not need a GPU.")
    assert [ws[i] for i in negated_positions(ws)] == ["gpu"]


def test_fuzzy_needs_sound_and_spelling():
    fuzzy = FuzzyMatcher(
        ["presenc", "sway", "sync"], {"prsns": "presenc", "sng": "sway", "snk": "sync"}
    )
    assert fuzzy.near("presents", stem("presents")) == "presenc"
    assert fuzzy.near("sink", stem("sink")) == "sync"
    assert fuzzy.near("sing", stem("sing")) is None  # sounds like "swaying", spelled unlike


@pytest.mark.parametrize(
    ("question", "title"),
    [
        ("Hello there. What is presence?", "What presence is"),
        ("Can I run it on my own server?", "Hosting presence yourself"),
        ("could we deploy it on premise", "Hosting presence yourself"),
        ("Does it need an internet connection?", "Why presence exists"),
        ("what is pipe kat", "Built on pipecat"),
        ("how do I use web our tea sea", "Browser WebRTC"),
        ("where do credentials go", "API keys and secrets"),
        ("what does the face do when nobody is talking", "Idle motion"),
    ],
)
def test_paraphrased_and_misheard_questions(guide, question, title):
    assert heading(guide, question) == title


@pytest.mark.parametrize(
    "question",
    [
        "what's the weather in Paris",
        "who won the football game",
        "what time is it",
        "how do I bake sourdough bread",
    ],
)
def test_off_topic_questions_fall_back(guide, question):
    assert guide.answer(question).sentences == [FALLBACK]


def test_a_negated_word_prefers_passages_that_negate_it():
    docs = [
        ("a", "# Cloud mode\n\nThe cloud mode sends audio to a cloud provider for quality.\n"),
        ("b", "# Local mode\n\nThe local mode runs with no cloud at all, on your machine.\n"),
    ]
    index = KnowledgeIndex.from_markdown(docs)
    assert index.top_passages("which mode uses the cloud", 1)[0].passage.title == "Cloud mode"
    assert index.top_passages("can it run without the cloud", 1)[0].passage.title == "Local mode"


def test_everyday_words_alone_never_make_a_match():
    docs = [("bench", "# Benchmarks\n\nThe response time is measured each time you speak.\n")]
    responder = Responder(KnowledgeIndex.from_markdown(docs), fallback_answer=FALLBACK)
    assert responder.answer("what time is it").kind == "fallback"
    assert responder.answer("what is the response time").kind == "knowledge"


def test_identity_questions_get_the_introduction(guide):
    assert guide.answer("who are you?").kind == "greeting"
    for asked in ["Hi there. So what exactly is this thing I'm talking to?",
                  "And who am I speaking with?", "Who am I chatting with here?", "Who is this?",
                  "Are you a real person?", "Okay, tell me about yourself."]:  # fmt: skip
        answer = guide.answer(asked)
        assert answer.kind == "greeting", asked
        assert "open-source" in answer.text  # what the knowledge base opens with
    assert guide.answer("what is this?").kind == "knowledge"
    assert guide.answer("who is this for?").kind != "greeting"  # a question about the project
    assert guide.answer("what can you do?").kind == "help"
