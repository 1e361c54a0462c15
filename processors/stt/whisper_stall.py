"""What the Whisper service does when a decode stalls (a mixin of ``PresenceWhisperSTTService``).

A decode still running ``stall_timeout_s`` after it started is given up: a non-fatal error says so,
the persona tells a waiting user it did not catch that (``NOT_HEARD``), the segment's audio is kept
for the next decode, and the model is loaded afresh (at most once a minute) so later turns do not
queue behind a stuck engine. A decode that was only slow (a loaded machine) and ends before the user
speaks again still delivers its words, so the user is answered, late, without repeating themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from loguru import logger
from pipecat.frames.frames import CancelFrame, Frame, TranscriptionFrame, TTSSpeakFrame
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601

from presence.framework.frames import RevisedTranscriptionFrame
from presence.processors.stt.engines.stall import Every

_RELOAD_EVERY_S = 60.0  # a stalled model is loaded afresh at most this often
_LATE_S = 30.0  # a given-up decode's words are still used if they come within this long
NOT_HEARD = "Sorry, I didn't catch that. Could you say it again?"


class StalledDecodes:
    """Stall handling over the Whisper service's state (its generation, carry, words, model)."""

    def _init_stalls(self) -> None:
        self._reloads = Every(_RELOAD_EVERY_S)
        self.stalls = 0  # decodes given up after stall_timeout_s
        self.late_used = 0  # of those, decodes whose words still came in time to be used
        self._late: asyncio.Task | None = None

    async def _forget_late(self) -> None:
        if self._late is not None:
            await self.cancel_task(self._late)
            self._late = None

    async def cancel(self, frame: CancelFrame):
        """Stop waiting for a given-up decode, then cancel."""
        await self._forget_late()
        await super().cancel(frame)

    async def _stalled(
        self, generation: int, pcm: bytes, *, early: bool, late: asyncio.Future, revises: str
    ) -> AsyncGenerator[Frame, None]:
        """A decode ran past ``stall_timeout_s``: say so and keep its audio; reload if stuck.

        The segment's audio is decoded again: an early decode's at the VAD's stop (its audio is
        still buffered), a segment's with the user's next words, so nothing said is lost. A
        segment's decode that was only slow (a loaded machine) and finishes before the user speaks
        again still delivers its words (``_late_words``): the user is answered, late.
        """
        self.stalls += 1
        current = generation == self._generation  # else withdrawn already, its audio carried
        if current:
            self._generation += 1
            if early:
                self._early = None
            else:
                self._pending_pcm = b""
                self._carry = pcm + self._carry
        await self.push_error(
            f"{self}: whisper stalled: a decode ran over {self._stall_s:g} s; the audio is kept "
            "for the next one",
            fatal=False,
        )
        if current and not self._user_speaking:  # the user is waiting: do not leave them silent
            yield TTSSpeakFrame(NOT_HEARD)
        if current and not early:  # the model is loaded afresh only if it stays stuck
            await self._forget_late()  # an earlier given-up decode's words are too old now
            self._late = self.create_task(
                self._late_words(late, self._generation, pcm, revises), f"{self}::late"
            )
        else:
            await self._reload()

    async def _reload(self) -> None:
        if self._reloads.ready():
            logger.warning(f"{self}: a decode stalled; loading the model afresh")
            await asyncio.to_thread(self._load)

    async def _late_words(self, late: asyncio.Future, generation: int, pcm: bytes, revises: str):
        """Deliver a given-up decode's words if it ends before anything else happened.

        A decode still running ``stall_timeout_s`` after it was given up is taken as stuck: the
        model is loaded afresh (its words are still used should they come).
        """
        try:
            try:
                segments = await asyncio.wait_for(asyncio.shield(late), timeout=self._stall_s)
            except TimeoutError:
                await self._reload()
                segments = await asyncio.wait_for(asyncio.shield(late), timeout=_LATE_S)
        except Exception:  # noqa: BLE001 — still stuck, or it failed: its audio stays carried
            return
        text = self.text_of(segments)
        if (not text or generation != self._generation or self._user_speaking
                or not self._carry.startswith(pcm)):  # fmt: skip
            return
        self._carry = self._carry[len(pcm) :]
        self.late_used += 1
        self._words.delivered(text, pcm, revises)
        lang = Language(str(self._settings.language)) if self._settings.language else None
        args = (text, self._user_id, time_now_iso8601(), lang)
        frame = RevisedTranscriptionFrame(*args, revises=revises) if revises else None
        await self.push_frame(frame or TranscriptionFrame(*args))
