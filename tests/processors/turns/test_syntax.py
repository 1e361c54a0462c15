import pytest

from presence.processors.turns.syntax import unfinished

FINISHED = [
    "What is presence?",
    "Hello there. What is presence?",
    "Which transports does presence support?",
    "How does the renderer move the face?",
    "How do I swap a provider?",
    "Can I run it on my own server?",
    "Does it need an internet connection?",
    "What can I use?",
    "Why?",
    "Tell me about the renderer.",
    "How much does it cost?",
    "Where are the pipeline files?",
    "Who made this?",
    "Does it work offline?",
    "So how do I change the voice?",
    "Which hosted services does the cloud version rely on?",
    "Which cloud companies can I plug in?",
    "What is it for?",
    "What is it used for?",
    "What do I need it for?",
    "Which cloud services can I pair it with?",
    "Without a cloud model, how does it come up with its answers?",
    "What do I get if I have no internet?",
    "If I have no internet, what do I get?",
    "Is there a command that shows me all the providers?",
    "How does it figure out that I am done talking?",
    "What does the local pipeline run with?",
    "What does a pipeline file look like?",
    "What do the benchmarks actually time?",
    "How does the face blink?",
    "What license is the code released under?",
    "What are the parts that a conversation goes through?",
    "Is there a cheaper voice we could switch to?",
    "Are there any licence terms I should know about?",
    "Is there an HTTP API I can drive the whole call from?",
    "Who is the character I'm talking to?",
    "Is there a list of the models you're able to pick from?",
    "How do I log in?",
    "When it runs offline, where do its answers come from?",
    "How should I test my add-on?",
    # a question after a lead clause that is whole, a negated tag, and commas a recogniser put in
    "Once my provider class is written, how do people choose it?",
    "It runs offline, doesn't it?",
    "How many stages, does a pipeline, have?",
    "Is there a way for my app to hear about it? When a call finishes.",
    "Is it fast, or what?",
    "If I swap the voice, what do I change it in?",
    # set phrases and a phrasal verb's particle end a sentence
    "Can my app find out when a call has ended without having to ask over and over?",
    "What's going on in between?",
    "Could I wire it into a call center? So people can phone in.",
    "I've got my own speech recognizer. How do I plug it in?",
]
UNFINISHED = [
    ("so how do I", "hanging"),
    ("How do I swap", "object"),
    ("can I use", "object"),
    ("which transports", "verb"),
    ("how does the renderer", "verb"),
    ("what is", "after"),
    ("I want to know about", "hanging"),
    ("which one is the", "hanging"),
    ("can I run it on", "hanging"),
    ("So, um", "hanging"),
    ("and the face renderer and", "hanging"),
    ("how do I run it with...", "trailing"),
    ("Hello there.", "greeting"),
    ("OK, so", "hanging"),
    ("Without a cloud model.", "clause"),
    ("So, if I have no internet", "clause"),
    ("How does it figure out?", "object"),
    ("Is there a command that shows me?", "without what"),
    ("So what does a pipeline file?", "no verb"),
    ("What kind of picture should I use for", "hanging 'for'"),
    ("Which camera do I need for", "hanging 'for'"),
    ("Is there a tool I need to", "hanging 'to'"),  # "to" of an infinitive, not a preposition
    ("I think I want to talk to", "hanging 'to'"),
    ("So that I can connect to", "hanging 'to'"),
    ("How will I move the speech recognition over to", "hanging 'to'"),
    ("How do I plug it into", "hanging 'into'"),
    # the relative clause is in the sentence before: the question still lacks its object
    ("We'd like to bundle it into something we sell. Is there anything about", "hanging 'about'"),
    ("Is there a plan we pay for, and is there anything about", "hanging 'about'"),
    # a question begun after a lead clause and cut short
    ("Once my provider class is written, how do people?", "no verb after 'do people'"),
    ("We already use Daily for our calls, can the agent.", "no verb after 'can the agent'"),
    ("If I have my own voice, how do I change?", "'change' without its object"),
    ("What are my options, and what?", "no verb after 'what'"),
    ("How do I kick off a call with a face, and em.", "hanging 'em'"),
    ("How does it know I'm done talking, and not just", "hanging 'just'"),
    ("I want to talk about the plug in", "hanging 'in'"),
]


@pytest.mark.parametrize("text", FINISHED)
def test_finished_sentences_are_not_held(text):
    assert unfinished(text) is None


@pytest.mark.parametrize(("text", "why"), UNFINISHED)
def test_unfinished_sentences_name_why(text, why):
    reason = unfinished(text)
    assert reason is not None and why in reason


def test_empty_text_has_nothing_to_hold():
    assert unfinished("") is None and unfinished("...") is None
