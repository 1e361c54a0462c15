"""Spoken questions: dropping fillers and greetings, finding what a question asks about.

Pure Python (no pipecat). Questions arrive through speech recognition, so they carry
hesitations ("um", "you know"), greetings in front ("hi, hello there"), polite wrappers ("can you
tell me ...") and no reliable punctuation. ``clean_words`` removes those so that retrieval and the
"what is X?" detection see the question itself; it never removes a word that could carry the
topic.
"""

from __future__ import annotations

import re

from presence.processors.llm.engines.text import words

# Hesitations, greetings and discourse markers: never the topic of a question.
FILLERS = frozenset(
    """um umm uh uhh er erm err hmm hm mm mhm ah oh eh well so okay ok alright hello hi hey
    hiya howdy yeah yep yes please thanks thank cheers actually basically guys anyway even
    exactly just really""".split()
)
# Multi-word wrappers around the question itself (matched on whole words, longest first).
FILLER_PHRASES = tuple(
    sorted(
        (
            tuple(p.split())
            for p in (
                "you know",
                "in a nutshell",
                "in short",
                "in simple terms",
                "in plain english",
                "in general",
                "in a few words",
                "what happens",
                "what would happen",
                "what will happen",
                "i mean",
                "i guess",
                "i think",
                "i was wondering",
                "i wonder",
                "i wanted to ask",
                "i want to know",
                "i would like to know",
                "id like to know",
                "can you tell me",
                "could you tell me",
                "can you explain",
                "could you explain",
                "tell me",
                "do you know",
                "let me ask",
                "quick question",
                "one more question",
                "another question",
                "by the way",
                "hello there",
                "hi there",
                "hey there",
                "good morning",
                "good afternoon",
                "good evening",
                "excuse me",
                "you guys",
            )
        ),
        key=len,
        reverse=True,
    )
)
# Words that, as the subject of "what is X?", mean the thing the knowledge base is about.
DEICTIC = frozenset(
    """this that it thing things project tool software framework library product system platform
    app application stuff""".split()
)

_DETERMINERS = frozenset("a an the this that these those your you its".split())
_ARTICLE = r"(?:(?:a|an|the|this|that|your|these|those) )?"
_SUBJECT_PATTERNS = (
    # what does X do / mean / stand for
    re.compile(rf"^(?:what|who) (?:does|do|did) {_ARTICLE}(.+?) (?:do|mean|stand for|stands for)$"),
    # what is X (for/about/exactly), what's X, who are X
    re.compile(rf"^(?:what|who) (?:is|are|s|was|were) {_ARTICLE}(.+?)(?: for| about| exactly)?$"),
    re.compile(rf"^(?:whats|whos) {_ARTICLE}(.+?)(?: for| about| exactly)?$"),
    # what kind of project is X (the category is framing, not the topic)
    re.compile(rf"^what (?:kind|sort|type) of (?P<frame>\w+) (?:is|are) {_ARTICLE}(.+)$"),
    # what X does / is ("what this project does")
    re.compile(rf"^what {_ARTICLE}(.+?) (?:does|do|is|are|means)$"),
    # (tell me) about X, explain X, describe X
    re.compile(rf"^(?:about|explain|describe|define) {_ARTICLE}(.+?)(?: to me| to us| for me)?$"),
    # how is X defined, what does X mean
    re.compile(rf"^how (?:is|are) {_ARTICLE}(.+?) (?:defined|described)$"),
    # (give me) an overview of X, an introduction to X
    re.compile(
        rf"^(?:give me |i want |i need )?(?:a |an )?(?:quick |short |brief )?"
        rf"(?:overview|introduction|intro|summary|rundown|explanation) (?:of|to|on) {_ARTICLE}(.+)$"
    ),
)


def clean_words(text: str) -> list[str]:
    """Return the words of ``text`` without fillers, greetings and polite wrappers.

    Example: ``"Hello there. Um, can you tell me what presence is, you know?"`` →
    ``["what", "presence", "is"]``. A question that is nothing but fillers comes back empty.
    """
    ws = words(text)
    out: list[str] = []
    i = 0
    while i < len(ws):
        for phrase in FILLER_PHRASES:
            if tuple(ws[i : i + len(phrase)]) == phrase:
                i += len(phrase)
                break
        else:
            if ws[i] not in FILLERS:
                out.append(ws[i])
            i += 1
    return out


def asked_subject(ws: list[str]) -> tuple[tuple[int, int], tuple[int, int] | None] | None:
    """Where the subject of a "what is X?"-style question stands, or None for other questions.

    Args:
        ws: The question's cleaned words (``clean_words``).

    Returns:
        ``((start, end), frame)``: the subject is ``ws[start:end]`` (it may be deictic, e.g.
        ``["this", "project"]``); ``frame`` is the span of a category word that only frames
        the question ("what kind of *project* is presence") or None. None when the question is
        not of that kind.

    """
    text = " ".join(ws)
    for pattern in _SUBJECT_PATTERNS:
        found = pattern.match(text)
        if found:
            group = found.lastindex or 1
            start = text[: found.start(group)].count(" ")
            subject = (start, start + len(found.group(group).split()))
            frame = None
            if "frame" in pattern.groupindex:
                f = text[: found.start("frame")].count(" ")
                frame = (f, f + len(found.group("frame").split()))
            return subject, frame
    return None


def is_deictic(subject: list[str]) -> bool:
    """Whether a subject only points at "this" thing (``["this", "project"]``, ``["it"]``)."""
    return bool(subject) and all(w in DEICTIC or w in _DETERMINERS for w in subject)


# Words that open a fragment finishing the previous sentence rather than a sentence of its own:
# "... on my own servers", "... to run it", "... that I am done talking", "... a recorded file".
_CONTINUATION_OPENERS = frozenset(
    """to on in at of for with without from by about into onto over under through via using
    than that if unless because after before since until while and or but nor plus""".split()
)
_FRAGMENT_DETERMINERS = frozenset("a an the my your our their its some any all every".split())
_VERBISH = frozenset(
    """is are was were am be do does did can could will would should shall may might must has
    have had what which how where when who why""".split()
)


def continues_previous(text: str) -> bool:
    """Whether ``text`` reads as the rest of the previous sentence, not a question of its own.

    True for a phrase that opens with a preposition, conjunction or "that" ("on my own servers",
    "to run it", "and the face") and for a short noun phrase without any verb ("a recorded audio
    file", "my own character"). A user who paused mid-sentence, or adds to what they just asked,
    says such fragments; read alone they ask nothing.
    """
    ws = clean_words(text)
    if not ws:
        return False
    if ws[0] in _CONTINUATION_OPENERS:
        return True
    return ws[0] in _FRAGMENT_DETERMINERS and len(ws) <= 6 and not _VERBISH & set(ws)
