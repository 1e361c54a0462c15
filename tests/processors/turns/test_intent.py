import pytest

from presence.processors.turns.intent import asks, sets_context


@pytest.mark.parametrize(
    "text",
    ["I run a small law office, and client chats can't leave our building.",
     "Hey there, I run a bakery and want my own character on screen.",
     "so we've got our own speech recognizer", "I am building a kiosk for a museum.",
     "Hello there. Our team is small.", "We run a clinic, which means patient audio stays here."],
)  # fmt: skip
def test_a_sentence_about_the_user_sets_context(text):
    assert sets_context(text)


@pytest.mark.parametrize(
    "text",
    ["I want the mouth movements to look more realistic.", "I'd like to swap the voice",
     "We'd like to hook it up to our phone system.", "I was hoping to run it offline",
     "I need numbers that don't wobble from one run to the next.",
     "Our backend needs to know when a call finishes."],
)  # fmt: skip
def test_a_wish_sets_context_for_the_question_that_follows(text):
    assert sets_context(text)


@pytest.mark.parametrize(
    "text",
    ["I've got my own speech recognizer. How do I plug it in?", "I'd like to know how it works",
     "I'm wondering how it works", "I want to understand the turn model", "I don't know if it runs offline",
     "we run a shop?", "what is presence", "the mouth looks cartoony", "I see",
     # the question came first: what follows explains it
     "Do I need a graphics card for this? My laptop only has integrated graphics.",
     # the question comes after a comma
     "I'm on a train with no signal, which setup should I launch."],
)  # fmt: skip
def test_questions_requests_and_other_sentences_set_no_context(text):
    assert not sets_context(text)


@pytest.mark.parametrize(
    "text",
    ["Roughly, how many seconds until it answers.", "Let's go see the pipeline file.",
     "what is presence", "Tell me about the renderer.", "Does it work offline?"],
)  # fmt: skip
def test_questions_and_requests_ask(text):
    assert asks(text)


@pytest.mark.parametrize("text", ["the mouth looks cartoony", "well done", "good night"])
def test_a_remark_asks_nothing(text):
    assert not asks(text)
