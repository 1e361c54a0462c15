"""Screening a streamed answer sentence by sentence before it is spoken.

Pure Python (no pipecat). ``OutputScreen`` takes an answer as it streams (``feed`` each chunk,
``finish`` at its end) and releases it one sentence at a time, each checked against the
guardrails first. A sentence that breaks one is never released: the guardrail's replacement is
released in its place and the rest of that answer is dropped. ``reset`` starts a new answer.

Released text keeps the model's own spacing, so a clean answer comes out exactly as it went in.
A sentence ends at ``.``, ``!``, ``?`` or ``…`` followed by a space and a capital letter, digit,
quote or bracket (so ``e.g. this`` and ``1.5`` stay whole), or at a line break; a sentence
longer than ``max_chars`` is released at its last clause break (``,``, ``;``, ``:``, a dash) or
space, so a model that never ends its sentences still streams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from presence.processors.guardrails.engines.rules import Guardrails, Trigger

_END = re.compile(r"(?:[.!?\u2026]+[\"')\]]*\s+(?=[A-Z0-9\"'(\[])|\n\s*)")
_CLAUSE = re.compile(r"[,;:\u2013\u2014]\s+")
_SPACE = re.compile(r"\s+")
MAX_CHARS = 400


@dataclass
class Screened:
    """What may go on after a chunk.

    Attributes:
        texts: Text to pass to TTS, in order (checked sentences or the replacement).
        trigger: The guardrail that fired on this chunk, if one did.
    """

    texts: list[str] = field(default_factory=list)
    trigger: Trigger | None = None


class OutputScreen:
    """Holds a streamed answer back until each sentence is checked.

    Args:
        guardrails: The rules for the ``output`` side.
        max_chars: Release a sentence at a clause break once it is this long.
    """

    def __init__(self, guardrails: Guardrails, *, max_chars: int = MAX_CHARS):
        self._rules = guardrails
        self._max = max_chars
        self._buffer = ""
        self.blocked = False
        """True once a sentence of this answer was replaced (the rest is dropped)."""

    def reset(self) -> None:
        """Forget the current answer (a new one starts, or the user interrupted)."""
        self._buffer = ""
        self.blocked = False

    def block(self) -> None:
        """Drop the rest of this answer (a sentence already released was replaced after all)."""
        self.blocked = True
        self._buffer = ""

    def feed(self, text: str) -> Screened:
        """Add a chunk of the answer; returns the sentences it completed, checked."""
        if self.blocked:
            return Screened()
        self._buffer += text
        out = Screened()
        while not self.blocked and (cut := self._cut()) is not None:
            sentence, self._buffer = self._buffer[:cut], self._buffer[cut:]
            self._release(sentence, out)
        return out

    def finish(self) -> Screened:
        """The answer ended: check and release what is left."""
        out = Screened()
        if not self.blocked and self._buffer.strip():
            self._release(self._buffer, out)
        self._buffer = ""
        return out

    def _cut(self) -> int | None:
        match = _END.search(self._buffer)
        if match is not None:
            return match.end()
        if len(self._buffer) < self._max:
            return None
        for pattern in (_CLAUSE, _SPACE):
            breaks = [m.end() for m in pattern.finditer(self._buffer, 0, self._max)]
            if breaks:
                return breaks[-1]
        return self._max

    def _release(self, sentence: str, out: Screened) -> None:
        trigger = self._rules.check(sentence, "output")
        if trigger is None:
            out.texts.append(sentence)
            return
        lead = sentence[: len(sentence) - len(sentence.lstrip())]
        out.texts.append(f"{lead}{trigger.replacement}")
        out.trigger = trigger
        self.blocked = True
        self._buffer = ""
