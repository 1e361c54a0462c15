"""``BenchTransport``: plays scripted users into a pipeline in real time and timestamps the output.

Input: 20 ms chunks of 16 kHz audio on an absolute schedule (silence between turns). Each voiced
chunk carries ``metadata["script_text"]`` (its phrase) for scripted STTs. After a turn's last
segment the user waits for a reply to start (after that segment) and stop (or ``max_wait_s``), then ``gap_s`` more,
and speaks the next turn. When the script is done it ends the run with ``EndWorkerFrame``.

Output: a playout device model — audio is "heard" when its chunk starts playing (chunks play back
to back in real time; a ``buffer_s`` device buffer); images are "shown" when pipecat's output
draws them. Every time is on the pipeline clock (ns), the same clock observers get.

Records (read after the run): ``turn_marks`` (per turn: start, segment ends and starts),
``speech_heard_ns`` (start of every speech chunk heard), ``speaking_image_shown_ns`` (first
show of every image the renderer paired with speech), ``speaking_image_set_ns`` (when each such
image became the current image).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndWorkerFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    OutputTransportReadyFrame,
    StartFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from presence.benchmarks.latency.users import RATE, ScriptedTurn
from presence.processors.renderer.output_sync import output_video_params

CHUNK_S = 0.02


@dataclass
class TurnMarks:
    """When a scripted turn happened, in pipeline-clock ns.

    Attributes:
        start_ns: First sample of the turn.
        segment_starts_ns: Start of each segment.
        segment_ends_ns: End of each segment's last voiced sample.
    """

    start_ns: int
    segment_starts_ns: list[int] = field(default_factory=list)
    segment_ends_ns: list[int] = field(default_factory=list)

    @property
    def end_ns(self) -> int:
        """End of the user's speech in this turn."""
        return self.segment_ends_ns[-1]


def _now_ns(processor: FrameProcessor) -> int:
    return processor.get_clock().get_time()


class BenchInput(BaseInputTransport):
    """Feeds the script in real time; see the module docstring."""

    def __init__(self, script: list[ScriptedTurn], params: TransportParams, *, lead_s: float,
                 gap_s: float, max_wait_s: float, **kwargs):  # fmt: skip
        super().__init__(params, **kwargs)
        self._script = script
        self._lead_s, self._gap_s, self._max_wait_s = lead_s, gap_s, max_wait_s
        self._ready = asyncio.Event()
        self._bot_started = asyncio.Event()
        self._bot_stopped = asyncio.Event()
        self._feeder: asyncio.Task | None = None
        self._due = 0.0
        self.turn_marks: list[TurnMarks] = []
        self.finished = False

    async def start(self, frame: StartFrame):
        """Start the base input and the feeder."""
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._feeder is None:
            self._feeder = self.create_task(self._feed(), "bench_feeder")

    async def _stop_feeder(self):
        if self._feeder is not None:
            task, self._feeder = self._feeder, None
            if not task.done():
                await self.cancel_task(task)

    async def stop(self, frame):
        """Stop feeding, then the base input."""
        await self._stop_feeder()
        await super().stop(frame)

    async def cancel(self, frame):
        """Stop feeding, then cancel the base input."""
        await self._stop_feeder()
        await super().cancel(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Follow the bot's speaking state (frames from the output travel upstream past us)."""
        if isinstance(frame, OutputTransportReadyFrame):
            self._ready.set()
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_started.set()
            self._bot_stopped.clear()
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_stopped.set()
        await super().process_frame(frame, direction)

    async def _push(self, audio: bytes, text: str | None = None) -> None:
        now = time.monotonic()
        if self._due < now - 0.2:  # fell far behind (a stalled loop): resynchronise
            self._due = now
        if self._due > now:
            await asyncio.sleep(self._due - now)
        self._due += CHUNK_S
        frame = InputAudioRawFrame(audio=audio, sample_rate=RATE, num_channels=1)
        if text:
            frame.metadata["script_text"] = text
        await self.push_audio_frame(frame)

    async def _silence(self, seconds: float) -> None:
        chunk = bytes(2 * int(RATE * CHUNK_S))
        for _ in range(max(0, round(seconds / CHUNK_S))):
            await self._push(chunk)

    async def _speak(self, audio: np.ndarray, text: str) -> int:
        """Push ``audio``; return the pipeline time its last sample ends."""
        n = int(RATE * CHUNK_S)
        pad = (-len(audio)) % n
        padded = np.concatenate([audio, np.zeros(pad, np.int16)]) if pad else audio
        for i in range(0, len(padded), n):
            await self._push(padded[i : i + n].tobytes(), text)
        return _now_ns(self) - int(pad / RATE * 1e9)

    async def _await_reply(self) -> None:
        deadline = time.monotonic() + self._max_wait_s
        while time.monotonic() < deadline:
            if self._bot_started.is_set() and self._bot_stopped.is_set():
                return
            await self._silence(0.1)
        logger.debug(f"{self}: no complete reply within {self._max_wait_s}s; next turn")

    async def _feed(self) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), 10)
        except TimeoutError:
            logger.warning(f"{self}: output not ready after 10 s; feeding anyway")
        self._due = time.monotonic()
        await self._silence(self._lead_s)
        for turn in self._script:
            marks = TurnMarks(start_ns=_now_ns(self))
            for j, segment in enumerate(turn.segments):
                if j:
                    await self._silence(turn.pauses_ms[j - 1] / 1000)
                marks.segment_starts_ns.append(_now_ns(self))
                marks.segment_ends_ns.append(await self._speak(segment.audio, segment.text))
            # wait for a reply that starts after the turn (not one to a false end of turn)
            self._bot_started.clear()
            self._bot_stopped.clear()
            self.turn_marks.append(marks)
            await self._await_reply()
            await self._silence(self._gap_s)
        self.finished = True
        await self.push_frame(EndWorkerFrame(reason="script finished"), FrameDirection.UPSTREAM)


class BenchOutput(BaseOutputTransport):
    """A playout device model that timestamps heard speech and shown speaking images."""

    def __init__(self, params: TransportParams, *, buffer_s: float = 0.04, **kwargs):
        super().__init__(params, **kwargs)
        self._buffer_s = buffer_s
        self._play_at = 0.0
        self._last_image: int | None = None
        self._speaking_images: dict[int, None] = {}  # ids of images paired with speech, in order
        self._unset_images: dict[int, None] = {}  # the same, until pipecat makes them current
        self.speech_heard_ns: list[int] = []
        self.speaking_image_shown_ns: list[int] = []
        self.speaking_image_set_ns: list[int] = []

    async def start(self, frame: StartFrame):
        """Start pipecat's media sender and report ready."""
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Note which images come right before speech (the renderer's speaking frames)."""
        if direction == FrameDirection.DOWNSTREAM:
            if isinstance(frame, OutputImageRawFrame):
                self._last_image = id(frame)
            elif isinstance(frame, TTSAudioRawFrame):
                if self._last_image is not None:
                    self._speaking_images[self._last_image] = None
                    self._unset_images[self._last_image] = None
                    while len(self._speaking_images) > 256:  # never drawn (replaced before a tick)
                        self._speaking_images.pop(next(iter(self._speaking_images)))
                    while len(self._unset_images) > 256:
                        self._unset_images.pop(next(iter(self._unset_images)))
            elif isinstance(frame, OutputAudioRawFrame):
                self._last_image = None  # an image whose period starts with silence is idle
        await super().process_frame(frame, direction)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        """Note when a speaking image became current: pipecat's audio task pushes each synced
        image on right after making it the current image."""
        if isinstance(frame, OutputImageRawFrame) and id(frame) in self._unset_images:
            self._unset_images.pop(id(frame))
            self.speaking_image_set_ns.append(_now_ns(self))
        await super().push_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Play ``frame`` after what is queued; block while the device buffer is full."""
        now = time.monotonic()
        if self._play_at < now:
            self._play_at = now
        starts_in = self._play_at - now
        self._play_at += len(frame.audio) / 2 / frame.sample_rate / max(1, frame.num_channels)
        if isinstance(frame, TTSAudioRawFrame):
            self.speech_heard_ns.append(_now_ns(self) + int(starts_in * 1e9))
        wait = self._play_at - now - self._buffer_s
        if wait > 0:
            await asyncio.sleep(wait)
        return True

    async def write_video_frame(self, frame: OutputImageRawFrame) -> bool:
        """Note when a speaking image is first shown."""
        if id(frame) in self._speaking_images:
            self._speaking_images.pop(id(frame))
            self.speaking_image_shown_ns.append(_now_ns(self))
        return True


class BenchTransport(BaseTransport):
    """Scripted user in, timestamped audio and video out.

    Args:
        script: The user's turns.
        video: Enable video output (for pipelines with a renderer).
        width: Video width.
        height: Video height.
        fps: Video frame rate.
        audio_out_sample_rate: Rate of the persona's audio.
        lead_s: Silence before the first turn.
        gap_s: Silence after a reply before the next turn.
        max_wait_s: Longest wait for a reply before the next turn anyway.
    """

    def __init__(self, script: list[ScriptedTurn], *, video: bool = True, width: int = 512,
                 height: int = 512, fps: int = 25, audio_out_sample_rate: int = 24000,
                 lead_s: float = 1.0, gap_s: float = 0.6, max_wait_s: float = 8.0, name: str | None = None):  # fmt: skip
        super().__init__(name=name)
        self.bench_params = TransportParams(
            audio_in_enabled=True,
            audio_in_sample_rate=RATE,
            audio_out_enabled=True,
            audio_out_sample_rate=audio_out_sample_rate,
            video_out_enabled=video,
            video_out_is_live=False,
            video_out_width=width,
            video_out_height=height,
            video_out_framerate=fps,
            # with video (the renderer's output) audio leaves in the chunks the real transports
            # get from ``output_video_params`` (10 ms); plain pipecat keeps pipecat's default
            audio_out_10ms_chunks=output_video_params(width, height, fps)["audio_out_10ms_chunks"]
            if video
            else TransportParams().audio_out_10ms_chunks,
        )
        self._input = BenchInput(script, self.bench_params, lead_s=lead_s, gap_s=gap_s,
                                 max_wait_s=max_wait_s, name=f"{self.name}#input")  # fmt: skip
        self._output = BenchOutput(self.bench_params, name=f"{self.name}#output")

    def input(self) -> BenchInput:
        """The scripted-user input processor."""
        return self._input

    def output(self) -> BenchOutput:
        """The timestamping output processor."""
        return self._output
