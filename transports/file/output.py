"""File output: writes what the persona says and shows into an MP4 on the session's media clock.

Audio takes pipecat's own output path (resampling, 10 ms chunking, bot-speaking frames,
interruptions); ``write_audio_frame`` then places each chunk on the timeline at
``max(end of previous persona audio, session now)``, so speech lands where a listener would have
heard it and silence fills the gaps. A write returns once the session clock is within
``PLAYOUT_LEAD_S`` of the chunk's end, like a device that plays as it is fed.

Images: every downstream ``OutputImageRawFrame`` is routed through the audio queue (pipecat's
``sync_with_audio`` path, via ``write_transport_frame``), so it is handled right after the audio
that preceded it was placed; it becomes current at that point of the timeline. A renderer that
pushes one image per ``1/fps`` of audio, each image *before* the audio of its period
(``image_k, audio_k, image_k+1, ...``), therefore gets image ``k`` at the start of audio period
``k``: exactly at 25 fps (40 ms = four 10 ms chunks), within 10 ms otherwise. The audio right
after an image starts where that image landed (the later of the audio's end and the clock), so an
image pushed after a stall of the output keeps its audio: the stall becomes silence before both,
as a listener heard it, instead of the audio moving up to ``CONTINUE_WITHIN_S`` ahead of its image.
Video frames are emitted at a constant fps by ``Mp4Writer``; see ``writer.py`` for how frames pick images.

Speech starts: a stretch of persona speech is a run of ``TTSAudioRawFrame`` chunks (the renderer
sends speech as TTS audio and idle silence as plain audio; pipecat's chunking keeps the type)
placed back to back. For each stretch the summary's ``speech_starts`` lists ``audio_s`` (where
its first chunk was placed), ``image_s`` (where the image handled right before that chunk, with
no audio in between, became current: the renderer's first speaking image; None without one),
``frame`` (the first video frame that showed that image, from the writer) and ``frame_s``
(``frame / fps``, when that frame starts).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    DataFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from presence.transports.file.clock import SessionClock
from presence.transports.file.writer import Mp4Writer

PLAYOUT_LEAD_S = 0.04
CONTINUE_WITHIN_S = 0.1
PUMP_PERIOD_S = 0.1
MAX_BACKLOG = 64


AUDIBLE = 64
"""Peak int16 level above which a chunk counts as speech (the renderer's idle audio is silence)."""


@dataclass
class _TimelineImage(DataFrame):
    """An output image travelling in the audio queue, so it is handled in order with the audio."""

    image: OutputImageRawFrame | None = None


class FileOutputTransport(BaseOutputTransport):
    """Writes persona audio and video to an MP4 on the session clock.

    Timeline decisions (where a chunk or image lands) are made on the event loop from this
    object's own cursor; encoding runs in order on one worker thread, so a burst of encoding
    (e.g. the first image after a long silence) never shifts what comes next.

    Args:
        path: The MP4 to write.
        params: Transport params (audio out at 24 kHz, 10 ms chunks, video out size and fps).
        clock: The session clock (advanced by the file input).
        on_finished: Called once with the writer's summary after the MP4 is closed.
    """

    def __init__(
        self,
        path: str | Path,
        params: TransportParams,
        clock: SessionClock,
        *,
        on_finished: Callable[[dict], None] | None = None,
        poster: np.ndarray | None = None,
        **kwargs,
    ):
        super().__init__(params, **kwargs)
        self._poster = poster
        self._path = Path(path)
        self._clock = clock
        self._on_finished = on_finished
        self._writer: Mp4Writer | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mp4-writer")
        self._jobs: deque[asyncio.Future] = deque()
        self._pump: asyncio.Task | None = None
        self._cursor = 0  # end of the persona audio placed so far, in output samples
        self._finished = False
        # Where the last image landed, if no audio came after it: a stretch of speech that
        # starts within CONTINUE_WITHIN_S of it starts with it (the renderer's first image).
        self._image_anchor: float | None = None
        # Speech starts (see the module docstring): the last image handled and its index in
        # the writer, while no audio came after it; whether the last chunk placed was speech.
        self._images_sent = 0
        self._last_image: tuple[float, int] | None = None
        self._in_speech = False
        self._speech_starts: list[dict] = []
        self.summary: dict | None = None
        """The writer's summary once the MP4 is closed."""

    async def _run(self, fn, *args):
        return await self.get_event_loop().run_in_executor(self._executor, fn, *args)

    async def _submit(self, fn, *args) -> None:
        """Queue writer work in order without waiting for it (bounded backlog)."""
        self._jobs.append(self.get_event_loop().run_in_executor(self._executor, fn, *args))
        while self._jobs and (self._jobs[0].done() or len(self._jobs) > MAX_BACKLOG):
            await self._settle(self._jobs.popleft())

    async def _settle(self, job: asyncio.Future) -> None:
        try:
            await job
        except Exception as exc:
            logger.error(f"{self}: writing {self._path} failed: {exc}")

    async def start(self, frame):
        """Open the MP4 and start pipecat's media sender."""
        await super().start(frame)
        if self._writer is None:
            p = self._params
            self._writer = await self._run(
                lambda: Mp4Writer(
                    self._path,
                    width=p.video_out_width,
                    height=p.video_out_height,
                    fps=p.video_out_framerate,
                    sample_rate=self.sample_rate,
                    poster=self._poster,
                )
            )
            self._pump = self.create_task(self._pump_video(), "mp4_video_pump")
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame):
        """Let queued audio and images reach the file, then close it."""
        self._clock.release()
        await super().stop(frame)
        await self._finish()

    async def cancel(self, frame: CancelFrame):
        """Close the file with what was written so far."""
        self._clock.release()
        await super().cancel(frame)
        await self._finish()

    async def cleanup(self):
        """Make sure the file is closed, then release the writer thread."""
        await super().cleanup()
        await self._finish()
        self._executor.shutdown(wait=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Route downstream images through the audio queue; everything else goes to the base."""
        if isinstance(frame, InputAudioRawFrame):
            self._clock.note_seen(frame.num_frames)
        if (
            isinstance(frame, OutputImageRawFrame)
            and direction == FrameDirection.DOWNSTREAM
            and frame.transport_destination in self._media_senders
        ):
            await super(BaseOutputTransport, self).process_frame(frame, direction)
            wrapper = _TimelineImage(image=frame)
            wrapper.transport_destination = frame.transport_destination
            await self._media_senders[frame.transport_destination].handle_sync_frame(wrapper)
            return
        await super().process_frame(frame, direction)

    def _position(self) -> float:
        """Where the timeline is now: the later of the persona audio's end and the clock."""
        return max(self._cursor / self.sample_rate, self._clock.now())

    async def _pump_video(self) -> None:
        """Keep video encoding close to the clock so it never piles up into one burst."""
        while True:
            await asyncio.sleep(PUMP_PERIOD_S)
            if self._writer is not None and not self._finished:
                await self._submit(self._writer.advance_video, self._position())

    async def write_transport_frame(self, frame: Frame):
        """Place an image (handled after the audio before it) on the timeline."""
        if not isinstance(frame, _TimelineImage) or self._writer is None or self._finished:
            return
        arr = _image_array(frame.image)
        if arr is None:
            return
        t = self._position()
        self._image_anchor = t
        self._last_image = (t, self._images_sent)
        self._images_sent += 1
        await self._submit(self._writer.add_image, arr, t)
        await self._submit(self._writer.advance_video, t)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Place a chunk of persona audio on the timeline, then wait for it to 'play'."""
        if self._writer is None or self._finished:
            return False
        pcm = np.frombuffer(frame.audio, dtype=np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels).mean(axis=1).astype(np.int16)
        rate = self.sample_rate
        now = round(self._clock.now() * rate)
        within = CONTINUE_WITHIN_S * rate
        # A chunk that arrives within CONTINUE_WITHIN_S of the end of the previous one
        # continues it seamlessly (the feeder may step a little past the cursor); later than
        # that it starts a new stretch at "now" (or at the image just before it), with silence
        # in between.
        start = self._cursor if now - self._cursor <= within else now
        anchor, self._image_anchor = self._image_anchor, None
        if anchor is not None and 0 <= now - anchor * rate <= within:
            start = max(self._cursor, round(anchor * rate))  # the image's period starts with it
        self._note_speech(frame, start, rate)
        self._cursor = start + len(pcm)
        end_s = self._cursor / rate
        self._clock.bot_audio_until_s = end_s
        if pcm.size and int(np.abs(pcm).max()) > AUDIBLE:
            self._clock.bot_speech_until_s = end_s
        await self._submit(self._writer.write_audio, pcm, start)
        await self._submit(self._writer.advance_video, start / rate)
        await self._clock.wait_until(end_s - PLAYOUT_LEAD_S)
        return True

    def _note_speech(self, frame: OutputAudioRawFrame, start: int, rate: int) -> None:
        """Record the start of a stretch of speech (TTS audio after other audio or a gap)."""
        speech = isinstance(frame, TTSAudioRawFrame)
        if speech and (not self._in_speech or start != self._cursor):
            image = self._last_image
            self._speech_starts.append(
                {
                    "audio_s": round(start / rate, 4),
                    "image_s": round(image[0], 4) if image else None,
                    "image_index": image[1] if image else None,
                }
            )
        self._in_speech = speech
        self._last_image = None

    def _speech_starts_summary(self) -> list[dict]:
        """``speech_starts`` with the frame that first showed each start's image."""
        out = []
        fps = self._params.video_out_framerate
        for start in self._speech_starts:
            index = start.pop("image_index", None)
            frame = None
            if index is not None and self._writer is not None:
                frame = self._writer.first_frame_showing(index)
            start["frame"] = frame
            start["frame_s"] = None if frame is None else round(frame / fps, 4)
            out.append(start)
        return out

    async def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._pump is not None:
            pump, self._pump = self._pump, None
            await self.cancel_task(pump)
        while self._jobs:
            await self._settle(self._jobs.popleft())
        if self._writer is None:
            return
        end = self._position()
        try:
            self.summary = await self._run(self._writer.close, end)
        except Exception as exc:  # the file is the run's product: say so, don't hide it
            logger.error(f"{self}: could not finish {self._path}: {exc}")
            return
        self.summary["speech_starts"] = self._speech_starts_summary()
        if self._on_finished is not None:
            try:
                self._on_finished(self.summary)
            except Exception as exc:
                logger.error(f"{self}: writing the session report failed: {exc}")


def _image_array(frame: OutputImageRawFrame | None) -> np.ndarray | None:
    """An ``(h, w, c)`` array view of an image frame's bytes, or None if it cannot be read."""
    if frame is None:
        return None
    w, h = frame.size
    fmt = (frame.format or "RGB").upper()
    channels = {"RGB": 3, "RGBA": 4, "L": 1, "GRAY": 1}.get(fmt)
    if channels is None:
        from PIL import Image

        try:
            return np.asarray(Image.frombytes(fmt, (w, h), frame.image).convert("RGB"))
        except Exception:
            logger.warning(f"output image in format {fmt!r} cannot be read; skipped")
            return None
    arr = np.frombuffer(frame.image, dtype=np.uint8)
    if arr.size != w * h * channels:
        logger.warning(f"output image has {arr.size} bytes, not {w}x{h}x{channels}; skipped")
        return None
    return arr.reshape(h, w, channels) if channels > 1 else arr.reshape(h, w)
