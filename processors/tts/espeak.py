"""Offline text to speech on espeak-ng, with visemes for the renderer.

``EspeakTTSService`` is a pipecat ``TTSService``: the base class aggregates text into sentences,
opens an audio context per turn, pushes ``TTSStartedFrame``/``TTSStoppedFrame`` and handles
interruptions by cancelling ``run_tts``; this class only streams espeak's audio, resampled from its
native 22050 Hz to the pipeline's output rate, and tags every ``TTSAudioRawFrame`` with
``frame.metadata["visemes"]``: ``[(offset_seconds, viseme, phoneme), ...]`` for the phonemes whose
onset lies inside that frame, offsets from the frame's first sample (see ``visemes.py``).

espeak-ng is GPL-3.0-or-later (loaded at run time from the ``espeakng-loader`` wheel).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService
from pydantic import Field, field_validator

from presence.framework.errors import ConfigError, ProviderError
from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.tts.engines.espeak import (
    PITCH_RANGE,
    RATE_RANGE,
    EspeakEngine,
    voice_problem,
)
from presence.processors.tts.visemes import VisemeAligner


class EspeakParams(StageParams):
    """espeak-ng offline TTS (GPL-3; voices ship with the ``espeakng-loader`` wheel).

    Attributes:
        voice: espeak language/voice name (``en-us``, ``en-gb``, ``fr-fr`` …), optionally with
            a variant after ``+`` (``en-us+f3``). Unknown names fail with the allowed list.
        rate: Speaking rate in words per minute (80-450).
        pitch: Base pitch 0-100.
        end_pause: Pause ~0.3 s after each sentence so consecutive sentences do not run together.
    """

    voice: str = "en-us"
    rate: int = Field(175, ge=RATE_RANGE[0], le=RATE_RANGE[1])
    pitch: int = Field(50, ge=PITCH_RANGE[0], le=PITCH_RANGE[1])
    end_pause: bool = True

    @field_validator("voice")
    @classmethod
    def _known_voice(cls, voice: str) -> str:
        problem = voice_problem(voice)
        if problem:
            raise ValueError(problem)
        return voice


class EspeakTTSService(TTSService):
    """pipecat TTS service over ``EspeakEngine``, streaming audio with viseme metadata.

    Synthesis runs on espeak's worker thread and each chunk (~40 ms of audio) is pushed as soon as
    espeak makes it, so the first audio frame does not wait for the whole sentence. When the base
    class cancels ``run_tts`` on an interruption, espeak is told to stop at its next chunk and no
    further audio of that sentence is pushed.

    Args:
        voice: espeak voice name, see ``EspeakParams.voice``.
        rate: Words per minute.
        pitch: Base pitch 0-100.
        end_pause: Add espeak's end-of-sentence pause after each sentence.
        **kwargs: Passed to pipecat's ``TTSService`` (e.g. ``sample_rate`` to override the
            pipeline's output rate).

    Raises:
        ConfigError: The voice is unknown (the message lists the allowed ones) or rate/pitch is
            out of range.
    """

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        end_pause: bool = True,
        **kwargs: Any,
    ):
        engine = EspeakEngine(voice=voice, rate=rate, pitch=pitch, end_pause=end_pause)
        super().__init__(
            push_start_frame=True,
            push_stop_frames=True,
            settings=TTSSettings(model=None, voice=voice, language=None),
            **kwargs,
        )
        self._engine = engine
        # Our own stream resampler: reset per sentence, flushed at its end so no tail is lost.
        self._espeak_resampler = create_stream_resampler(clear_after_secs=None)

    @property
    def engine(self) -> EspeakEngine:
        """The engine in use (its ``sample_rate`` is espeak's native rate)."""
        return self._engine

    def can_generate_metrics(self) -> bool:
        """Report TTFB and usage metrics."""
        return True

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:
        """Apply a settings delta; a new voice takes effect from the next sentence."""
        changed = await super()._update_settings(delta)
        if "voice" in changed:
            try:
                self._engine = EspeakEngine(
                    voice=str(self._settings.voice), rate=self._engine.rate,
                    pitch=self._engine.pitch, end_pause=self._engine.end_pause,
                )  # fmt: skip
            except ConfigError as exc:
                logger.warning(f"{self}: keeping voice {self._engine.voice!r}: {exc}")
                self._settings.voice = self._engine.voice
        unhandled = {k: v for k, v in changed.items() if k != "voice"}
        if unhandled:
            self._warn_unhandled_updated_settings(unhandled)
        return changed

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Synthesize one sentence, yielding audio frames tagged with visemes as espeak makes them.

        Args:
            text: The sentence to speak.
            context_id: The audio context the frames belong to.
        """
        in_rate, out_rate = self._engine.sample_rate, self.sample_rate
        aligner = VisemeAligner(in_rate, out_rate)
        await self._espeak_resampler.reset()
        try:
            await self.start_tts_usage_metrics(text)
            # aclosing: however this generator ends, espeak is told to stop at once.
            async with aclosing(self._engine.stream(text)) as chunks:
                async for chunk in chunks:
                    for phoneme in chunk.phonemes:
                        aligner.add(phoneme.sample, phoneme.phoneme)
                    audio = await self._espeak_resampler.resample(chunk.pcm, in_rate, out_rate)
                    if audio:
                        await self.stop_ttfb_metrics()
                        yield self._audio_frame(audio, aligner, context_id)
            tail = await self._espeak_resampler.flush()
            if tail:
                yield self._audio_frame(tail, aligner, context_id)
        except ProviderError as exc:
            logger.error(f"{self}: {exc}")
            yield ErrorFrame(error=str(exc))
        finally:
            await self.stop_ttfb_metrics()

    def _audio_frame(self, audio: bytes, aligner: VisemeAligner, context_id: str) -> Frame:
        frame = TTSAudioRawFrame(audio, self.sample_rate, 1, context_id=context_id)
        frame.metadata["visemes"] = aligner.take(len(audio) // 2)
        return frame


@register(
    "tts",
    "espeak",
    EspeakParams,
    summary="espeak-ng in process (offline, GPL-3), streaming, with phoneme visemes",
)
def build(params: EspeakParams, ctx: BuildContext) -> EspeakTTSService:
    """Build the espeak TTS service at the pipeline's output sample rate."""
    return EspeakTTSService(
        voice=params.voice,
        rate=params.rate,
        pitch=params.pitch,
        end_pause=params.end_pause,
        sample_rate=ctx.audio_out_sample_rate,
    )
