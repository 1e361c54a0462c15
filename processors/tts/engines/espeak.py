"""espeak-ng speech synthesis in process, streaming chunks with phoneme timing.

The ctypes binding, the process-wide library and its voice catalogue live in ``espeak_lib``
(re-exported here). espeak-ng is licensed GPL-3.0-or-later; it is loaded at run time only when this
engine is used.

Constraints:
    * espeak-ng is not thread-safe (see ``espeak_lib``): ``stream`` runs synthesis on one dedicated
      worker thread, shared by every engine, so the event loop never blocks on it.
    * Leaving a stream early stops espeak at its next chunk (a chunk handler returning ``False``).
    * Audio is mono int16 at ``sample_rate`` (22050 Hz for the bundled voices); phoneme onsets
      are sample indices from the start of the utterance.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from presence.framework.errors import ConfigError
from presence.processors.tts.engines.espeak_lib import (
    ChunkHandler,
    PhonemeEvent,
    SpeechChunk,
    _lib,
    available_variants,
    available_voices,
    voice_problem,
)

__all__ = [
    "PITCH_RANGE",
    "RATE_RANGE",
    "ChunkHandler",
    "EspeakEngine",
    "PhonemeEvent",
    "SpeechChunk",
    "Utterance",
    "available_variants",
    "available_voices",
    "voice_problem",
]

RATE_RANGE = (80, 450)  # words per minute accepted by espeak-ng
PITCH_RANGE = (0, 100)

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="espeak")


@dataclass(frozen=True)
class Utterance:
    """A whole synthesized text.

    Attributes:
        audio: Mono int16 samples.
        sample_rate: Rate of ``audio`` in Hz.
        phonemes: Every phoneme onset, in order.
    """

    audio: np.ndarray
    sample_rate: int
    phonemes: list[PhonemeEvent]

    @property
    def duration(self) -> float:
        """Length of the audio in seconds."""
        return len(self.audio) / self.sample_rate


class EspeakEngine:
    """Text to speech with phoneme onsets, on espeak-ng.

    Args:
        voice: ``available_voices()`` name, optionally ``+VARIANT`` (``en-us+f3``).
        rate: Speaking rate in words per minute, within ``RATE_RANGE``.
        pitch: Base pitch 0-100 (espeak's default is 50).
        end_pause: Add espeak's end-of-sentence pause (~0.3 s) after each text, so sentences
            synthesized one by one do not run together.

    Raises:
        ConfigError: The voice is unknown or rate/pitch is out of range.
        DependencyError: ``espeakng-loader`` is not installed.
    """

    def __init__(
        self, voice: str = "en-us", rate: int = 175, pitch: int = 50, end_pause: bool = True
    ):
        problem = voice_problem(voice)
        if problem:
            raise ConfigError(problem, field="voice")
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise ConfigError(f"rate must be {RATE_RANGE[0]}-{RATE_RANGE[1]} words per minute",
                              field="rate")  # fmt: skip
        if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
            raise ConfigError(f"pitch must be {PITCH_RANGE[0]}-{PITCH_RANGE[1]}", field="pitch")
        self.voice, self.rate, self.pitch, self.end_pause = voice, rate, pitch, end_pause

    @property
    def sample_rate(self) -> int:
        """Native output rate in Hz (22050 for the bundled voices)."""
        return _lib().sample_rate

    def synthesize(self, text: str, on_chunk: ChunkHandler) -> int:
        """Synthesize ``text``, blocking, handing each chunk to ``on_chunk`` as it is made.

        Args:
            text: UTF-8 text (SSML is not interpreted).
            on_chunk: Called on the calling thread for each chunk; return ``False`` to stop.

        Returns:
            Number of samples produced.

        Raises:
            ProviderError: espeak-ng failed.
        """
        return _lib().synthesize(
            text, voice=self.voice, rate=self.rate, pitch=self.pitch, end_pause=self.end_pause,
            on_chunk=on_chunk,
        )  # fmt: skip

    def render(self, text: str) -> Utterance:
        """Synthesize ``text`` whole; for tests, tools and offline use."""
        chunks: list[SpeechChunk] = []
        self.synthesize(text, chunks.append)
        audio = np.frombuffer(b"".join(c.pcm for c in chunks), dtype=np.int16)
        phonemes = [p for c in chunks for p in c.phonemes]
        return Utterance(audio, self.sample_rate, phonemes)

    async def stream(self, text: str) -> AsyncIterator[SpeechChunk]:
        """Synthesize ``text`` on the espeak worker thread, yielding chunks as they are made.

        Leaving the iteration early (``break``, task cancellation, ``aclose``) tells espeak to
        stop at its next chunk, so an interrupted sentence stops costing CPU at once.

        Raises:
            ProviderError: espeak-ng failed.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[SpeechChunk | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def post(item: SpeechChunk | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop closed under us: nobody is listening
                stop.set()

        def on_chunk(chunk: SpeechChunk) -> bool:
            if stop.is_set():
                return False
            post(chunk)
            return True

        def work() -> None:
            try:
                if not stop.is_set():
                    self.synthesize(text, on_chunk)
                post(None)
            except BaseException as exc:
                post(exc)

        loop.run_in_executor(_executor, work)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
