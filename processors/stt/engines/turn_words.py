"""What the user said this turn and just before: the audio a decode revises and the prompt's words.

A segmented STT decodes each stretch of speech when it ends. When the user goes on after a
pause, the stretch before the pause is decoded again with what follows (the words on each side
are context for the others), and the new transcript replaces the earlier one. ``TurnWords`` keeps
that bookkeeping, independent of any framework:

* the turn's revisable audio and its transcript (``whole`` adds new audio to it, up to
  ``revise_s`` in all; a longer turn goes on part by part);
* the words heard before it, which prompt the next decode while recent (``recent``);
* the last taken turn, resumed (revised with what follows) when the user speaks again within
  ``resume_s`` of its end.

Measured on the conversation benchmark's 37 questions with a pause (its first two sets): word
error 0.207 decoding each part alone (the second with the first's words as prompt), 0.111
decoding the turn whole. A taken turn is resumed when the turn-taking ended it at a pause ("do I
need a graphics card … to run it"), also when the persona began to answer it meanwhile.

Audio is 16-bit mono PCM bytes at ``sample_rate``.
"""

from __future__ import annotations

import time

CONTEXT_S = 6.0  # words heard within this long (and before the persona spoke) prompt the next


class TurnWords:
    """The current turn's revisable audio and words, and the words heard before it.

    Args:
        sample_rate: Sample rate of the PCM audio (16-bit mono).
        revise_s: Longest turn decoded again whole when the user goes on; 0 disables.
        resume_s: A taken turn is resumed when the user speaks again within this long of its
            end; 0 disables (so does ``revise_s`` 0).
        clock: Monotonic clock in seconds.
    """

    def __init__(self, *, sample_rate: int, revise_s: float = 0.0, resume_s: float = 0.0,
                 clock=time.monotonic):  # fmt: skip
        self.sample_rate = sample_rate
        self.revise_s = revise_s
        self.resume_s = resume_s
        self._clock = clock
        self.heard = ""  # words delivered before the turn's revisable audio (prompt)
        self._heard_at = 0.0
        self.pcm = b""  # this turn's audio whose transcript was delivered (revisable)
        self.text = ""  # that transcript
        self._taken: tuple[bytes, str, float] | None = None  # the last taken turn, and when
        self.revised = 0  # transcripts that replaced the turn's earlier one

    def recent(self) -> str:
        """The words heard before this turn, if heard within ``CONTEXT_S``."""
        return self.heard if self._clock() - self._heard_at < CONTEXT_S else ""

    def take(self) -> None:
        """The turn-taking ended the turn: keep it for a resume, then close it."""
        if self.revise_s > 0 and self.resume_s > 0 and self.text:
            self._taken = (self.pcm, self.text, self._clock())
        self.close()

    def close(self) -> None:
        """The turn was taken: its words become context, its audio is no longer revised."""
        if self.text:
            self._add_heard(self.text)
        self.pcm, self.text = b"", ""

    def forget(self) -> None:
        """The persona answered: close the turn and drop the context words."""
        self.close()
        self.heard = ""

    def whole(self, pcm: bytes) -> tuple[bytes, str]:
        """The audio to decode for new audio ``pcm``, and the transcript its result replaces."""
        if self.text and len(self.pcm) + len(pcm) > self.revise_s * self.sample_rate * 2:
            self.close()  # too long to decode again whole: go on part by part
        if not self.text:
            return pcm, ""
        return self.pcm + pcm, self.text

    def resume(self) -> bool:
        """The user speaks again: a turn taken within ``resume_s`` goes on. True if resumed."""
        taken, self._taken = self._taken, None
        if taken is None or self.text or self._clock() - taken[2] > self.resume_s:
            return False
        self.pcm, self.text = taken[0], taken[1]
        if self.heard.endswith(taken[1]):  # its words are being heard again, not context
            self.heard = self.heard[: len(self.heard) - len(taken[1])].strip()
        return True

    def delivered(self, text: str, new_pcm: bytes, revises: str) -> None:
        """A decode of ``whole(new_pcm)`` gave ``text``, replacing ``revises`` (may be "")."""
        if self.revise_s > 0 and revises == self.text:
            self.pcm, self.text = self.pcm + new_pcm, text
        else:  # the turn was closed meanwhile (taken, or the persona began to answer it)
            if revises and self.heard.endswith(revises):  # its start is heard again, whole
                self.heard = self.heard[: len(self.heard) - len(revises)].strip()
            self._add_heard(text)
        if revises:
            self.revised += 1

    def _add_heard(self, text: str) -> None:
        self.heard = f"{self.heard} {text}".strip()
        self._heard_at = self._clock()
