"""One stage at a time, for your own pipecat pipeline: ``presence.stage`` and ``transport_params``.

``stage`` builds any registered provider (or an import path) from keyword parameters, validated
like a pipeline file's, and returns the ready pipecat object; ``transport_params`` gives the
transport the settings that carry the renderer's audio and video in step (see
``presence.processors.renderer.output_sync``)::

    face = presence.stage("renderer", "warp", portrait="face.png", size=512, fps=25)
    transport = WebRTCTransport(connection, params=presence.transport_params(face))
    pipeline = Pipeline([transport.input(), stt, user, llm, tts, face, transport.output(), assistant])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipecat.transports.base_transport import TransportParams, VideoInSourceParams

from presence.framework import registry
from presence.framework.builder import build_stage
from presence.framework.config import StageConfig
from presence.framework.custom import import_provider, is_import_path
from presence.framework.errors import ConfigError
from presence.framework.persona import Persona, load_persona
from presence.framework.registry import BuildContext, VideoSettings
from presence.framework.yamlio import validate_model

TRANSPORT_KINDS = ("webrtc", "daily", "eval")


def _persona(persona: Persona | str | Path | None, portrait: str | Path | None) -> Persona:
    if isinstance(persona, Persona):
        found = persona
    elif persona is not None:
        found = load_persona(Path(persona))
    else:
        found = Persona()
    if portrait is not None:
        found = found.model_copy(update={"replica": Path(portrait).resolve()})
    return found


def _geometry(size: int | tuple[int, int] | None) -> tuple[int, int]:
    if size is None:
        return 512, 512
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


def stage(
    stage: str,
    provider: str,
    /,
    *,
    persona: Persona | str | Path | None = None,
    portrait: str | Path | None = None,
    size: int | tuple[int, int] | None = None,
    fps: int = 25,
    sample_rate: int = 24000,
    fast: bool = False,
    base_dir: str | Path | None = None,
    **params: Any,
) -> Any:
    """Build one stage by name, ready to put in your own pipecat ``Pipeline``.

    Args:
        stage: ``vad``, ``turn``, ``stt``, ``llm``, ``tts``, ``renderer`` or ``perception``.
        provider: A registered provider (``presence providers`` lists them) or an import path
            ``module.path:factory``.
        persona: A ``Persona``, or a persona YAML file (prompt, greeting, knowledge base,
            replica); default: a plain assistant.
        portrait: The face image the renderer animates (replaces the persona's replica).
        size: Video frame size, ``512`` or ``(width, height)`` (default 512 × 512).
        fps: Video frames per second.
        sample_rate: Rate of the persona's audio in your pipeline (the renderer's output).
        fast: The pipeline runs faster than real time (offline renders); renderers then draw as
            audio arrives instead of on the wall clock.
        base_dir: Folder that relative paths in ``params`` resolve against (default: the
            current one).
        **params: The provider's parameters, validated like the pipeline file's keys.

    Returns:
        What the stage is in a pipeline: a pipecat ``FrameProcessor`` for ``stt``, ``llm``,
        ``tts``, ``renderer`` and ``perception`` (``None`` for ``perception`` ``off``); a
        ``VADAnalyzer`` for ``vad``; ``UserTurnStrategies`` for ``turn``.

    Raises:
        ConfigError: Unknown stage or provider, a bad parameter (named), or a renderer without
            a face.
        ReplicaError: The portrait has no usable face.

    Example::

        face = presence.stage("renderer", "warp", portrait="face.png", size=512, fps=25)
        tts = presence.stage("tts", "piper")
    """
    source = f"presence.stage({stage!r}, {provider!r})"
    if stage not in registry.STAGES:
        raise ConfigError(f"unknown stage; stages are: {', '.join(registry.STAGES)}", source=source)
    if is_import_path(provider):
        found = import_provider(stage, provider, source=source, field="provider")
    else:
        found = registry.get(stage, provider)
    if found is None:
        allowed = ", ".join(registry.provider_names(stage))
        raise ConfigError(
            f"unknown provider; allowed: {allowed}, or an import path module.path:factory",
            source=source,
            field="provider",
        )
    chosen = _persona(persona, portrait)
    if stage == "renderer" and chosen.replica is None:
        raise ConfigError(
            "the renderer needs a face: pass portrait='face.png' (or a persona with a replica)",
            source=source,
            field="portrait",
        )
    validated = validate_model(params, found.params, source=source)
    width, height = _geometry(size)
    ctx = BuildContext(
        persona=chosen,
        base_dir=Path(base_dir).resolve() if base_dir is not None else Path.cwd(),
        video=VideoSettings(width=width, height=height, fps=fps),
        audio_out_sample_rate=sample_rate,
        fast=fast,
    )
    return build_stage(StageConfig(stage, found, validated), ctx)


def _renderer_geometry(renderer: Any) -> tuple[int, int, int, int]:
    engine = getattr(renderer, "engine", None)
    if engine is None:
        raise ConfigError(
            f"expected a presence renderer (from presence.stage('renderer', ...)), "
            f"got {type(renderer).__name__}",
            field="renderer",
        )
    return engine.width, engine.height, engine.fps, engine.sample_rate


def transport_params(
    renderer: Any = None,
    *,
    kind: str = "webrtc",
    width: int = 512,
    height: int = 512,
    fps: int = 25,
    sample_rate: int = 24000,
    audio_in_sample_rate: int = 16000,
    camera_fps: int = 0,
    **overrides: Any,
) -> TransportParams:
    """Transport params that carry the renderer's voice and face to the user, in step.

    Audio in and out, video out at the renderer's size, ``video_out_is_live=False`` (the
    renderer pairs each image with its audio; pipecat would drop such images from a live video
    queue), 10 ms audio chunks, and SmallWebRTC's 30 fps send loop. See
    ``presence.processors.renderer.output_sync`` for why.

    Args:
        renderer: A renderer from ``presence.stage("renderer", ...)``; its size, fps and sample
            rate win over the keyword arguments.
        kind: ``webrtc`` (pipecat ``TransportParams`` for SmallWebRTC), ``daily``
            (``DailyParams``) or ``eval`` (``EvalTransportParams`` for pipecat's eval harness,
            audio only).
        width: Video width without a renderer.
        height: Video height without a renderer.
        fps: Video frame rate without a renderer.
        sample_rate: The persona's audio rate without a renderer.
        audio_in_sample_rate: Rate of the user's audio in the pipeline.
        camera_fps: The user's camera frames per second passed into the pipeline (perception);
            0: camera off.
        **overrides: Any other field of the params class (they are applied last).

    Returns:
        The params object for the transport of that kind.

    Raises:
        ConfigError: Unknown ``kind``, or ``overrides`` that would lose the renderer's video.

    Example::

        face = presence.stage("renderer", "warp", portrait="face.png")
        transport = WebRTCTransport(connection, params=presence.transport_params(face))
    """
    from presence.processors.renderer.output_sync import check_output_params, output_video_params

    if renderer is not None:
        width, height, fps, sample_rate = _renderer_geometry(renderer)
    if kind not in TRANSPORT_KINDS:
        raise ConfigError(
            f"unknown transport kind {kind!r}; kinds are: {', '.join(TRANSPORT_KINDS)}",
            field="kind",
        )
    fields: dict[str, Any] = {
        "audio_in_enabled": True,
        "audio_in_sample_rate": audio_in_sample_rate,
        "audio_out_sample_rate": sample_rate,
    }
    if kind == "eval":
        from pipecat.evals.transport import EvalTransportParams

        fields["audio_out_enabled"] = True
        return EvalTransportParams(**{**fields, **overrides})
    fields.update(output_video_params(width, height, fps, transport=kind))
    if camera_fps > 0:
        fields["video_in_enabled"] = True
        fields["video_in_sources"] = {"camera": VideoInSourceParams(framerate=camera_fps)}
    if kind == "daily":
        from pipecat.transports.daily.transport import DailyParams

        params: TransportParams = DailyParams(**{**fields, **overrides})
    else:
        params = TransportParams(**{**fields, **overrides})
    check_output_params(params)
    return params
