"""Guardrail rules: which words a persona must not say or answer, and what it says instead.

Pure Python (no pipecat). A ``Guardrail`` forbids *phrases* (a run of words, matched ignoring
case, punctuation and a possessive ``'s``: ``"Project Falcon"`` matches ``"PROJECT-FALCON's
launch"`` but not ``"project falconry"``) and *topics* (a keyword or a few words that must all appear in one sentence,
in any order, plural or singular: ``"competitor pricing"`` matches ``"Our competitors' pricing
is higher"``). ``Guardrails.check(text, side)`` returns the first guardrail that ``text`` breaks
on that side (``input``: what the user said; ``output``: what the persona would say).

Matching is deliberately literal and offline: a guardrail's ``prompt`` (Tavus's
``guardrail_prompt``) is an instruction for an LLM and is not judged here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

Side = Literal["input", "output"]
AppliesTo = Literal["input", "output", "both"]
SIDES: tuple[Side, ...] = ("input", "output")
DEFAULT_REPLACEMENT = "I'm sorry, I can't talk about that."

_POSSESSIVE = re.compile(r"['\u2019]s\b")
_APOSTROPHES = re.compile(r"['\u2019\u2018`]")
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalize(text: str) -> str:
    """Lower-case words and single spaces (``'s`` and apostrophes dropped, punctuation a space)."""
    text = _APOSTROPHES.sub("", _POSSESSIVE.sub("", text.casefold()))
    return " ".join(_NON_WORD.sub(" ", text).split())


def _stem(word: str) -> str:
    """A light plural fold so that ``competitors`` and ``competitor`` compare equal."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Trigger:
    """A guardrail that fired.

    Attributes:
        guardrail_name: The guardrail's name.
        side: ``input`` (the user's words) or ``output`` (the persona's).
        matched: The configured phrase or topic that matched (never the user's own words).
        replacement: What the persona says instead.
        by: ``rules`` (a phrase or topic matched) or ``llm`` (the judge found the prompt broken).
    """

    guardrail_name: str
    side: Side
    matched: str
    replacement: str
    by: Literal["rules", "llm"] = "rules"


@dataclass(frozen=True)
class Guardrail:
    """One rule.

    Attributes:
        name: Identifies the guardrail in events and webhooks.
        phrases: Word sequences that must not be said (case and punctuation ignored).
        topics: Keywords, or groups of words that must all appear in one sentence.
        replacement: What the persona says instead of a sentence that breaks the rule.
        applies_to: ``input``, ``output`` or ``both`` (default).
        prompt: Tavus's ``guardrail_prompt``: the rule in words, judged by an LLM when the
            conversation has one (``engines.judge``), never by these rules.
    """

    name: str
    phrases: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    replacement: str = DEFAULT_REPLACEMENT
    applies_to: AppliesTo = "both"
    prompt: str = ""
    _phrases: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)
    _topics: tuple[tuple[str, frozenset[str]], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        phrases = tuple((p, f" {normalize(p)} ") for p in self.phrases if normalize(p))
        topics = tuple(
            (t, frozenset(_stem(w) for w in normalize(t).split()))
            for t in self.topics
            if normalize(t)
        )
        object.__setattr__(self, "_phrases", phrases)
        object.__setattr__(self, "_topics", topics)

    @property
    def enforceable(self) -> bool:
        """Whether the rule has anything to match (phrases or topics)."""
        return bool(self._phrases or self._topics)

    def applies(self, side: Side) -> bool:
        """Whether the rule watches ``side``."""
        return self.applies_to in ("both", side)

    def match(self, text: str) -> str | None:
        """The configured phrase or topic ``text`` contains, or ``None``."""
        norm = normalize(text)
        if not norm:
            return None
        padded = f" {norm} "
        for original, needle in self._phrases:
            if needle in padded:
                return original
        words = {_stem(w) for w in norm.split()}
        for original, needed in self._topics:
            if needed <= words:
                return original
        return None


class Guardrails:
    """An ordered set of guardrails (the first that fires wins).

    Args:
        rules: The guardrails; names need not be unique but should be, for reports.
    """

    def __init__(self, rules: Iterable[Guardrail]):
        self.rules: tuple[Guardrail, ...] = tuple(rules)

    def __bool__(self) -> bool:
        return any(r.enforceable for r in self.rules)

    def watches(self, side: Side, *, judged: bool = False) -> bool:
        """Whether any enforceable rule applies to ``side`` (with ``judged``, or any prompt)."""
        return any((r.enforceable or (judged and r.prompt)) and r.applies(side) for r in self.rules)

    def check(self, text: str, side: Side) -> Trigger | None:
        """The first rule ``text`` breaks on ``side``, or ``None``."""
        for rule in self.rules:
            if rule.applies(side) and (matched := rule.match(text)) is not None:
                return Trigger(rule.name, side, matched, rule.replacement)
        return None

    @classmethod
    def from_dicts(cls, items: Sequence[dict]) -> Guardrails:
        """Build from plain mappings (the service's stored guardrails).

        Keys: ``guardrail_name`` (or ``name``), ``phrases``, ``topics``, ``replacement``,
        ``applies_to``, ``guardrail_prompt`` (only a ``verbal`` one: presence judges words);
        other keys (``modality``, ``callback_url``, ...) are ignored.
        """
        rules = []
        for item in items:
            rules.append(
                Guardrail(
                    name=str(item.get("guardrail_name") or item.get("name") or "guardrail"),
                    phrases=tuple(item.get("phrases") or ()),
                    topics=tuple(item.get("topics") or ()),
                    replacement=item.get("replacement") or DEFAULT_REPLACEMENT,
                    applies_to=item.get("applies_to") or "both",
                    prompt=(item.get("guardrail_prompt") or "").strip()
                    if item.get("modality", "verbal") == "verbal"
                    else "",
                )
            )
        return cls(rules)
