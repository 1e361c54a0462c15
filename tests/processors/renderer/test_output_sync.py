"""What the client receives through pipecat's output transport: in step, and alive when idle."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from helpers.renderer_signals import speech_like
from pipecat.frames.frames import (
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from presence.framework.errors import ConfigError
from presence.processors.renderer.engines.base import FrameState, RendererEngine
from presence.processors.renderer.output_sync import check_output_params, output_video_params
from presence.processors.renderer.processor import RendererProcessor

FPS, RATE = 25, 24000


class IndexEngine(RendererEngine):
    """Draws its frame index into the pixels so the client side can tell which frame it got."""

    def _load(self, replica) -> None:
        pass

    def _draw(self, state: FrameState) -> np.ndarray:
        image = np.zeros((self.height, self.width, 3), np.uint8)
        image[0, 0] = (state.index % 256, state.index // 256, 255 * state.speaking)
        return image


class PacedOutput(BaseOutputTransport):
    """An output transport that plays like pipecat's WebRTC audio track.

    The track sends a 10 ms chunk on each tick of a fixed clock, silence when nothing is queued;
    a write returns once its last chunk has been sent. A chunk is heard at its tick.
    """

    TICK = 0.01

    def __init__(self, params: TransportParams):
        super().__init__(params)
        self.t0 = time.monotonic()
        self.next_free = 0.0  # the first tick not taken by audio already written
        self.written = 0
        self.audio: list[tuple[int, float]] = []  # (first sample's index, when it is heard)
        self.speech_from: int | None = None  # index of the first voiced sample written
        self.video: list[tuple[int, bool, float]] = []  # (frame index, speaking, when shown)

    async def start(self, frame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        samples = np.frombuffer(frame.audio, np.int16)
        now = time.monotonic()
        tick = self.t0 + np.ceil((now - self.t0) / self.TICK) * self.TICK
        start = max(tick, self.next_free)
        self.audio.append((self.written, start))
        voiced = np.flatnonzero(samples)
        if self.speech_from is None and voiced.size:
            self.speech_from = self.written + int(voiced[0])
        self.written += samples.size
        chunks = int(np.ceil(samples.size / (self.TICK * frame.sample_rate)))
        self.next_free = start + chunks * self.TICK
        await asyncio.sleep(max(0.0, self.next_free - self.TICK - time.monotonic()))
        return True

    async def write_video_frame(self, frame: OutputImageRawFrame) -> bool:
        px = np.frombuffer(frame.image, np.uint8)[:3]
        self.video.append((int(px[0]) + 256 * int(px[1]), bool(px[2]), time.monotonic()))
        return True

    def heard_at(self, index: int) -> float:
        """When the sample ``index`` of the written audio is heard."""
        first, start = max(w for w in self.audio if w[0] <= index)
        return start + (index - first) / RATE


async def test_client_video_follows_client_audio_and_stays_alive():
    engine = IndexEngine(16, FPS, RATE)
    engine.prepare(None)
    params = TransportParams(
        audio_out_sample_rate=RATE,
        audio_out_end_silence_secs=0,
        **output_video_params(16, 16, FPS, transport="file"),
    )
    check_output_params(params)
    output = PacedOutput(params)
    speech = speech_like(1.5, RATE)
    chunks = [
        TTSAudioRawFrame(speech[i : i + 2400].tobytes(), RATE, 1)
        for i in range(0, speech.size, 2400)
    ]
    from pipecat.pipeline.pipeline import Pipeline

    pipeline = Pipeline([RendererProcessor(engine), output])
    await run_test(
        pipeline,
        frames_to_send=[
            SleepFrame(0.5),
            TTSStartedFrame(),
            *chunks,
            TTSStoppedFrame(),
            SleepFrame(3.5),  # ~1.5 s of idle after the speech, so a loaded machine still has some
        ],
    )
    speaking = [(k, t) for k, talking, t in output.video if talking]
    assert speaking and output.speech_from is not None
    # each speaking image is on screen while its own audio is heard: the first carries the first
    # voiced sample (its frame starts at most a frame before it), the rest follow at 1/fps of audio
    k0 = speaking[0][0]
    lag = np.array(
        [t - output.heard_at(output.speech_from + (k - k0) * RATE // FPS) for k, t in speaking]
    )
    assert np.abs(lag).max() <= 2.5 / FPS
    third = len(lag) // 3
    assert abs(np.median(lag[-third:]) - np.median(lag[:third])) < 1.0 / FPS  # no drift in speech
    # idle images go on after the speech on the wall clock's grid, each a new image
    t_end = output.heard_at(output.speech_from + speech.size)
    idle = [(k, t) for k, talking, t in output.video if not talking and t > t_end + 0.3]
    assert len(idle) > FPS  # over a second of idle face after the speech
    (k_a, t_a), (k_b, t_b) = idle[0], idle[-1]
    assert abs((t_b - t_a) - (k_b - k_a) / FPS) < 2.5 / FPS  # no drift in idle either
    assert len({k for k, _ in idle}) > 0.6 * len(idle)  # the idle face keeps changing


def test_live_video_with_synced_images_is_refused():
    params = TransportParams(video_out_enabled=True, video_out_is_live=True)
    with pytest.raises(ConfigError, match="video_out_is_live"):
        check_output_params(params)


def test_webrtc_video_loop_runs_at_aiortc_rate():
    assert output_video_params(512, 512, 25)["video_out_framerate"] == 30
    assert output_video_params(512, 512, 25, transport="file")["video_out_framerate"] == 25
