"""The registry: one table from ``(stage, provider)`` config names to factories.

A factory turns a validated parameter model and the ``BuildContext`` into what its stage needs:

=============  ====================================================================
stage          factory returns
=============  ====================================================================
``vad``        a pipecat ``VADAnalyzer``
``turn``       a pipecat ``UserTurnStrategies``
``stt``        a ``FrameProcessor`` (usually an ``STTService``)
``llm``        a ``FrameProcessor`` (usually an ``LLMService``)
``tts``        a ``FrameProcessor`` (usually a ``TTSService``)
``renderer``   a ``FrameProcessor`` that emits the persona's video
``perception`` a ``FrameProcessor`` or ``None`` (off)
=============  ====================================================================

Providers register with the ``register`` decorator in their own module; the modules listed in
``PROVIDER_MODULES`` are imported on first lookup so that every provider is known before a file is
validated.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from presence.framework.config import PipelineSpec
    from presence.framework.persona import Persona

STAGES = ("vad", "turn", "stt", "llm", "tts", "renderer", "perception")

PROVIDER_MODULES = (
    "presence.processors.turns.providers",
    "presence.processors.stt.whisper",
    "presence.processors.stt.pocketsphinx",
    "presence.processors.stt.deepgram",
    "presence.processors.llm.knowledge_base",
    "presence.processors.llm.cloud",
    "presence.processors.tts.piper",
    "presence.processors.tts.espeak",
    "presence.processors.tts.elevenlabs",
    "presence.processors.renderer.providers",
    "presence.processors.perception.providers",
    "presence.benchmarks.fakes",
)


class StageParams(BaseModel):
    """Base of every provider's parameter model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class VideoSettings:
    """Output video geometry and cadence shared by the renderer and the transport."""

    width: int = 512
    height: int = 512
    fps: int = 25


@dataclass
class BuildContext:
    """What a factory may read while building its stage.

    Attributes:
        persona: The loaded persona (prompt, greeting, knowledge base, replica).
        base_dir: Folder of the pipeline file; relative paths in params resolve against it.
        video: Output video geometry and frame rate.
        audio_in_sample_rate: Sample rate of the user's audio inside the pipeline.
        audio_out_sample_rate: Sample rate of the persona's audio inside the pipeline.
        fast: True when the file transport runs faster than real time.
        spec: The whole validated pipeline spec.
        extras: Free slot for builder-level objects shared between stages.
    """

    persona: Persona
    base_dir: Path
    video: VideoSettings = field(default_factory=VideoSettings)
    audio_in_sample_rate: int = 16000
    audio_out_sample_rate: int = 24000
    fast: bool = False
    spec: PipelineSpec | None = None
    extras: dict[str, Any] = field(default_factory=dict)


Factory = Callable[[Any, BuildContext], Any]

# ``BuildContext.extras`` key where a factory leaves processors its stage needs elsewhere in the
# chain: ``{insert point: [processors]}`` (points as in ``presence.framework.custom``). The
# session builder places them first at that point.
STAGE_INSERTS = "stage_inserts"


@dataclass(frozen=True)
class Provider:
    """One registered provider."""

    stage: str
    name: str
    params: type[StageParams]
    factory: Factory
    summary: str


_REGISTRY: dict[tuple[str, str], Provider] = {}
_loaded = False


def register(stage: str, name: str, params: type[StageParams], *, summary: str = ""):
    """Register a factory for ``stage``/``name`` with its parameter model.

    Args:
        stage: One of ``STAGES``.
        name: The provider name users write in YAML (``provider: name``).
        params: The pydantic model validating the stage's other keys.
        summary: One line shown by ``presence providers``.

    Returns:
        A decorator that records the factory and returns it unchanged.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")

    def decorate(factory: Factory) -> Factory:
        _REGISTRY[(stage, name)] = Provider(stage, name, params, factory, summary)
        return factory

    return decorate


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in PROVIDER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a provider module exists but a dependency of it is missing
                raise


def providers(stage: str | None = None) -> list[Provider]:
    """All registered providers, optionally of one stage, sorted by stage then name."""
    _load_all()
    found = [p for p in _REGISTRY.values() if stage is None or p.stage == stage]
    return sorted(found, key=lambda p: (STAGES.index(p.stage), p.name))


def provider_names(stage: str) -> list[str]:
    """Names of the providers registered for ``stage``."""
    return [p.name for p in providers(stage)]


def get(stage: str, name: str) -> Provider | None:
    """The provider registered as ``stage``/``name``, or ``None``."""
    _load_all()
    return _REGISTRY.get((stage, name))
