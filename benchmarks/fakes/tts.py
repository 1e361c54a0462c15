"""Scripted TTS: a tone per sentence after a scripted time to first byte.

The first ``TTSAudioRawFrame`` of a sentence carries ``metadata["scripted_ttfb_ms"]`` and
``metadata["scripted_text_at_ns"]`` (pipeline clock when the sentence reached the TTS).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from pipecat.frames.frames import Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from presence.benchmarks.fakes.delays import Delay, sample_delay


def _clock_ns(processor) -> int:
    try:
        return processor.get_clock().get_time()
    except Exception:  # not started yet
        return 0


class ScriptedTTSService(TTSService):
    """Speaks a tone for each sentence after a scripted time to first byte.

    Args:
        ttfb_ms: Sentence received → first audio chunk.
        chunk_ms: Audio per chunk.
        ms_per_char: Audio length per character of text.
        speed: Chunks are produced this many times faster than real time.
        seed: Seed of the delay generator.
        **kwargs: Passed to ``TTSService`` (``sample_rate``).
    """

    def __init__(
        self,
        *,
        ttfb_ms: Delay = 200.0,
        chunk_ms: float = 40.0,
        ms_per_char: float = 60.0,
        speed: float = 4.0,
        seed: int = 0,
        **kwargs: Any,
    ):
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model="scripted", voice=None, language=None),
            **kwargs,
        )
        self._spec = ttfb_ms
        self._chunk_ms = chunk_ms
        self._ms_per_char = ms_per_char
        self._speed = speed
        self._rng = random.Random(seed)
        self.sentences: list[str] = []

    def can_generate_metrics(self) -> bool:
        """Report TTFB metrics."""
        return True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Wait the scripted TTFB, then yield the sentence's tone in ``chunk_ms`` chunks."""
        received_ns = _clock_ns(self)
        self.sentences.append(text)
        ttfb = sample_delay(self._spec, self._rng)
        await asyncio.sleep(ttfb / 1000)
        rate = self.sample_rate
        total = max(1, int(len(text) * self._ms_per_char * rate / 1000))
        step = max(1, int(self._chunk_ms * rate / 1000))
        t = np.arange(total) / rate
        tone = 6000 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        pcm = tone.astype(np.int16)
        for i, start in enumerate(range(0, total, step)):
            if i:
                await asyncio.sleep(self._chunk_ms / 1000 / self._speed)
            else:
                await self.stop_ttfb_metrics()
            frame = TTSAudioRawFrame(
                pcm[start : start + step].tobytes(), rate, 1, context_id=context_id
            )
            if i == 0:
                frame.metadata["scripted_ttfb_ms"] = ttfb
                frame.metadata["scripted_text_at_ns"] = received_ns
            yield frame
