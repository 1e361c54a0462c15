"""The builder: a validated pipeline spec plus a transport becomes a pipecat ``PipelineWorker``.

The pipeline reads straight down the data path::

    transport.input → stt → user aggregator (vad + turn) → perception → llm → tts
                    → renderer → transport.output → assistant aggregator

Stage factories come from the registry; nothing here knows a provider by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import BaseTransport

from presence.framework.config import LoadedPipeline, StageConfig
from presence.framework.errors import ConfigError
from presence.framework.observers.latency import attach_turn_latency
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext, VideoSettings


@dataclass
class Session:
    """One built conversation: the worker to run plus handles the caller may need.

    Attributes:
        worker: The pipecat worker that runs the pipeline.
        pipeline: The pipeline the worker runs, in data-path order.
        context: The LLM context shared by the aggregators.
        stages: The processor (or component) built for each stage.
        ctx: The build context the factories saw.
        observers: Observers attached to the worker.
    """

    worker: PipelineWorker
    pipeline: Pipeline
    context: LLMContext
    stages: dict[str, Any]
    ctx: BuildContext
    observers: list[BaseObserver] = field(default_factory=list)

    async def greet(self) -> None:
        """Have the persona say its greeting (no-op when the persona has none)."""
        greeting = self.ctx.persona.greeting.strip()
        if greeting:
            await self.worker.queue_frames([TTSSpeakFrame(greeting)])


def build_stage(config: StageConfig, ctx: BuildContext) -> Any:
    """Build one stage with its provider's factory, wrapping fallbacks when configured."""
    if config.fallbacks:
        from presence.processors.resilience import build_with_fallback

        return build_with_fallback(config.stage, config, ctx)
    built = config.provider.factory(config.params, ctx)
    logger.debug(f"built stage {config.stage} with provider {config.provider.name}")
    return built


def make_context(loaded: LoadedPipeline, *, fast: bool = False) -> BuildContext:
    """The build context for ``loaded``: persona, folder, audio rates and video settings."""
    video = getattr(loaded.transport, "video", None)
    settings = (
        VideoSettings(width=video.width, height=video.height, fps=video.fps)
        if video is not None
        else VideoSettings()
    )
    return BuildContext(
        persona=loaded.persona,
        base_dir=loaded.base_dir,
        video=settings,
        fast=fast,
        spec=loaded.spec,
    )


def seed_messages(persona: Persona) -> list[dict[str, Any]]:
    """A new session context's messages: one system message, or none when it would be empty.

    It holds the persona's prompt and conversational context (``full_system_prompt``) and is the
    single copy every LLM stage reads each turn; context interactions rewrite it in place.
    """
    system = persona.full_system_prompt()
    return [{"role": "system", "content": system}] if system else []


def build_session(
    loaded: LoadedPipeline,
    transport: BaseTransport,
    *,
    fast: bool = False,
    observers: Sequence[BaseObserver] = (),
    idle_timeout_secs: float | None = None,
    enable_rtvi: bool | None = None,
    extras: dict[str, Any] | None = None,
    after_input: Sequence[FrameProcessor] = (),
) -> Session:
    """Build the pipeline and its worker for one conversation over ``transport``.

    Args:
        loaded: The validated pipeline file.
        transport: The transport the user talks through.
        fast: Whether media runs faster than real time (file transport only).
        observers: Extra observers (transcripts, latency) attached to the worker.
        idle_timeout_secs: Cancel the worker after this long without activity; None disables.
        enable_rtvi: Force RTVI on or off; None keeps pipecat's default.
        extras: Values shared with the factories through ``BuildContext.extras``
            (e.g. ``camera_fps`` from the file transport).
        after_input: Processors placed right after ``transport.input()``, before every stage
            (e.g. the service's ``InteractionsProcessor``, which acts on data-channel messages
            and must see them before STT and the user aggregator).

    Returns:
        The session, ready for ``WorkerRunner``. With RTVI on, its worker also has a
        ``TurnLatencyObserver`` that sends each turn's latency (from the end of the user's voice)
        to the client as an RTVI ``server-message``; it is last in ``Session.observers``.

    Raises:
        ConfigError: A stage built something of the wrong kind.
    """
    ctx = make_context(loaded, fast=fast)
    ctx.extras.update(extras or {})
    stages = {name: build_stage(cfg, ctx) for name, cfg in loaded.stages.items()}

    context = LLMContext(seed_messages(loaded.persona))
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=stages.get("vad"), user_turn_strategies=stages.get("turn")
        ),
    )

    chain: list[FrameProcessor] = [transport.input(), *after_input]
    if stages.get("stt") is not None:
        chain.append(_processor(stages["stt"], "stt", loaded))
    chain.append(aggregators.user())
    # perception sits after the user aggregator so it can add its note to the turn's context
    for name in ("perception", "llm", "tts", "renderer"):
        if stages.get(name) is not None:
            chain.append(_processor(stages[name], name, loaded))
    chain += [transport.output(), aggregators.assistant()]

    kwargs: dict[str, Any] = {}
    if enable_rtvi is not None:
        kwargs["enable_rtvi"] = enable_rtvi
    pipeline = Pipeline(chain)
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=ctx.audio_in_sample_rate,
            audio_out_sample_rate=ctx.audio_out_sample_rate,
            enable_metrics=True,
        ),
        observers=list(observers),
        idle_timeout_secs=idle_timeout_secs,
        conversation_id=None,
        **kwargs,
    )
    # each turn's latency, from the end of the user's voice, to the RTVI client (the page)
    latency = attach_turn_latency(worker)
    extra = [latency] if latency is not None else []
    return Session(worker, pipeline, context, stages, ctx, [*observers, *extra])


def _processor(built: Any, stage: str, loaded: LoadedPipeline) -> FrameProcessor:
    if not isinstance(built, FrameProcessor):
        provider = loaded.stages[stage].provider.name
        raise ConfigError(
            f"provider '{provider}' built a {type(built).__name__}, not a frame processor",
            source=str(loaded.source),
            field=f"stages.{stage}",
        )
    return built
