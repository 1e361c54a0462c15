"""The builder: a validated pipeline spec plus a transport becomes a pipecat ``PipelineWorker``.

The pipeline reads straight down the data path::

    transport.input → stt → user aggregator (vad + turn) → perception → llm → tts
                    → renderer → transport.output → assistant aggregator

Stage factories come from the registry; nothing here knows a provider by name. Building the
stages (loading models) is the slow part and needs no transport: ``prepare_stages`` does it ahead
of time (in a worker thread, before a browser connects), and ``build_session(prepared=...)`` only
wires the prepared stages around the transport. A stage that defines ``warm_up()`` (a blocking,
idempotent method: e.g. one throw-away decode, since a model's first run is slow) has it called
during preparation, so its ``start`` does not pay for it when the call begins. Extra processors
go in at the named points of ``presence.framework.custom.INSERT_POINTS``: from the file's
``insert:`` list, then from the ``insert`` argument of ``build_session`` (a point may be empty
when its stage is left out: the processors keep their place in the order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import BaseTransport

from presence.framework.aggregators import PresenceContextAggregatorPair
from presence.framework.config import LoadedPipeline, StageConfig
from presence.framework.custom import INSERT_ALIASES, INSERT_POINTS, InsertConfig
from presence.framework.errors import ConfigError, PresenceError
from presence.framework.memory import can_release_freed_memory, freeze_loaded_objects
from presence.framework.observers.idle_trim import IdleMemoryTrim
from presence.framework.observers.latency import attach_turn_latency
from presence.framework.observers.revisions import attach_transcript_revisions
from presence.framework.persona import Persona
from presence.framework.registry import STAGE_INSERTS, BuildContext, VideoSettings


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
        inserted: The processors inserted at each point (file entries first), by point name.
    """

    worker: PipelineWorker
    pipeline: Pipeline
    context: LLMContext
    stages: dict[str, Any]
    ctx: BuildContext
    observers: list[BaseObserver] = field(default_factory=list)
    inserted: dict[str, list[FrameProcessor]] = field(default_factory=dict)

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


def _call_imported(build, name: str, loaded: LoadedPipeline, where: str) -> Any:
    """Run a factory named by import path, reporting its own failures as the file's field."""
    try:
        return build()
    except PresenceError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"{name} raised {type(exc).__name__}: {exc}",
            source=str(loaded.source),
            field=f"{where}.provider",
        ) from exc


def build_inserts(
    loaded: LoadedPipeline,
    ctx: BuildContext,
    extra: Mapping[str, Sequence[FrameProcessor]] | None = None,
) -> dict[str, list[FrameProcessor]]:
    """The processors for each insert point: the file's ``insert:`` entries, then ``extra``.

    Raises:
        ConfigError: An entry's callable failed or built something that is not a
            ``FrameProcessor``, or ``extra`` names an unknown point.
    """
    points: dict[str, list[FrameProcessor]] = {p: [] for p in INSERT_POINTS}
    for cfg in loaded.inserts:
        points[cfg.at].append(_inserted(cfg, ctx, loaded))
    for name, processors in (extra or {}).items():
        at = INSERT_ALIASES.get(name, name)
        if at not in points:
            raise ConfigError(
                f"unknown insert point {name!r}; points are: {', '.join(INSERT_POINTS)}",
                field="insert",
            )
        for processor in processors:
            if not isinstance(processor, FrameProcessor):
                raise ConfigError(
                    f"insert[{name!r}] holds a {type(processor).__name__}, not a FrameProcessor",
                    field="insert",
                )
        points[at].extend(processors)
    return points


def _inserted(cfg: InsertConfig, ctx: BuildContext, loaded: LoadedPipeline) -> FrameProcessor:
    name = cfg.provider.name
    built = _call_imported(lambda: cfg.provider.factory(cfg.params, ctx), name, loaded, cfg.field)
    if not isinstance(built, FrameProcessor):
        raise ConfigError(
            f"{name} returned a {type(built).__name__}, not a pipecat FrameProcessor; return a "
            "FrameProcessor instance (or name a FrameProcessor class)",
            source=str(loaded.source),
            field=f"{cfg.field}.provider",
        )
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


@dataclass
class PreparedStages:
    """A session's stages and inserted processors, built (and warmed up) before its transport.

    Attributes:
        ctx: The build context the factories saw.
        stages: The processor (or component) built for each stage.
        points: The processors inserted at each point.
    """

    ctx: BuildContext
    stages: dict[str, Any]
    points: dict[str, list[FrameProcessor]]


def prepare_stages(
    loaded: LoadedPipeline,
    *,
    fast: bool = False,
    extras: dict[str, Any] | None = None,
    insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
    warm_up: bool = True,
) -> PreparedStages:
    """Build every stage of one session and warm up those that can, without a transport.

    Blocking (it loads models): call it in a worker thread (``asyncio.to_thread``) from async
    code. The result is for one session only; stages are not shared.

    Args:
        loaded: The validated pipeline file.
        fast: Whether media runs faster than real time (file transport only).
        extras: Values shared with the factories through ``BuildContext.extras``.
        insert: Extra processors by insert point (see ``build_session``).
        warm_up: Call each stage's ``warm_up()``, where it has one.

    Raises:
        ConfigError: A stage failed to build, or ``insert`` names an unknown point.
    """
    ctx = make_context(loaded, fast=fast)
    ctx.extras.update(extras or {})
    stages = {name: _build(cfg, ctx, loaded) for name, cfg in loaded.stages.items()}
    points = build_inserts(loaded, ctx, insert)
    for point, processors in ctx.extras.get(STAGE_INSERTS, {}).items():
        points[point] = [*processors, *points[point]]  # a stage's own helpers come first
    _link_openings(stages)
    if warm_up:
        for name, built in stages.items():
            warm = getattr(built, "warm_up", None)
            if callable(warm):
                try:
                    warm()
                except Exception as exc:  # a cold start is slower, not broken
                    logger.warning(f"stage {name}: warm-up failed, it starts cold: {exc}")
    freeze_loaded_objects()  # the first session's models: no full collection walks them again
    return PreparedStages(ctx, stages, points)


def _link_openings(stages: dict[str, Any]) -> None:
    """Let the TTS stage make ahead the sentences the LLM stage's answers start with.

    An LLM stage with ``openings()`` (its fixed opening sentences) and a TTS stage with
    ``speak_openings_of(source)`` are linked; the TTS reads the sentences at its warm-up.
    """
    source = getattr(stages.get("llm"), "openings", None)
    link = getattr(stages.get("tts"), "speak_openings_of", None)
    if callable(source) and callable(link):
        link(source)


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
    insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
    prepared: PreparedStages | None = None,
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
            and must see them before STT and the user aggregator); before any ``after_input``
            insert.
        insert: Extra processors by insert point (``INSERT_POINTS`` or an alias), placed after
            the file's ``insert:`` entries at the same point. A processor with a true
            ``screens_llm_output`` attribute (the guardrails' output screen) turns off the
            RTVI messages carrying the LLM's raw text (``bot-llm-*``, ``llm-raw-text``) and
            makes every ``TranscriptObserver`` in ``observers`` ``screened``.
        prepared: Stages built ahead by ``prepare_stages`` (then ``fast``, ``extras`` and
            ``insert`` were given there and must not be given here); only the wiring is left.

    Returns:
        The session, ready for ``WorkerRunner``. With RTVI on, its worker also has a
        ``TurnLatencyObserver`` that sends each turn's latency (from the end of the user's voice)
        to the client as an RTVI ``server-message``, in ``Session.observers``; on glibc an
        ``IdleMemoryTrim`` too.

    Raises:
        ConfigError: A stage or an inserted processor built something of the wrong kind, or
            ``insert`` names an unknown point.
        ValueError: ``prepared`` was given together with ``fast``, ``extras`` or ``insert``.
    """
    if prepared is None:
        prepared = prepare_stages(loaded, fast=fast, extras=extras, insert=insert, warm_up=False)
    elif fast or extras or insert:
        raise ValueError("give fast, extras and insert to prepare_stages, not with prepared=")
    ctx, stages, points = prepared.ctx, prepared.stages, prepared.points

    context = LLMContext(seed_messages(loaded.persona))
    aggregators = PresenceContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=stages.get("vad"), user_turn_strategies=stages.get("turn")
        ),
    )

    chain: list[FrameProcessor] = [transport.input(), *after_input, *points["after_input"]]
    if stages.get("stt") is not None:
        chain.append(_processor(stages["stt"], "stt", loaded))
    chain += [*points["after_stt"], aggregators.user(), *points["after_user_aggregator"]]
    # perception sits after the user aggregator so it can add its note to the turn's context
    before = {"llm": "before_llm", "tts": "before_tts", "renderer": "before_renderer"}
    for name in ("perception", "llm", "tts", "renderer"):
        if name in before:
            chain += points[before[name]]
        if stages.get(name) is not None:
            chain.append(_processor(stages[name], name, loaded))
    chain += [*points["after_renderer"], transport.output(), aggregators.assistant()]

    kwargs: dict[str, Any] = {}
    if enable_rtvi is not None:
        kwargs["enable_rtvi"] = enable_rtvi
    if any(getattr(p, "screens_llm_output", False) for p in chain):
        # a processor screens the LLM's text before TTS (guardrails): the client's captions
        # and the transcript come from what is screened, never from the LLM's raw tokens
        from pipecat.processors.frameworks.rtvi.observer import RTVIObserverParams

        from presence.framework.observers.transcript import TranscriptObserver

        kwargs["rtvi_observer_params"] = RTVIObserverParams(
            bot_llm_enabled=False, llm_raw_text_enabled=False
        )
        for observer in observers:
            if isinstance(observer, TranscriptObserver):
                observer.screened = True
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
    revisions = attach_transcript_revisions(worker)  # a better transcript replaces the shown one
    trim = None
    if can_release_freed_memory():  # a quiet session gives its turns' freed memory back
        trim = IdleMemoryTrim()
        worker.add_observer(trim)
    extra = [o for o in (latency, revisions, trim) if o is not None]
    inserted = {p: list(procs) for p, procs in points.items() if procs}
    return Session(worker, pipeline, context, stages, ctx, [*observers, *extra], inserted)


def _build(config: StageConfig, ctx: BuildContext, loaded: LoadedPipeline) -> Any:
    if ":" not in config.provider.name or config.fallbacks:
        return build_stage(config, ctx)
    where = f"stages.{config.stage}"
    return _call_imported(lambda: build_stage(config, ctx), config.provider.name, loaded, where)


def _processor(built: Any, stage: str, loaded: LoadedPipeline) -> FrameProcessor:
    if not isinstance(built, FrameProcessor):
        provider = loaded.stages[stage].provider.name
        raise ConfigError(
            f"provider '{provider}' built a {type(built).__name__}, not a frame processor; "
            "return a pipecat FrameProcessor instance",
            source=str(loaded.source),
            field=f"stages.{stage}.provider",
        )
    return built
