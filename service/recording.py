"""Conversation recording: the persona's audio and video plus the user's audio, as one MP4.

``CallRecorder`` is a pipecat observer (it watches frames, it is not in the pipeline), so any
pipeline over any transport can be recorded without changing it. It records:

* **video**: every ``OutputImageRawFrame`` pushed into the output transport (the persona's face),
  placed at the moment it was pushed;
* **audio**: the persona's ``OutputAudioRawFrame`` pushed into the output transport, each placed
  at its push time or right after the persona's previous audio (the transport plays queued
  audio back to back), mixed with the user's ``InputAudioRawFrame`` from the input transport
  (resampled to the output rate) at their arrival time.

Encoding is ``presence.transports.file.writer.Mp4Writer`` (H.264/AAC through PyAV) on one worker
thread, so the event loop never waits on the encoder. Mixed audio is handed to the encoder
``MIX_LAG_S`` behind the newest frame, which leaves room for the user's audio of that span to be
added first.

Limits: times are push times, not play-out times (audio the persona had queued when the user
interrupted stays in the recording); frames still queued for the observer when the pipeline is
cancelled are lost (the file is padded to the end of the call with the last image and silence);
one recorder per conversation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from pathlib import Path

import numpy as np
from loguru import logger
from pipecat.frames.frames import InputAudioRawFrame, OutputAudioRawFrame, OutputImageRawFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport

MIX_LAG_S = 1.0


class AudioMix:
    """Mono int16 tracks summed on one sample timeline, handed out in order (pure numpy).

    Args:
        sample_rate: Rate of the timeline (and of every ``add``).
    """

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self.base = 0  # timeline sample of _buf[0]; everything before it was taken
        self._buf = np.zeros(0, dtype=np.int32)
        self.end = 0  # one past the last sample added

    def add(self, pcm: np.ndarray, start: int) -> int:
        """Sum ``pcm`` into the timeline from sample ``start`` (clipped to what is not taken)."""
        pcm = np.asarray(pcm, dtype=np.int32).reshape(-1)
        if start < self.base:
            pcm, start = pcm[self.base - start :], self.base
        stop = start + pcm.size
        if stop - self.base > self._buf.size:
            self._buf = np.concatenate(
                [self._buf, np.zeros(stop - self.base - self._buf.size, np.int32)]
            )
        self._buf[start - self.base : stop - self.base] += pcm
        self.end = max(self.end, stop)
        return start

    def take(self, upto: int) -> tuple[int, np.ndarray]:
        """``(start, int16 samples)`` of the timeline from ``base`` to ``upto`` (silence-filled)."""
        upto = max(upto, self.base)
        n = upto - self.base
        out = np.zeros(n, dtype=np.int32)
        have = min(n, self._buf.size)
        out[:have] = self._buf[:have]
        self._buf = self._buf[have:]
        start, self.base = self.base, upto
        return start, np.clip(out, -32768, 32767).astype(np.int16)


def _resampler(in_rate: int, out_rate: int):
    import soxr

    return soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16")


class CallRecorder(BaseObserver):
    """Records a conversation into ``path`` (see the module docstring).

    Args:
        path: Output MP4; its folder is created.
        width: Video width (even).
        height: Video height (even).
        fps: Video frame rate.
        sample_rate: Audio rate of the recording (the persona's output rate).
    """

    def __init__(self, path: Path, *, width: int, height: int, fps: int, sample_rate: int = 24000):
        super().__init__()
        from presence.transports.file.writer import Mp4Writer

        self.path = Path(path)
        self._writer = Mp4Writer(
            self.path, width=width, height=height, fps=fps, sample_rate=sample_rate
        )
        self._rate = sample_rate
        self._mix = AudioMix(sample_rate)
        self._bot_end = 0
        self._t0: int | None = None  # pipeline-clock ns of the first recorded frame
        self._last_s = 0.0
        self._resamplers: dict[tuple[str, int], object] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="recorder")
        self._closed = False
        self._offset = float("inf")

    def _seconds(self, timestamp: int) -> float:
        if self._t0 is None:
            self._t0 = timestamp
        t = max(0.0, (timestamp - self._t0) / 1e9)
        self._last_s = max(self._last_s, t)
        return t

    async def on_push_frame(self, data: FramePushed) -> None:
        """Take the persona's frames entering the output and the user's leaving the input."""
        if self._closed:
            return
        # pipeline clock = monotonic - offset; observers hear of pushes later, so the smallest
        # difference seen is the best estimate of the offset (used to find "now" at close)
        self._offset = min(self._offset, time.monotonic_ns() - data.timestamp)
        frame = data.frame
        if isinstance(data.destination, BaseOutputTransport):
            if isinstance(frame, OutputImageRawFrame):
                t = self._seconds(data.timestamp)
                image = np.frombuffer(frame.image, dtype=np.uint8)
                w, h = frame.size
                channels = image.size // max(1, w * h)
                if channels in (1, 3, 4):
                    image = image.reshape(h, w, channels) if channels > 1 else image.reshape(h, w)
                    self._pool.submit(self._video, image, t)
            elif isinstance(frame, OutputAudioRawFrame) and frame.audio:
                t = self._seconds(data.timestamp)
                pcm = self._mono("bot", frame.audio, frame.num_channels, frame.sample_rate)
                start = max(round(t * self._rate), self._bot_end)
                self._bot_end = start + pcm.size
                self._mix.add(pcm, start)
                self._flush(t)
        elif isinstance(data.source, BaseInputTransport) and isinstance(frame, InputAudioRawFrame):
            if frame.audio:
                t = self._seconds(data.timestamp)
                pcm = self._mono("user", frame.audio, frame.num_channels, frame.sample_rate)
                self._mix.add(pcm, round(t * self._rate))
                self._flush(t)

    def _mono(self, track: str, audio: bytes, channels: int, rate: int) -> np.ndarray:
        pcm = np.frombuffer(audio, dtype=np.int16)
        if channels > 1:
            pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
        if rate != self._rate:
            stream = self._resamplers.get((track, rate))
            if stream is None:
                stream = self._resamplers[(track, rate)] = _resampler(rate, self._rate)
            pcm = stream.resample_chunk(pcm)
        return pcm

    def _flush(self, t: float) -> None:
        upto = round((t - MIX_LAG_S) * self._rate)
        if upto > self._mix.base:
            start, pcm = self._mix.take(upto)
            self._pool.submit(self._writer.write_audio, pcm, start)

    def _video(self, image: np.ndarray, t: float) -> None:
        self._writer.add_image(image, t)
        self._writer.advance_video(t)

    def _close(self) -> dict:
        return self._writer.close(end_s=self._last_s)

    async def close(self) -> dict:
        """Write what is left and close the file.

        Returns:
            The writer's summary (``duration_s``, ``video_frames``, ``audio_duration_s``, ...).
        """
        if self._closed:
            return self._writer.summary()
        self._closed = True
        if self._t0 is not None and self._offset != float("inf"):
            # frames still queued for this observer when the pipeline stopped never arrive:
            # the call lasted until now, so pad to now (the last image repeats, audio is silent)
            self._seconds(int(time.monotonic_ns() - self._offset))
        start, pcm = self._mix.take(max(self._mix.end, round(self._last_s * self._rate)))
        self._pool.submit(self._writer.write_audio, pcm, start)
        summary = await asyncio.wrap_future(self._pool.submit(self._close))
        self._pool.shutdown(wait=False)
        logger.info(f"recording written: {self.path.name} ({summary['duration_s']} s)")
        return summary
