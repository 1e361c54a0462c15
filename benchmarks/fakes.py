"""Scripted providers with known latencies, so a benchmark can tell framework time from provider time.

Registered as ``provider: scripted`` for the ``stt``, ``llm`` and ``tts`` stages::

    stt: {provider: scripted, final_after_ms: 150}
    llm: {provider: scripted, ttft_ms: 300, tokens_per_s: 50, reply: "Sure. Here you go."}
    tts: {provider: scripted, ttfb_ms: {dist: normal, mean: 200, std: 20}, chunk_ms: 40}

A delay is a fixed number of milliseconds or a distribution, ``{dist: normal, mean, std, min}`` or
``{dist: uniform, low, high}``, drawn from a generator seeded with the stage's ``seed``.

Every fake writes what it actually waited into the metadata of the frame the wait produced, so an
observer can subtract it without knowing the configuration:

* ``TranscriptionFrame.metadata["scripted_delay_ms"]``: speech end → final transcript;
* ``LLMTextFrame.metadata["scripted_elapsed_ms"]``: request → this token (TTFT + streaming);
* first ``TTSAudioRawFrame`` of a sentence, ``metadata["scripted_ttfb_ms"]`` and
  ``metadata["scripted_text_at_ns"]`` (pipeline clock when the sentence reached the TTS).

The STT finds speech by energy (int16 RMS above ``voice_rms``) and finalizes each stretch of speech
``final_after_ms`` after its last voiced chunk. Its text is, in order of preference, the
``metadata["script_text"]`` of the voiced audio (the benchmark's scripted user sets it), the next
of ``texts``, or ``text``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Literal

import numpy as np
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext, standard_message_text
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings, STTSettings, TTSSettings
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.utils.time import time_now_iso8601
from pydantic import BaseModel, ConfigDict, Field

from presence.framework.registry import BuildContext, StageParams, register


class NormalDelay(BaseModel):
    """A normally distributed delay in ms, clipped below at ``min``."""

    model_config = ConfigDict(extra="forbid")
    dist: Literal["normal"]
    mean: float = Field(ge=0)
    std: float = Field(0.0, ge=0)
    min: float = Field(0.0, ge=0)


class UniformDelay(BaseModel):
    """A delay in ms drawn uniformly from ``[low, high]``."""

    model_config = ConfigDict(extra="forbid")
    dist: Literal["uniform"]
    low: float = Field(ge=0)
    high: float = Field(ge=0)


Delay = Annotated[float, Field(ge=0)] | NormalDelay | UniformDelay


def sample_delay(spec: Delay, rng: random.Random) -> float:
    """Draw one delay in milliseconds from ``spec`` (a fixed number or a distribution)."""
    if isinstance(spec, NormalDelay):
        return max(spec.min, rng.gauss(spec.mean, spec.std))
    if isinstance(spec, UniformDelay):
        low, high = sorted((spec.low, spec.high))
        return rng.uniform(low, high)
    return float(spec)


def mean_delay(spec: Delay) -> float:
    """The expected delay of ``spec`` in ms (ignoring clipping)."""
    if isinstance(spec, NormalDelay):
        return spec.mean
    if isinstance(spec, UniformDelay):
        return (spec.low + spec.high) / 2
    return float(spec)


def _clock_ns(processor) -> int:
    try:
        return processor.get_clock().get_time()
    except Exception:  # not started yet
        return 0


# ------------------------------------------------------------------------------------------ STT


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


# ------------------------------------------------------------------------------------------ LLM


def _last_user_text(context: LLMContext) -> str | None:
    for message in reversed(context.get_messages()):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            return None
        if role == "user":
            return standard_message_text(message).strip()
    return None


class ScriptedLLMService(LLMService):
    """Streams a fixed reply after a scripted time to first token, at a scripted token rate.

    It subclasses pipecat's ``LLMService``, so speculative responses are held by its speculation
    gate and withdrawn ones are cancelled like any real LLM's. A context whose last message is
    the assistant's gets no reply.

    Args:
        ttft_ms: Request → first token.
        tokens_per_s: Streaming rate after the first token; one token is one word.
        reply: What it says.
        seed: Seed of the delay generator.

    Attributes:
        requests: ``(speculative, user_text)`` of every context it was asked to answer.
    """

    def __init__(
        self,
        *,
        ttft_ms: Delay = 300.0,
        tokens_per_s: float = 50.0,
        reply: str = "Sure. This is a scripted reply.",
        seed: int = 0,
        **kwargs: Any,
    ):
        settings = LLMSettings(
            model="scripted", system_instruction=None, temperature=None, max_tokens=None,
            top_p=None, top_k=None, frequency_penalty=None, presence_penalty=None, seed=None,
            filter_incomplete_user_turns=False, user_turn_completion_config=None,
        )  # fmt: skip
        super().__init__(settings=settings, **kwargs)
        self._spec = ttft_ms
        self._interval = 1.0 / tokens_per_s
        self._tokens = [w + " " for w in reply.split()]
        self._rng = random.Random(seed)
        self.requests: list[tuple[bool, str | None]] = []

    def can_generate_metrics(self) -> bool:
        """Report TTFB and processing metrics."""
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer ``LLMContextFrame``s; pass every other frame on."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        question = _last_user_text(frame.context)
        self.requests.append((bool(frame.speculation), question))
        if question is None:
            return
        ttft = sample_delay(self._spec, self._rng)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        try:
            await self.start_ttfb_metrics()
            await asyncio.sleep(ttft / 1000)
            await self.stop_ttfb_metrics()
            for i, token in enumerate(self._tokens):
                if i:
                    await asyncio.sleep(self._interval)
                text = LLMTextFrame(token)
                text.metadata["scripted_elapsed_ms"] = ttft + i * self._interval * 1000
                await self.push_frame(text)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())


# ------------------------------------------------------------------------------------------ TTS


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


# ------------------------------------------------------------------------------------- registry


class ScriptedSTTParams(StageParams):
    """Scripted STT: a final transcript ``final_after_ms`` after each stretch of speech.

    Attributes:
        final_after_ms: Delay in ms, fixed or ``{dist: normal|uniform, ...}``.
        text: Transcript when the audio carries none.
        texts: Transcripts used in turn when the audio carries none.
        voice_rms: int16 RMS that counts as speech.
        seed: Seed of the delay generator.
    """

    final_after_ms: Delay = 150.0
    text: str = "hello"
    texts: list[str] = Field(default_factory=list)
    voice_rms: float = Field(300.0, gt=0)
    seed: int = 0


class ScriptedLLMParams(StageParams):
    """Scripted LLM: a fixed reply after ``ttft_ms``, streamed at ``tokens_per_s`` words/s.

    Attributes:
        ttft_ms: Time to first token in ms, fixed or a distribution.
        tokens_per_s: Words per second after the first.
        reply: The reply (the TTS starts after its first sentence).
        seed: Seed of the delay generator.
    """

    ttft_ms: Delay = 300.0
    tokens_per_s: float = Field(50.0, gt=0, le=10000)
    reply: str = "Sure. This is a scripted reply from the benchmark."
    seed: int = 0


class ScriptedTTSParams(StageParams):
    """Scripted TTS: a tone per sentence after ``ttfb_ms``, in ``chunk_ms`` chunks.

    Attributes:
        ttfb_ms: Time to first audio in ms, fixed or a distribution.
        chunk_ms: Audio per chunk in ms.
        ms_per_char: Audio length per character of text.
        speed: How many times faster than real time chunks are produced.
        seed: Seed of the delay generator.
    """

    ttfb_ms: Delay = 200.0
    chunk_ms: float = Field(40.0, gt=0, le=1000)
    ms_per_char: float = Field(60.0, gt=0, le=1000)
    speed: float = Field(4.0, gt=0)
    seed: int = 0


@register(
    "stt",
    "scripted",
    ScriptedSTTParams,
    summary="benchmark fake: final transcript after a scripted delay",
)
def build_stt(params: ScriptedSTTParams, ctx: BuildContext) -> ScriptedSTTService:
    """Build the scripted STT."""
    return ScriptedSTTService(**dict(params), name="scripted-stt")


@register(
    "llm",
    "scripted",
    ScriptedLLMParams,
    summary="benchmark fake: fixed reply with scripted TTFT and token rate",
)
def build_llm(params: ScriptedLLMParams, ctx: BuildContext) -> ScriptedLLMService:
    """Build the scripted LLM."""
    return ScriptedLLMService(**dict(params), name="scripted-llm")


@register(
    "tts",
    "scripted",
    ScriptedTTSParams,
    summary="benchmark fake: tone audio with scripted TTFB and chunking",
)
def build_tts(params: ScriptedTTSParams, ctx: BuildContext) -> ScriptedTTSService:
    """Build the scripted TTS at the pipeline's output rate."""
    return ScriptedTTSService(
        **dict(params), sample_rate=ctx.audio_out_sample_rate, name="scripted-tts"
    )
