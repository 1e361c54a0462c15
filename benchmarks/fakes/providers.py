"""Registration of the scripted providers as ``provider: scripted`` (imported by the package).

Importing this module registers the ``stt``, ``llm`` and ``tts`` factories with the registry;
``presence.benchmarks.fakes`` imports it, so listing the package in ``PROVIDER_MODULES`` suffices.
"""

from __future__ import annotations

from pydantic import Field

from presence.benchmarks.fakes.delays import Delay
from presence.benchmarks.fakes.llm import ScriptedLLMService
from presence.benchmarks.fakes.stt import ScriptedSTTService
from presence.benchmarks.fakes.tts import ScriptedTTSService
from presence.framework.registry import BuildContext, StageParams, register


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
