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
        image[0, 0] = (state.index % 256, state.index // 256, 0)
        return image


class PacedOutput(BaseOutputTransport):
    """An output transport whose audio writes take real time, like a WebRTC track's playout."""

    def __init__(self, params: TransportParams):
        super().__init__(params)
        self.played = 0
        self.t0: float | None = None
        self.video: list[tuple[int, float]] = []  # (frame index shown, audio seconds played)

    async def start(self, frame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self.t0 = self.t0 or time.monotonic()
        self.played += frame.num_frames
        await asyncio.sleep(max(0.0, self.t0 + self.played / frame.sample_rate - time.monotonic()))
        return True

    async def write_video_frame(self, frame: OutputImageRawFrame) -> bool:
        px = np.frombuffer(frame.image, np.uint8)[:2]
        self.video.append((int(px[0]) + 256 * int(px[1]), self.played / RATE))
        return True


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
    shown = [(k, a) for k, a in output.video if a > 0.2]
    offsets = np.array([k / FPS - a for k, a in shown])
    # each image is on screen with its own audio: never behind, at most ~2 periods ahead of the
    # audio position counted when the write happened (chunking + the video loop's sampling)
    assert offsets.max() <= 2.5 / FPS and offsets.min() >= -2.5 / FPS
    first, last = offsets[: len(offsets) // 3].mean(), offsets[-len(offsets) // 3 :].mean()
    assert abs(last - first) < 1.0 / FPS  # no drift across speech and idle
    idle = [k for k, a in shown if a > 2.5]
    assert len(set(idle)) > 0.6 * len(idle)  # the idle face keeps changing, not one repeated image


def test_live_video_with_synced_images_is_refused():
    params = TransportParams(video_out_enabled=True, video_out_is_live=True)
    with pytest.raises(ConfigError, match="video_out_is_live"):
        check_output_params(params)


def test_webrtc_video_loop_runs_at_aiortc_rate():
    assert output_video_params(512, 512, 25)["video_out_framerate"] == 30
    assert output_video_params(512, 512, 25, transport="file")["video_out_framerate"] == 25
