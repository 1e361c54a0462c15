"""Offline streaming speech-to-text: pocketsphinx behind a pipecat ``STTService``.

Config (``stages.stt``)::

    stt:
      provider: pocketsphinx
      language_model: domain        # or generic
      extra_phrases: ["what is presence", "swap a provider"]

How a turn flows through the service:

* While nobody speaks, incoming audio only fills a short pre-roll buffer (VAD confirms speech
  ``start_secs`` after it began, so the first syllables are already in the past).
* ``VADUserStartedSpeakingFrame`` starts an utterance: the pre-roll and then every audio chunk are
  decoded as they arrive (about 1 ms of CPU per 20 ms chunk with a domain model), and an
  ``InterimTranscriptionFrame`` is pushed whenever the hypothesis changes (at most every
  ``interim_interval_secs`` of audio).
* ``VADUserStoppedSpeakingFrame`` ends the utterance at once and pushes one finalized
  ``TranscriptionFrame`` (``finalized=True``, so pipecat's turn-stop strategies skip their STT
  timeout) right after the VAD frame. Nothing is pushed when nothing was recognized.
  No audio is lost to that race: ``STTService`` decodes each chunk before passing it on, so
  when a VAD behind this stage (the user aggregator's) decides speech stopped, every chunk it
  has analyzed was already fed, the utterance's last word and ``stop_secs`` of silence included.

It is a streaming ``STTService``, not a ``SegmentedSTTService``: a segmented service decodes the
whole utterance at the end of speech, and pocketsphinx holds the GIL while it decodes, which
would stall the event loop and put the whole decode on the end-of-speech latency path.

It needs VAD frames: from a ``VADProcessor`` before it, or broadcast upstream by a user
aggregator that owns the VAD analyzer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator
from typing import Literal

from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.settings import STTSettings
from pipecat.services.stt_service import STTService
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601
from pydantic import Field

from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.stt.engines.pocketsphinx import (
    SAMPLE_RATE,
    StreamingRecognizer,
    build_recognizer,
)

# Speech end -> final transcript, p99, as pipecat's turn strategies define it (VAD stop_secs
# included). Measured: the final arrives 1-5 ms after the VAD stop frame; 0.2 s VAD stop_secs.
TTFS_P99_SECS = 0.25
_PREROLL_FEED_SAMPLES = 1600  # feed the pre-roll in 100 ms pieces, yielding between them


class PocketsphinxParams(StageParams):
    """Parameters of the ``pocketsphinx`` STT stage.

    Attributes:
        language_model: ``domain`` builds a model from the persona's knowledge base at start-up
            (questions about the persona's topics are recognized far better); ``generic`` uses
            pocketsphinx's general English model.
        extra_phrases: Phrases users are likely to say, added to the domain model (ignored with
            ``generic``). Names and product words belong here.
        lm_weight: Language-model weight; higher trusts the language model over the acoustics
            (pocketsphinx's default 6.5 when unset).
        generic_words: How many frequent English words the domain model also knows, so speech
            outside the knowledge base still partly recognizes (0 for none).
        generic_weight: Probability share of those generic words; more helps off-topic speech
            and hurts on-topic accuracy.
        interim_interval_secs: Minimum audio between interim transcripts (0 for every chunk).
        preroll_secs: Audio kept from before the VAD confirmed speech; at least the VAD's
            ``start_secs``.
        ttfs_p99_latency: Speech end to final transcript, p99, announced to turn strategies.

    """

    language_model: Literal["domain", "generic"] = "domain"
    extra_phrases: list[str] = Field(default_factory=list)
    lm_weight: float | None = Field(default=None, gt=0, le=50)
    generic_words: int = Field(default=2000, ge=0, le=50000)
    generic_weight: float = Field(default=0.05, ge=0, lt=1)
    interim_interval_secs: float = Field(default=0.2, ge=0, le=5)
    preroll_secs: float = Field(default=0.5, ge=0, le=3)
    ttfs_p99_latency: float = Field(default=TTFS_P99_SECS, ge=0, le=10)


class PocketsphinxSTTService(STTService):
    """Streams user audio into a ``StreamingRecognizer`` between VAD start and stop.

    Args:
        recognizer: The engine (one per service; it keeps adaptation state between turns).
        preroll_secs: Seconds of audio kept from before the VAD start.
        interim_interval_secs: Minimum seconds of audio between interim transcripts.
        ttfs_p99_latency: Speech end to final transcript, p99, in seconds.
        **kwargs: Passed to ``STTService`` (e.g. ``sample_rate``, ``audio_passthrough``).

    """

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        *,
        preroll_secs: float = 0.5,
        interim_interval_secs: float = 0.2,
        ttfs_p99_latency: float = TTFS_P99_SECS,
        **kwargs,
    ):
        kwargs.setdefault("settings", STTSettings(model="cmusphinx-en-us", language=None))
        super().__init__(ttfs_p99_latency=ttfs_p99_latency, **kwargs)
        self._recognizer = recognizer
        self._preroll: deque[bytes] = deque()
        self._preroll_bytes = 0
        self._preroll_max = int(preroll_secs * SAMPLE_RATE) * 2
        self._interim_samples = int(interim_interval_secs * SAMPLE_RATE)
        self._since_interim = 0
        self._last_partial = ""
        self._resampler = create_stream_resampler()
        self._vad_seen = False
        self._unsegmented_samples = 0

    @property
    def recognizer(self) -> StreamingRecognizer:
        """The engine this service feeds."""
        return self._recognizer

    def can_generate_metrics(self) -> bool:
        """Report TTFB metrics (speech end to final transcript)."""
        return True

    async def stop(self, frame: EndFrame):
        """Drop any running utterance on a graceful end."""
        await super().stop(frame)
        self._recognizer.cancel()

    async def cancel(self, frame: CancelFrame):
        """Drop any running utterance on cancellation."""
        await super().cancel(frame)
        self._recognizer.cancel()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Let ``STTService`` handle the frame, then begin or end an utterance on VAD frames."""
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._vad_seen = True
            await self._begin_utterance()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_seen = True
            await self._finish_utterance()

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame | None, None]:
        """Decode a chunk during an utterance (yielding interims); buffer it otherwise."""
        if self.sample_rate != SAMPLE_RATE:
            audio = await self._resampler.resample(audio, self.sample_rate, SAMPLE_RATE)
        if not self._recognizer.in_utterance:
            self._remember(audio)
            yield None
            return
        self._recognizer.feed(audio)
        self._since_interim += len(audio) // 2
        if self._since_interim >= self._interim_samples:
            self._since_interim = 0
            text = self._recognizer.partial()
            if text and text != self._last_partial:
                self._last_partial = text
                yield InterimTranscriptionFrame(
                    text, self._user_id, time_now_iso8601(), language=Language.EN_US
                )

    def _remember(self, audio: bytes) -> None:
        self._preroll.append(audio)
        self._preroll_bytes += len(audio)
        while self._preroll and self._preroll_bytes - len(self._preroll[0]) >= self._preroll_max:
            self._preroll_bytes -= len(self._preroll.popleft())
        if not self._vad_seen and self._unsegmented_samples >= 0:
            self._unsegmented_samples += len(audio) // 2
            if self._unsegmented_samples >= 30 * SAMPLE_RATE:
                self._unsegmented_samples = -1  # warn once
                logger.warning(
                    f"{self}: 30 s of audio and no VAD frames; put a VAD before this stage "
                    "or give the user aggregator a vad_analyzer"
                )

    async def _begin_utterance(self) -> None:
        if self._recognizer.in_utterance:
            return
        self._recognizer.start()
        self._since_interim = 0
        self._last_partial = ""
        preroll = b"".join(self._preroll)
        self._preroll.clear()
        self._preroll_bytes = 0
        step = _PREROLL_FEED_SAMPLES * 2
        for i in range(0, len(preroll), step):
            self._recognizer.feed(preroll[i : i + step])
            await asyncio.sleep(0)

    async def _finish_utterance(self) -> None:
        if not self._recognizer.in_utterance:
            return
        self.request_finalize()
        text = self._recognizer.finish()
        self._last_partial = ""
        if not text:
            logger.debug(f"{self}: nothing recognized in {self._recognizer.utterance_secs:.1f}s")
            return
        self.confirm_finalize()
        await self.push_frame(
            TranscriptionFrame(text, self._user_id, time_now_iso8601(), language=Language.EN_US)
        )


@register(
    "stt",
    "pocketsphinx",
    PocketsphinxParams,
    summary="offline streaming English STT (CMU pocketsphinx) with a knowledge-base language model",
)
def build(params: PocketsphinxParams, ctx: BuildContext) -> PocketsphinxSTTService:
    """Build the pocketsphinx STT service; a domain model is estimated here, at start-up."""
    files = ctx.persona.knowledge_files()
    if params.language_model == "domain" and not files and not params.extra_phrases:
        logger.warning(
            "pocketsphinx: the persona has no knowledge base and no extra_phrases were given; "
            "the domain model only knows common phrases (set language_model: generic for open talk)"
        )
    recognizer = build_recognizer(
        language_model=params.language_model,
        knowledge_files=files,
        extra_phrases=params.extra_phrases,
        lm_weight=params.lm_weight,
        generic_words=params.generic_words,
        generic_weight=params.generic_weight,
    )
    return PocketsphinxSTTService(
        recognizer,
        preroll_secs=params.preroll_secs,
        interim_interval_secs=params.interim_interval_secs,
        ttfs_p99_latency=params.ttfs_p99_latency,
    )
