"""Resume gate: the persona's answer waits while a user who just paused is heard going on.

Turn-taking has to decide on a silence of a few hundred milliseconds. When it ends the turn at a
pause inside a sentence ("do I need a graphics card … to run it"), the answer to the first half is
being prepared while the user goes on. pipecat interrupts the persona once the VAD confirms the
user is speaking (``start_secs`` of voice), which is often after the answer's first audio has been
heard: the persona talked over the user.

``ResumeGate`` sits between TTS and the renderer and listens to the STT's ``VoiceHintFrame``, which
comes tens of milliseconds after the voice does. When the voice comes back within ``window_s`` of
the turn's end:

* before the answer's first audio has passed the gate, it holds the answer's frames;
* once the answer is playing, it sends ``SpeechPauseFrame(paused=True)``: the renderer stops the
  speech where it is and shows the listening face, keeping the rest queued. The persona falls
  silent as soon as the user goes on, as a person would, instead of talking on until the VAD
  confirms the speech. (A pipeline without a renderer has nothing to pause: its answer stops at
  pipecat's interruption.)

Then:

* an interruption comes (the VAD confirmed the user is speaking and pipecat interrupts the persona):
  the held frames are dropped and the renderer drops its queue — nothing more of the answer is
  heard or seen;
* the voice goes quiet again before the VAD confirms speech, or ``hold_s`` passes without it (a
  cough, a click): the held frames go on, in order, a little late, and a paused answer goes on from
  where it stopped (``SpeechPauseFrame(paused=False)``). Once the VAD has confirmed speech the gate
  waits up to ``interrupt_s`` for the interruption (pipelines with interruptions off get their
  answer then); the end of the pipeline releases everything at once.

System frames always pass. Only an answer's first moments are ever held or paused: past
``window_s`` after the turn's end the gate is open until the next turn ends.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InterruptionFrame,
    StopFrame,
    SystemFrame,
    TTSAudioRawFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.framework.frames import SpeechPauseFrame, VoiceHintFrame


class ResumeGate(FrameProcessor):
    """Holds or pauses an answer's start while the user's voice is back right after their turn.

    Args:
        hold_s: Longest hold without the VAD confirming speech; then the answer goes on.
        window_s: The voice must come back within this long after the turn ended.
        interrupt_s: Longest hold once the VAD confirmed speech, waiting for the interruption.
        **kwargs: Passed to ``FrameProcessor``.

    Attributes:
        held: Answers held at least once before their first audio.
        paused: Times a playing answer was paused.
        dropped: Held or paused answers dropped because the user went on speaking.
    """

    def __init__(self, *, hold_s: float = 0.35, window_s: float = 1.0, interrupt_s: float = 1.0,
                 **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if min(hold_s, window_s, interrupt_s) <= 0:
            raise ValueError("hold_s, window_s and interrupt_s must be positive")
        self.hold_s, self.window_s, self.interrupt_s = hold_s, window_s, interrupt_s
        self._ended_at: float | None = None  # the user's turn ended (until they speak again)
        self._answering = False  # the answer's first audio has passed since then
        self._holding = False  # frames are held here (before the first audio)
        self._pausing = False  # the renderer was told to pause (after it)
        self._confirmed = False  # the VAD confirmed speech while holding or pausing
        self._buffer: list[tuple[Frame, FrameDirection]] = []
        self._timer: asyncio.Task | None = None
        self.held = self.paused = self.dropped = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Track the turn, the voice and the answer; hold or pass frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._ended_at, self._answering = time.monotonic(), False
        elif isinstance(frame, VoiceHintFrame):
            await self._hint(frame.voiced)
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._ended_at = None
            if self._holding or self._pausing:  # speech confirmed: the interruption should follow
                self._confirmed = True
                await self._start_timer(self.interrupt_s)
        elif isinstance(frame, InterruptionFrame):
            await self._drop()
            self._ended_at = None
        elif isinstance(frame, (EndFrame, StopFrame)):
            await self._release()
        if isinstance(frame, SystemFrame) or direction is FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
            return
        if self._holding:
            self._buffer.append((frame, direction))
            return
        if isinstance(frame, TTSAudioRawFrame):
            self._answering = True  # the answer is being heard: from now on, pause it
        await self.push_frame(frame, direction)

    async def _hint(self, voiced: bool) -> None:
        waiting = self._holding or self._pausing
        if voiced and not waiting and self._ended_at is not None:
            if time.monotonic() - self._ended_at > self.window_s:
                return
            self._confirmed = False
            if self._answering:
                self._pausing = True
                self.paused += 1
                logger.debug(f"{self}: the user's voice is back; pausing the answer")
                await self.push_frame(SpeechPauseFrame(paused=True))
            else:
                self._holding = True
                self.held += 1
                logger.debug(f"{self}: the user's voice is back; holding the answer")
            await self._start_timer(self.hold_s)
        elif not voiced and waiting and not self._confirmed:
            await self._release()

    async def _start_timer(self, delay: float) -> None:
        await self._cancel_timer()
        self._timer = self.create_task(self._release_after(delay), f"{self}::hold")

    async def _release_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._timer = None
        await self._release()

    async def _release(self) -> None:
        """The voice did not turn into speech: let the answer go on."""
        await self._cancel_timer()
        if self._pausing:
            await self.push_frame(SpeechPauseFrame(paused=False))
        self._holding = self._pausing = self._confirmed = False
        buffered, self._buffer = self._buffer, []
        for frame, direction in buffered:
            if isinstance(frame, TTSAudioRawFrame):
                self._answering = True
            await self.push_frame(frame, direction)

    async def _drop(self) -> None:
        """The persona is interrupted: what was held must never be heard.

        The renderer drops the rest of a paused answer, and its pause, on the same interruption.
        """
        await self._cancel_timer()
        if self._holding or self._pausing:
            self.dropped += 1
            logger.debug(f"{self}: the user went on; dropping {len(self._buffer)} held frames")
        self._holding = self._pausing = self._confirmed = False
        self._buffer = []

    async def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self.cancel_task(timer)

    async def cleanup(self):
        """Stop the hold timer."""
        await self._cancel_timer()
        await super().cleanup()
