"""File input: feeds the user's WAV (and optional camera clip) into the pipeline, then ends the run.

Audio goes in as 20 ms ``InputAudioRawFrame`` chunks through pipecat's own input path
(``push_audio_frame``). After the WAV, silence keeps flowing so VAD and turn logic can close the
user's turn. The run ends (``EndWorkerFrame`` upstream, so the worker sends ``EndFrame`` down) when:

* the WAV has been fed, the user's turn is not open, no reply is owed (every
  ``UserStoppedSpeakingFrame`` was followed by a ``BotStartedSpeakingFrame``), the persona is not
  speaking, and this has lasted ``end_grace_s`` of media time; or
* ``max_tail_s`` of media time has passed since the WAV ended (a run always ends).

Pacing (see ``clock.py``): real time by default. With ``fast=True`` the feeder skips ahead, yielding
to the event loop after every chunk, through the WAV while no answer is being worked on and the
persona is silent, and through persona audio already placed on the timeline; from a ``VADUserStoppedSpeakingFrame`` or
``UserStoppedSpeakingFrame`` until the persona starts speaking (or the user resumes) it follows
the wall clock, so turn-detection timers and service latencies keep their real length.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndWorkerFrame,
    Frame,
    InputAudioRawFrame,
    OutputTransportReadyFrame,
    StartFrame,
    UserImageRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_transport import TransportParams

from presence.transports.file.clock import SessionClock
from presence.transports.file.media import CameraReader

CHUNK_S = 0.02
READY_TIMEOUT_S = 10.0
YIELDS_PER_FAST_CHUNK = 4


class FileInputTransport(BaseInputTransport):
    """Feeds a WAV (16 kHz mono int16) and an optional camera clip on the session clock.

    Args:
        pcm: The user's audio, mono int16 at ``params.audio_in_sample_rate``.
        params: Transport params (audio in enabled at 16 kHz; video in when a camera is given).
        clock: The session clock this feeder advances.
        camera: Optional camera clip, pushed as ``UserImageRawFrame`` at its own frame rate.
        fast: Run faster than real time where the content is already known.
        end_grace_s: Media seconds of quiet, after the WAV and the last reply, before ending.
        max_tail_s: Media seconds after the WAV ends at which the run ends regardless.
        user_id: ``user_id`` stamped on camera frames.
    """

    def __init__(
        self,
        pcm: np.ndarray,
        params: TransportParams,
        clock: SessionClock,
        *,
        camera: CameraReader | None = None,
        fast: bool = False,
        end_grace_s: float = 1.5,
        max_tail_s: float = 30.0,
        user_id: str = "user",
        **kwargs,
    ):
        super().__init__(params, **kwargs)
        self._pcm = pcm
        self._clock = clock
        self._camera = camera
        self._fast = fast
        self._end_grace_s = end_grace_s
        self._max_tail_s = max_tail_s
        self._user_id = user_id
        self._feeder: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._wav_end_s = len(pcm) / (params.audio_in_sample_rate or 16000)
        self._user_open = False
        self._reply_owed = False
        self._awaiting = False  # the user paused or finished: the pipeline is working on it
        self._bot_speaking = False
        self._quiet_since: float | None = None
        self._next_camera_s = 0.0
        self.end_reason: str | None = None
        """Why the feeder ended the run: ``"completed"`` or ``"max_duration"`` (None: not yet)."""

    @property
    def wav_duration_s(self) -> float:
        """Duration of the user's audio in seconds."""
        return self._wav_end_s

    async def start(self, frame: StartFrame):
        """Start the base input, then the feeder."""
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._feeder is None:
            self._feeder = self.create_task(self._feed(), "file_feeder")

    async def stop(self, frame):
        """Stop feeding, release the clock, then stop the base input."""
        await self._stop_feeder()
        await super().stop(frame)

    async def cancel(self, frame):
        """Stop feeding, release the clock, then cancel the base input."""
        await self._stop_feeder()
        await super().cancel(frame)

    async def cleanup(self):
        """Release the feeder and the camera."""
        await self._stop_feeder()
        await super().cleanup()
        if self._camera is not None:
            self._camera.close()

    async def _stop_feeder(self) -> None:
        self._clock.release()
        if self._feeder is not None:
            task, self._feeder = self._feeder, None
            if not task.done():
                await self.cancel_task(task)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Track turn state from frames passing by, then let the base input handle them."""
        if isinstance(frame, OutputTransportReadyFrame):
            self._ready.set()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking, self._reply_owed, self._awaiting = True, False, False
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            self._awaiting = False
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._awaiting = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_open = True
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_open, self._reply_owed, self._awaiting = False, True, True
        await super().process_frame(frame, direction)

    # -- feeding -------------------------------------------------------------------------------

    async def _feed(self) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT_S)
        except TimeoutError:
            logger.warning(f"{self}: output not ready after {READY_TIMEOUT_S}s; feeding anyway")
        rate = self.sample_rate or 16000
        chunk = int(rate * CHUNK_S)
        silence = bytes(2 * chunk)
        pos, total = 0, len(self._pcm)
        next_wall: float | None = None
        logger.debug(f"{self}: feeding {total / rate:.2f}s of audio (fast={self._fast})")
        while True:
            user_audio = pos < total
            if user_audio:
                piece = self._pcm[pos : pos + chunk]
                audio = piece.tobytes() + bytes(2 * (chunk - len(piece)))
                pos += chunk
            else:
                audio = silence
            await self.push_audio_frame(
                InputAudioRawFrame(audio=audio, sample_rate=rate, num_channels=1)
            )
            self._clock.advance(chunk)
            await self._push_camera_frames()

            reason = self._end_reason(wav_done=pos >= total)
            if reason:
                self.end_reason = reason
                logger.debug(f"{self}: ending the session ({reason}) at {self._clock.now():.2f}s")
                self._clock.release()
                await self.push_frame(EndWorkerFrame(reason=reason), FrameDirection.UPSTREAM)
                return

            ahead = self._clock.now() < self._clock.bot_audio_until_s or (
                pos < total and not self._awaiting and not self._bot_speaking
            )
            if self._fast and ahead:
                next_wall = None
                if user_audio:
                    # User audio: let this chunk travel the pipeline before the next, so turn
                    # logic reacts at the right media time (never slower than real time).
                    await self._clock.wait_seen(CHUNK_S)
                for _ in range(YIELDS_PER_FAST_CHUNK):  # let frames it caused travel upstream
                    await asyncio.sleep(0)
            else:
                now = time.monotonic()
                if next_wall is None or next_wall < now - 0.2:
                    next_wall = now
                next_wall += CHUNK_S
                await asyncio.sleep(max(0.0, next_wall - time.monotonic()))

    def _end_reason(self, *, wav_done: bool) -> str | None:
        now = self._clock.now()
        if now >= self._wav_end_s + self._max_tail_s:
            return "max_duration"
        busy = (
            not wav_done
            or self._user_open
            or self._reply_owed
            or self._bot_speaking
            or now < self._clock.bot_speech_until_s
        )
        if busy:
            self._quiet_since = None
            return None
        if self._quiet_since is None:
            self._quiet_since = now
        return "completed" if now - self._quiet_since >= self._end_grace_s else None

    async def _push_camera_frames(self) -> None:
        if self._camera is None or not self._params.video_in_enabled:
            return
        while self._next_camera_s <= self._clock.now():
            image = self._camera.read()
            if image is None:
                self._camera = None
                return
            self._next_camera_s += 1.0 / self._camera.fps
            h, w = image.shape[:2]
            frame = UserImageRawFrame(
                image=image.tobytes(), size=(w, h), format="RGB", user_id=self._user_id
            )
            frame.transport_source = "camera"
            await self.push_video_frame(frame)
