"""Text normalisation for knowledge-base retrieval: words, stopwords, stems, sound keys, markdown.

Pure Python (no pipecat, no numpy). Both the knowledge base and the questions go through the same
functions, so consistency matters more than linguistic accuracy.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing don
    down during each either else ever every few for from further get gets got had hadn has hasn have
    haven having he her here hers herself him himself his how i if in into is isn it its itself just
    let lets like may me might more most much must mustn my myself need no nor not now of off on once
    only or other ought our ours ourselves out over own please same shall she should shouldn so some
    such tell than that the their theirs them themselves then there these they this those through to
    too um uh under until up us very was wasn way we were weren what whats when where which while who
    whom why will with won would wouldn yes yeah you your yours yourself yourselves s t d ll m re ve
    know say said okay ok thing things something really actually without within via whether
    im ive youre youve youd theyre theyve thats theres heres wheres hows whos isnt arent wasnt
    dont doesnt didnt cant couldnt wont wouldnt shouldnt hasnt havent hadnt itll youll weve
    gonna wanna gotta kinda sorta anywhere somewhere everywhere nowhere besides beside across
    along among amongst behind beyond despite except inside outside toward towards upon whose
    whatever whenever wherever however therefore thus hence otherwise meanwhile anyway anyhow
    per onto unto""".split()
)

_WORD = re.compile(r"[a-z0-9]+")
# A sentence ends at . ! or ? followed by a space and an upper-case letter, digit or quote;
# "e.g. the" and "version 1.14" therefore stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "Mr.", "Dr.", "approx.")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"(\*\*|__|\*|`)")


@lru_cache(maxsize=1 << 17)  # a base's vocabulary is far smaller; building re-stems every word
def stem(word: str) -> str:
    """Fold common English suffixes so that inflections of one word share a key.

    Deliberately light (a few Porter-style rules): both the knowledge base and the query go
    through the same function, so consistency matters more than linguistic accuracy.
    """
    w = word
    if len(w) <= 3 or w.isdigit():
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix, keep in (("ational", 5), ("ation", 4), ("ing", 3), ("ed", 3), ("ly", 4)):
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            w = w[: -len(suffix)]
            if suffix in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]  # running -> run
            break
    for suffix, keep in (("er", 5), ("al", 5)):  # renderer -> render, but render stays
        if w.endswith(suffix) and len(w) - len(suffix) >= keep:
            w = w[: -len(suffix)]
            break
    if w.endswith("e") and len(w) > 3:
        w = w[:-1]
    return w


@lru_cache(maxsize=1 << 17)
def sound_key(word: str) -> str:
    """Return a rough phonetic key: ``sink`` and ``sync`` → ``snk``; ``presents`` → ``prsnts``.

    Spelling rules in the spirit of Metaphone: soft/hard ``c``, ``ph``, ``ck``, ``x``, silent
    ``kn``/``wr``/``gh``; vowels, ``h``, ``w`` and ``y`` are dropped after the first letter and
    repeated letters collapse.
    """
    w = word.lower()
    for a, b in (("ph", "f"), ("ck", "k"), ("gh", ""), ("qu", "kw"), ("x", "ks"), ("dg", "j")):
        w = w.replace(a, b)
    if w.startswith(("kn", "wr", "gn")):
        w = w[1:]
    w = re.sub(r"c(?=[eiy])", "s", w).replace("c", "k").replace("z", "s")
    if not w:
        return ""
    tail = [ch for ch in w[1:] if ch not in "aeiouyhw"]
    out = [w[0]]
    for ch in tail:
        if ch != out[-1]:
            out.append(ch)
    return "".join(out)


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, keeping common abbreviations and version numbers whole."""
    parts = _SENTENCE_END.split(text.strip())
    out: list[str] = []
    for part in parts:
        if out and out[-1].endswith(_ABBREVIATIONS):
            out[-1] = f"{out[-1]} {part}"
        elif part:
            out.append(part)
    return out


def words(text: str) -> list[str]:
    """Lowercased ``[a-z0-9]+`` words of ``text`` (apostrophes are dropped: ``what's`` → ``whats``)."""
    return _WORD.findall(text.lower().replace("'", "").replace("\u2019", ""))


NEGATORS = frozenset(
    "no not without never none nobody nothing neither nor dont doesnt didnt cant cannot wont "
    "isnt arent wasnt shouldnt".split()
)


def negated_positions(ws: list[str], *, skip: int = 2, scope: int = 2) -> list[int]:
    """Positions of the content words a negation covers: "no cloud account", "does not freeze".

    After a negator (``NEGATORS``), up to ``skip`` stopwords are passed over ("not need a GPU")
    and then up to ``scope`` consecutive content words are negated.
    """
    out: list[int] = []
    for i, w in enumerate(ws):
        if w not in NEGATORS:
            continue
        j, skipped = i + 1, 0
        while j < len(ws) and ws[j] in STOPWORDS and ws[j] not in NEGATORS and skipped < skip:
            j, skipped = j + 1, skipped + 1
        taken = 0
        while j < len(ws) and taken < scope and ws[j] not in STOPWORDS:
            out.append(j)
            j, taken = j + 1, taken + 1
    return out


def terms(text: str) -> list[str]:
    """Index terms of ``text``: words minus stopwords, stemmed."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def clean_markdown(text: str) -> str:
    """Strip inline markdown (emphasis, code ticks, links) so the text can be spoken."""
    return " ".join(_MARKUP.sub("", _LINK.sub(r"\1", text)).split())


class MarkdownPassage(NamedTuple):
    """One passage of a markdown document, as ``split_markdown`` cuts it.

    Attributes:
        title: The nearest heading above it.
        text: Speakable text.
        keywords: Fenced code attached to it (indexed, never spoken).
        questions: Questions the author says it answers (indexed, never spoken).
    """

    title: str
    text: str
    keywords: str = ""
    questions: tuple[str, ...] = ()


_COMMENT_OPEN = "<!--"
_COMMENT_CLOSE = "-->"
_QUESTIONS_MARK = re.compile(r"^\s*questions\s*:\s*", re.IGNORECASE)


def _comment_questions(body: str) -> list[str]:
    """The questions a ``<!-- questions: ... -->`` comment lists: one per line, ``-`` optional."""
    mark = _QUESTIONS_MARK.match(body)
    if mark is None:
        return []  # any other comment is a note for authors: neither spoken nor indexed
    lines = body[mark.end() :].splitlines()
    return [q for q in (_LIST_ITEM.sub("", line).strip() for line in lines) if q]


def split_markdown(text: str) -> list[MarkdownPassage]:
    """Split one markdown document into passages.

    A passage is a paragraph or a run of list items under the nearest heading. Fenced code and
    a ``<!-- questions: ... -->`` comment (one question per line: how visitors ask for what the
    passage says) are attached, unspoken, to the passage before them in the same section, or
    to the next one when they come first in a section. Other HTML comments are dropped.
    """
    out: list[MarkdownPassage] = []
    title = ""
    para: list[str] = []
    is_list = False
    code: list[str] = []
    pending_code: list[str] = []
    pending_questions: list[str] = []
    in_fence = False
    comment: list[str] | None = None  # lines of an open HTML comment
    section_start = 0  # index in ``out`` of the current section's first passage

    def flush() -> None:
        nonlocal para, pending_code, pending_questions, is_list
        if is_list:  # list items become sentences when spoken
            para = [i if i[-1:] in ".!?:;" else f"{i}." for i in para if i]
        body = clean_markdown(" ".join(para))
        if body:
            out.append(
                MarkdownPassage(title, body, " ".join(pending_code), tuple(pending_questions))
            )
            pending_code, pending_questions = [], []
        para, is_list = [], False

    def attach(questions: list[str]) -> None:
        nonlocal pending_questions
        if para:
            flush()
        if len(out) > section_start:
            last = out[-1]
            out[-1] = last._replace(questions=last.questions + tuple(questions))
        else:
            pending_questions.extend(questions)

    for line in text.splitlines():
        if comment is not None:
            if _COMMENT_CLOSE in line:
                comment.append(line.split(_COMMENT_CLOSE, 1)[0])
                attach(_comment_questions("\n".join(comment)))
                comment = None
            else:
                comment.append(line)
            continue
        if line.strip().startswith(("```", "~~~")):
            if in_fence:
                if out and not para and len(out) > section_start:
                    out[-1] = out[-1]._replace(
                        keywords=f"{out[-1].keywords} {' '.join(code)}".strip()
                    )
                else:
                    pending_code.extend(code)
                code = []
            in_fence = not in_fence
            continue
        if in_fence:
            code.append(line)
            continue
        if line.strip().startswith(_COMMENT_OPEN):
            rest = line.strip()[len(_COMMENT_OPEN) :]
            if _COMMENT_CLOSE in rest:
                attach(_comment_questions(rest.split(_COMMENT_CLOSE, 1)[0]))
            else:
                comment = [rest]
            continue
        heading = _HEADING.match(line)
        if heading:
            flush()
            title = clean_markdown(heading.group(2))
            section_start = len(out)
        elif not line.strip():
            flush()
        elif _LIST_ITEM.match(line):
            if para and not is_list:
                flush()  # a list right after a paragraph is its own passage
            is_list = True
            para.append(_LIST_ITEM.sub("", line).strip())
        elif is_list and line[:1].isspace():
            para[-1] = f"{para[-1]} {line.strip()}"  # continuation of a list item
        else:
            if is_list:
                flush()
            para.append(line.strip())
    flush()
    return out
