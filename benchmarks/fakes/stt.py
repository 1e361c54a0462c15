"""Scripted STT: a final transcript a scripted delay after each stretch of speech.

Speech is found by energy (int16 RMS above ``voice_rms``); each stretch is finalized
``final_after_ms`` after its last voiced chunk. The delay actually waited is written to
``TranscriptionFrame.metadata["scripted_delay_ms"]``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import STTService
from pipecat.utils.time import time_now_iso8601

from presence.benchmarks.fakes.delays import Delay, mean_delay, sample_delay


class ScriptedSTTService(STTService):
    """Emits a final transcript a scripted delay after each stretch of speech ends.

    Args:
        final_after_ms: Delay from the last voiced chunk to the final transcript.
        text: Fallback transcript.
        texts: Transcripts used in turn when the audio carries no ``script_text``.
        voice_rms: int16 RMS above which a chunk counts as speech.
        seed: Seed of the delay generator.
    """

    def __init__(
        self,
        *,
        final_after_ms: Delay = 150.0,
        text: str = "hello",
        texts: list[str] | None = None,
        voice_rms: float = 300.0,
        seed: int = 0,
        **kwargs: Any,
    ):
        kwargs.setdefault("settings", STTSettings(model="scripted", language=None))
        super().__init__(ttfs_p99_latency=max(0.05, mean_delay(final_after_ms) / 1000), **kwargs)
        self._spec = final_after_ms
        self._rng = random.Random(seed)
        self._text = text
        self._texts = list(texts or [])
        self._voice_rms = voice_rms
        self._last_voiced = 0.0
        self._segment_text: str | None = None
        self._delay_ms = 0.0
        self._pending: asyncio.Task | None = None
        self.transcripts: list[str] = []

    def can_generate_metrics(self) -> bool:
        """Report TTFB metrics."""
        return True

    async def process_audio_frame(self, frame: InputAudioRawFrame, direction: FrameDirection):
        """Note the scripted text of voiced audio, then let the base class call ``run_stt``."""
        text = frame.metadata.get("script_text") if frame.metadata else None
        if text:
            self._segment_text = text
        await super().process_audio_frame(frame, direction)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Track speech by energy; the final transcript is pushed by a timer task."""
        samples = np.frombuffer(audio, dtype=np.int16).astype(np.float32)
        if samples.size and float(np.sqrt(np.mean(samples**2))) >= self._voice_rms:
            self._last_voiced = time.monotonic()
            if self._pending is None:
                self._delay_ms = sample_delay(self._spec, self._rng)
                self._pending = self.create_task(self._finalize_when_quiet())
        yield None

    async def _finalize_when_quiet(self) -> None:
        while True:
            wait = self._last_voiced + self._delay_ms / 1000 - time.monotonic()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self._pending = None
        if self._segment_text:
            text, self._segment_text = self._segment_text, None
        elif self._texts:
            text = self._texts[len(self.transcripts) % len(self._texts)]
        else:
            text = self._text
        self.transcripts.append(text)
        self.request_finalize()
        frame = TranscriptionFrame(text, self._user_id, time_now_iso8601())
        frame.metadata["scripted_delay_ms"] = self._delay_ms
        await self.push_frame(frame)

    async def _stop_pending(self) -> None:
        if self._pending is not None:
            await self.cancel_task(self._pending)
            self._pending = None

    async def stop(self, frame: EndFrame):
        """Drop a pending transcript on a graceful end."""
        await self._stop_pending()
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame):
        """Drop a pending transcript on cancellation."""
        await self._stop_pending()
        await super().cancel(frame)
