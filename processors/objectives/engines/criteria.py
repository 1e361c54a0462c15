"""Offline completion criteria: what in a user's turn completes an objective, and its value.

Pure Python (no pipecat). A ``Criterion`` looks at one user turn and returns the value it found
(``None`` when the turn does not meet it):

====================  =======================================================================
``email``             an address, typed (``jo@example.com``) or spoken (``jo at example dot com``)
``phone``             7 to 15 digits, typed with any separators or spoken (``five five five ...``)
``yes`` / ``no``      a confirmation or a refusal (``"yes"`` / ``"no"``; never both in one turn)
``number``            the first number, in digits or words up to twenty (as digits)
``name``              a name introduced as ``my name is ...``, ``call me ...``, ``this is ...``
``keywords``          any of ``keywords`` (case, punctuation and plurals ignored)
``regex``             ``pattern`` (case-insensitive); its first group, or the whole match
====================  =======================================================================

``criteria_for_variable`` guesses the criterion for a Tavus ``output_variables`` name
(``email``, ``phone_number``, ``consent``, ``age``, ``patient_name``...), so Tavus objectives
complete offline without presence-specific fields when their variables say what they collect.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from presence.processors.guardrails.engines.rules import normalize

Kind = Literal["email", "phone", "yes", "no", "number", "name", "keywords", "regex"]
KINDS: tuple[str, ...] = ("email", "phone", "yes", "no", "number", "name", "keywords", "regex")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_SPOKEN_EMAIL = re.compile(
    r"\b([a-z0-9][a-z0-9._+-]*)\s+at\s+([a-z0-9-]+(?:\s+dot\s+[a-z0-9-]+)+)\b", re.IGNORECASE
)
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_NUMBER_WORDS = {
    **{k: v for k, v in _DIGIT_WORDS.items() if k not in ("oh", "o")},
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
    "twenty": "20",
}  # fmt: skip
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_YES = {
    "yes", "yeah", "yep", "yup", "correct", "right", "sure", "absolutely", "definitely",
    "confirm", "confirmed", "affirmative", "ok", "okay", "agree", "agreed", "certainly",
}  # fmt: skip
_NO = {"no", "nope", "nah", "not", "incorrect", "wrong", "dont", "never", "negative", "decline"}
_NAME = re.compile(
    r"\b(?:my name is|my names|my name's|call me|this is|i am|i'm|im)\s+"
    r"([A-Za-z][\w'-]*(?:\s+[A-Z][\w'-]*)?)",
    re.IGNORECASE,
)
_NOT_NAMES = {
    "a", "an", "the", "not", "new", "here", "fine", "good", "ok", "okay", "sorry", "sure",
    "calling", "looking", "interested", "just", "so", "very", "really", "still", "from", "in",
    "on", "at", "with", "going", "trying", "back", "done", "ready", "happy", "glad", "afraid",
}  # fmt: skip


def _email(text: str) -> str | None:
    if match := _EMAIL.search(text):
        return match.group(0).rstrip(".").lower()
    if match := _SPOKEN_EMAIL.search(text):
        domain = re.sub(r"\s+dot\s+", ".", match.group(2), flags=re.IGNORECASE)
        return f"{match.group(1)}@{domain}".lower()
    return None


def _phone(text: str) -> str | None:
    for match in _PHONE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if 7 <= len(digits) <= 15:
            return ("+" if match.group(0).startswith("+") else "") + digits
    run: list[str] = []
    for word in normalize(text).split() + [""]:
        digit = _DIGIT_WORDS.get(word) or (word if word.isdigit() else None)
        if digit is not None:
            run.append(digit)
            continue
        if 7 <= len("".join(run)) <= 15:
            return "".join(run)
        run = []
    return None


def _words(text: str) -> set[str]:
    return set(normalize(text).split())


def _yes(text: str) -> str | None:
    words = _words(text)
    return "yes" if words & _YES and not words & _NO else None


def _no(text: str) -> str | None:
    words = _words(text)
    return "no" if words & _NO and not words & _YES else None


def _number(text: str) -> str | None:
    if match := _NUMBER.search(text):
        return match.group(0)
    for word in normalize(text).split():
        if word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
    return None


def _name(text: str) -> str | None:
    for match in _NAME.finditer(text):
        words = match.group(1).split()
        if words[0].lower() in _NOT_NAMES:
            continue
        if len(words) > 1 and not words[1][:1].isupper():
            words = words[:1]  # "my name is jo and ...": a second name is capitalised
        return " ".join(w[:1].upper() + w[1:] for w in words)
    return None


def _stem(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


_EXTRACTORS = {
    "email": _email,
    "phone": _phone,
    "yes": _yes,
    "no": _no,
    "number": _number,
    "name": _name,
}


@dataclass(frozen=True)
class Criterion:
    """One condition on a user's turn.

    Attributes:
        kind: One of ``KINDS``.
        variable: The output variable the found value is stored under (``None``: not stored).
        keywords: For ``keywords``.
        pattern: For ``regex`` (compiled case-insensitive; checked by ``validate``).
    """

    kind: Kind
    variable: str | None = None
    keywords: tuple[str, ...] = ()
    pattern: str | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming what is wrong (a bad pattern, missing keywords)."""
        if self.kind not in KINDS:
            raise ValueError(f"unknown criterion type {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("a regex criterion needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regex: {exc}") from None
        if self.kind == "keywords" and not any(normalize(k) for k in self.keywords):
            raise ValueError("a keywords criterion needs at least one keyword")

    def find(self, text: str) -> str | None:
        """The value ``text`` gives for this criterion, or ``None``."""
        if self.kind in _EXTRACTORS:
            return _EXTRACTORS[self.kind](text)
        if self.kind == "regex":
            match = re.search(self.pattern or "", text, re.IGNORECASE)
            if match is None:
                return None
            return (match.group(1) if match.groups() else match.group(0)).strip()
        words = {_stem(w) for w in normalize(text).split()}
        for keyword in self.keywords:
            needed = {_stem(w) for w in normalize(keyword).split()}
            if needed and needed <= words:
                return keyword
        return None

    @classmethod
    def from_dict(cls, item: dict) -> Criterion:
        """Build from ``{type, variable, keywords, pattern}`` (``ValueError`` when invalid)."""
        criterion = cls(
            kind=item.get("type") or item.get("kind"),
            variable=item.get("variable"),
            keywords=tuple(item.get("keywords") or ()),
            pattern=item.get("pattern"),
        )
        criterion.validate()
        return criterion


def criteria_for_variable(name: str) -> Criterion | None:
    """The criterion a Tavus output variable's name implies, or ``None`` when it says nothing."""
    words = set(normalize(name.replace("_", " ")).split())
    if words & {"email", "mail"}:
        return Criterion("email", name)
    if words & {"phone", "mobile", "telephone", "cell"}:
        return Criterion("phone", name)
    if words & {"consent", "confirmed", "confirmation", "agree", "agreed", "approval", "accepted"}:
        return Criterion("yes", name)
    if "name" in words:
        return Criterion("name", name)
    if words & {"age", "count", "number", "quantity", "amount"}:
        return Criterion("number", name)
    return None
