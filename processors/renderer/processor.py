"""The renderer processor: owns the A/V clock between the TTS and the output transport.

It consumes the TTS's ``OutputAudioRawFrame``/``TTSAudioRawFrame`` (with optional
``metadata["visemes"]``) and, every ``1/fps``, pushes one ``OutputImageRawFrame`` followed by
exactly the audio of that frame's period — speech as ``TTSAudioRawFrame`` while there is speech,
silence as a plain ``OutputAudioRawFrame`` between turns (so pipecat's bot-speaking logic is
unaffected). Audio and video durations are therefore equal by construction (see
``engines/base.py`` for the exact sample split; in real time an idle frame cut short at a speech
onset hands its silence to the next idle frame, see ``clock.py``). Other downstream data and control frames
(``TTSStoppedFrame``, text, …) leave in order with the audio they followed, so the transport's
"bot stopped speaking" comes after the last word is played, not when it was synthesised.

In real-time mode a clock task pushes one frame per ``1/fps``, repeating the last image when
rendering falls behind and sending idle silence just in time between turns; speech arriving during
an idle period starts at once with a speaking image, cutting that idle frame short (see
``clock.py``): no speech sample is ever pushed after an idle image. ``UserStartedSpeakingFrame``/
``UserStoppedSpeakingFrame`` switch the face to listening nods; ``InterruptionFrame`` drops queued
speech at once, so the next tick (within one frame period) is a listening frame.
``SpeechPauseFrame`` stops speech where it is (listening frames and silence follow, the rest stays
queued) until it comes again with ``paused`` False or an interruption drops the queue. In offline mode (``realtime=False``, the file transport's
``--fast``) frames are made as soon as audio arrives and idle frames are not generated.

Rendering runs on one worker thread; the event loop only moves frames. An engine that fails to
draw falls back to the still portrait (see ``engines/base.py``); the processor reports it once,
upstream, as a non-fatal ``ErrorFrame`` (the client sees an RTVI ``error``) and the call goes on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    StartFrame,
    SystemFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.framework.frames import SpeechPauseFrame
from presence.processors.renderer.clock import IDLE_PIECE_S, RendererClock
from presence.processors.renderer.engines.base import RenderedFrame, RendererEngine
from presence.processors.renderer.stats import RendererStats


class RendererProcessor(RendererClock, FrameProcessor):
    """Lip-synced video from TTS audio, one frame per ``1/fps`` of audio.

    Args:
        engine: A prepared ``RendererEngine`` (its fps and sample rate set the clock).
        realtime: Tick on the wall clock (live transports) or render as audio arrives (offline).
        idle_audio: Push silence with idle frames so audio and video stay paired end to end;
            required by the output sync (see ``output_sync.py``).
        sync_with_audio: Mark images ``sync_with_audio`` so pipecat's output shows each image when
            the audio before it has been played (see ``output_sync.py``).
        keep_images: Keep every pushed image's mouth opening in ``self.mouth_trace`` (benchmarks).
    """

    def __init__(
        self,
        engine: RendererEngine,
        *,
        realtime: bool = True,
        idle_audio: bool = True,
        sync_with_audio: bool = True,
        keep_images: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._engine = engine
        self._fps = engine.fps
        self._rate = engine.sample_rate
        self._realtime = realtime
        self._idle_audio = idle_audio
        self._sync = sync_with_audio
        self._keep = keep_images
        self.stats = RendererStats()
        self.mouth_trace: list[tuple[float, bool]] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="renderer")
        self._lock = threading.Lock()  # guards _inbox and _interrupt (never held while drawing)
        self._inbox: deque[tuple[bytes, list | None]] = deque()
        self._interrupt = False
        self._paused = False  # SpeechPauseFrame: speech waits in the queue
        self._user_speaking = False
        self._epoch = 0
        self._pending: deque[tuple[int, Frame]] = deque()  # (audio position, frame) held in order
        self._received = 0  # speech samples received (after resampling)
        self._sent = 0  # speech samples pushed out
        self._resampler = create_stream_resampler()
        self._clock_task: asyncio.Task | None = None
        self._last_image: bytes | None = None
        self._context_id: str | None = None
        self._tts_done = True
        self._speaking = False
        self._speech_arrived_at: float | None = None
        self._hold_since: float | None = None
        self._idle_event = asyncio.Event()
        self._wake = asyncio.Event()  # speech arrived: the clock may start it before the boundary
        self._idle_rest = np.zeros(0, np.int16)  # the current idle frame's silence not yet pushed
        self._owed = 0  # silence cut from idle frames at speech onsets, due in the next idle frame
        self._idle_frame = 0  # the frame (0-based, in push order) whose silence _idle_rest holds
        self._play_end = 0.0  # when the audio pushed so far ends, played from its arrival
        self._draw_s = 0.0  # recent time to draw a frame (smoothed): idle frames start that early
        self._piece = max(1, int(round(self._rate * IDLE_PIECE_S)))
        self._failure_reported = False

    @property
    def engine(self) -> RendererEngine:
        """The engine it drives (its ``width``, ``height``, ``fps``, ``sample_rate``)."""
        return self._engine

    # ----------------------------------------------------------------- frames

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Consume TTS audio; hold other downstream frames in order with it (see module doc)."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._realtime and not self._clock_task:
                self._clock_task = self.create_task(self._clock(), "renderer_clock")
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._paused = False
            if isinstance(frame, EndFrame):
                await self._drain()
            await self._stop()
            if isinstance(frame, EndFrame):
                await self._flush_idle()  # the last idle frame keeps all its samples
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._interrupt_now()
            await self.push_frame(frame, direction)
        elif isinstance(frame, SpeechPauseFrame):
            self._pause(frame.paused)
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._user_speaking = True
            self._engine.set_listening(True)
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_speaking = False
            self._engine.set_listening(False)
            await self.push_frame(frame, direction)
        elif direction == FrameDirection.DOWNSTREAM and self._is_ours(frame):
            await self._accept_audio(frame)
        elif isinstance(frame, SystemFrame) or direction == FrameDirection.UPSTREAM:
            await self.push_frame(frame, direction)
        else:
            if isinstance(frame, TTSStartedFrame):
                self._tts_done = False
                self._context_id = getattr(frame, "context_id", None) or self._context_id
            elif isinstance(frame, TTSStoppedFrame):
                self._tts_done = True
            if self._pending or self._received > self._sent:
                self._pending.append((self._received, frame))
                if not self._realtime and isinstance(frame, TTSStoppedFrame):
                    await self._offline_render(final=True)  # the utterance's last partial frame
            else:
                await self.push_frame(frame, direction)

    @staticmethod
    def _is_ours(frame: Frame) -> bool:
        return isinstance(frame, OutputAudioRawFrame) and frame.transport_destination is None

    async def _accept_audio(self, frame: OutputAudioRawFrame) -> None:
        audio = frame.audio
        if frame.num_channels > 1:
            pcm = np.frombuffer(audio, np.int16).reshape(-1, frame.num_channels)
            audio = pcm.mean(axis=1).astype(np.int16).tobytes()
        if frame.sample_rate != self._rate:
            audio = await self._resampler.resample(audio, frame.sample_rate, self._rate)
        if not audio:
            return
        if isinstance(frame, TTSAudioRawFrame) and frame.context_id:
            self._context_id = frame.context_id
        if self._speech_arrived_at is None:
            self._speech_arrived_at = time.monotonic()
        self._tts_done = False if isinstance(frame, TTSAudioRawFrame) else self._tts_done
        visemes = frame.metadata.get("visemes") if frame.metadata else None
        with self._lock:
            self._inbox.append((audio, visemes))
        self._received += len(audio) // 2
        self._wake.set()
        if not self._realtime:
            await self._offline_render(final=False)

    def _pause(self, paused: bool) -> None:
        """Real time only: stop speech at the next frame (the face listens), or go on at once."""
        if not self._realtime or paused == self._paused:
            return
        self._paused = paused
        self.stats.pauses += paused
        self._engine.set_listening(paused or self._user_speaking)  # listens while the user talks
        self._wake.set()

    def _interrupt_now(self) -> None:
        self._paused = False
        with self._lock:
            self._inbox.clear()
            self._interrupt = True
        self._epoch += 1
        self._pending = deque((p, f) for p, f in self._pending if not f.interruptible)
        self._sent = self._received
        self._speech_arrived_at = None
        self._tts_done = True

    # ------------------------------------------------------------------ render

    def _work(self, skip: int, hold: bool) -> list[RenderedFrame]:
        """On the render thread: apply queued input, then make ``skip`` undrawn frames + one."""
        with self._lock:
            if self._interrupt:
                self._engine.interrupt()
                self._interrupt = False
            inbox, self._inbox = self._inbox, deque()
        for audio, visemes in inbox:
            self._engine.push_audio(np.frombuffer(audio, np.int16), self._rate, visemes)
        frames = self._engine.next_frames(skip, render=False) if skip else []
        return frames + self._engine.next_frames(1, hold=hold)

    async def _push_audio(self, frame: OutputAudioRawFrame) -> None:
        """Push audio, keeping ``_play_end``: when a sink that plays on arrival finishes it."""
        self._play_end = max(self._play_end, time.monotonic()) + frame.num_frames / self._rate
        await self.push_frame(frame)

    async def _push_idle_piece(self) -> None:
        self._fill_dry()
        if not self._idle_rest.size:
            return
        piece, self._idle_rest = self._idle_rest[: self._piece], self._idle_rest[self._piece :]
        await self._push_audio(OutputAudioRawFrame(piece.tobytes(), self._rate, 1))

    async def _flush_idle(self) -> None:
        self._fill_dry()
        if self._idle_rest.size:
            rest, self._idle_rest = self._idle_rest, np.zeros(0, np.int16)
            await self._push_audio(OutputAudioRawFrame(rest.tobytes(), self._rate, 1))

    async def _offline_render(self, final: bool) -> None:
        """Offline: make every frame whose audio is complete (and, when ``final``, the rest)."""
        loop = asyncio.get_running_loop()
        while True:
            queued = self._received - self._sent
            need = self._engine.samples_in_frame(self._engine.frame_index)
            if queued <= 0 or (queued < need and not final):
                break
            frames = await loop.run_in_executor(self._executor, self._work, 0, False)
            for rendered in frames:
                await self._emit(rendered, None)
        await self._release(self._received if final else self._sent)

    async def _emit(self, rendered: RenderedFrame, due: float | None) -> None:
        if self._engine.failure is not None and not self._failure_reported:
            self._failure_reported = True
            await self.push_error(
                f"renderer {self._engine.name} failed ({self._engine.failure!r}); "
                "showing the still portrait, the voice goes on"
            )
        if rendered.image is not None:
            self._last_image = rendered.image.tobytes()
            self.stats.rendered += 1
        elif self._last_image is not None:
            self.stats.repeated += 1
            self.stats.repeats.append((time.monotonic(), rendered.speaking))
        else:  # cannot happen: the clock never skips before the first drawn frame
            self._last_image = bytes(self._engine.width * self._engine.height * 3)
        await self._flush_idle()  # the previous idle frame's last pieces go before this image
        image = OutputImageRawFrame(
            self._last_image, (self._engine.width, self._engine.height), "RGB"
        )
        image.sync_with_audio = self._sync
        await self.push_frame(image)
        speech = int(rendered.speaking) * rendered.audio.size
        if rendered.speaking:
            if not self._speaking and self._speech_arrived_at is not None:
                self.stats.first_speech_latency_s.append(time.monotonic() - self._speech_arrived_at)
            self._speaking = True
            audio = TTSAudioRawFrame(
                rendered.audio.tobytes(), self._rate, 1, context_id=self._context_id
            )
            await self._push_audio(audio)
        else:
            if self._speaking:
                self._speech_arrived_at = None
            self._speaking = False
            if self._idle_audio and due is not None:  # real time: just in time, piece by piece
                self._idle_rest, self._idle_frame = rendered.audio, self.stats.frames
                if self._owed:  # what the clock cut at the last speech onset (see clock.py)
                    owed, self._owed = np.zeros(self._owed, np.int16), 0
                    self._idle_rest = np.concatenate([rendered.audio, owed])
                    self.stats.audio_samples += owed.size
                await self._push_idle_piece()
            elif self._idle_audio:
                await self.push_frame(OutputAudioRawFrame(rendered.audio.tobytes(), self._rate, 1))
        self._sent = min(self._received, self._sent + rendered.speech_samples)
        self.stats.frames += 1
        self.stats.audio_samples += rendered.audio.size
        self.stats.speech_samples += speech
        if due is not None:
            self.stats.lateness_s.append(time.monotonic() - due)
            self.stats.late_frames += 1
        if self._keep:
            self.mouth_trace.append((rendered.mouth_open, rendered.speaking))
        await self._release(self._sent)

    async def _release(self, position: int) -> None:
        while self._pending and self._pending[0][0] <= position:
            _, frame = self._pending.popleft()
            await self.push_frame(frame)

    # ------------------------------------------------------------- lifecycle

    async def _drain(self) -> None:
        """Before ``EndFrame``: let queued speech (and the frames held with it) play out."""
        if not self._realtime:
            await self._offline_render(final=True)
            return
        while self._clock_task and (self._received > self._sent or self._pending):
            self._idle_event.clear()
            try:
                await asyncio.wait_for(self._idle_event.wait(), timeout=1.0)
            except TimeoutError:
                logger.debug("renderer: still draining speech before EndFrame")

    async def _stop(self) -> None:
        if self._clock_task:
            await self.cancel_task(self._clock_task)
            self._clock_task = None

    async def cleanup(self):
        """Stop the clock and the render thread."""
        await self._stop()
        self._executor.shutdown(wait=False)
        await super().cleanup()
