"""Does a transcript ask something, or tell about the user before a question? Text rules, no model.

``asks(text)``: the words read as a question or a request, what a user ends a turn with.
``sets_context(text)``: a softer signal, the user's last sentence tells about themselves ("I run a
small law office.", "we've got our own speech recognizer") and asks nothing yet; with a guide, the
question usually follows after a breath.
"""

from __future__ import annotations

import re

from presence.processors.turns.syntax import (
    BE_HAVE,
    DO_MODALS,
    LEAD_INS,
    SENTENCES,
    WH_WORDS,
    words_of,
)

# Words that open a request rather than a question: "tell me about ...", "I'd like to know ...".
_REQUEST_OPENERS = frozenset(
    """tell show explain describe give let let's lets help please compare list walk teach i i'd
    id i'm im can't""".split()
)


def asks(text: str) -> bool:
    """Whether ``text`` reads as a question or a request (what a user ends a turn with).

    True when it ends in a question mark, or opens (after "so", "ok", "hi" and the like) with a
    wh-word, an auxiliary ("can", "does", "is") or a request ("tell me", "explain", "I'd like").
    A statement such as "well done" or "good night" is not: in a conversation with a guide it is
    more often a misheard start of a question, or the user is not finished.
    """
    if text.rstrip().endswith("?"):
        return True
    words = [w for w in words_of(text) if w not in LEAD_INS]
    if not words:
        return False
    first = words[0]
    if first in WH_WORDS or first in DO_MODALS or first in BE_HAVE or first in _REQUEST_OPENERS:
        return True
    # "roughly, how many seconds until it answers": the question opens after a comma
    return any(words_of(c)[:1] and words_of(c)[0] in WH_WORDS for c in re.split(r"[,;:]", text))


# First-person openers of a sentence that tells about the user ("I run ...", "we've got ...").
_SELF = frozenset("i i'm im i've ive i'd id we we're were we've weve we'd my our".split())
_POSSESSIVE = frozenset({"my", "our"})  # "our backend needs to know ...": a thing, not a request
# Words that make a first-person sentence a question after all: "I'm wondering how ...", "I'd like
# to know ...", "we want to understand ...". A wish without them ("I want the mouth to look more
# real.", "we'd like to hook it up to our phone system.") usually comes before its question.
_ASKING = frozenset(
    """wonder wondering wondered curious know understand learn ask asking hear see find figure
    explain tell show""".split()
)
_ADVERBS = frozenset("just really also still actually kind of sort basically".split())


def sets_context(text: str) -> bool:
    """Whether the last sentence of ``text`` tells about the user and asks nothing yet.

    True for "I run a small law office, and client chats can't leave our building.", "so we've
    got our own speech recognizer" or a wish ("I want the mouth to look more real."); False for a
    question, a request to know ("I'm wondering how it works", "I'd like to know ...") and any
    sentence not opened by "I", "we", "my" or "our".
    """
    if "?" in text:
        return False  # the question was asked (what follows it explains it) or is being asked
    last = SENTENCES.split(text.strip())[-1]
    words = [w for w in words_of(last) if w not in LEAD_INS]
    if len(words) < 3 or words[0] not in _SELF:
        return False
    rest = [w for w in words[1:] if w not in _ADVERBS and w not in {"am", "was", "are"}]
    asking = words[0] not in _POSSESSIVE and any(w in _ASKING for w in rest[:4])
    if not rest or asking or any(w in WH_WORDS for w in rest[:2]):
        return False
    return not any(_asks_in_clause(words_of(c)) for c in re.split(r"[,;:]", last)[1:])


def _asks_in_clause(words: list[str]) -> bool:
    """A clause that opens a question: "..., which setup should I launch".

    A wh-word, then a modal within three words; not a relative clause ("..., which means ...").
    """
    words = [w for w in words if w not in LEAD_INS]
    return bool(words) and words[0] in WH_WORDS and any(w in DO_MODALS for w in words[1:4])
