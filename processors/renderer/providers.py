"""Renderer providers: ``renderer: {provider: warp|still|wav2lip, device: auto, ...}``.

Each factory registers the persona's replica (cached on disk by content hash), builds the engine at
the transport's video size and frame rate and the pipeline's output sample rate, and wraps it in a
``RendererProcessor``. ``realtime`` defaults to the opposite of the file transport's ``--fast``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from presence.framework.errors import ConfigError
from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.renderer.engines.base import RendererEngine
from presence.processors.renderer.processor import RendererProcessor
from presence.processors.renderer.replica import register_replica


class StillParams(StageParams):
    """Parameters of the still renderer.

    Attributes:
        size: Square frame side in pixels; default: the transport's video width × height
            (another size makes the transport rescale every frame).
        seed: Seed of the motion model.
        realtime: Tick on the wall clock; default: true unless the run is ``--fast``.
        cache_dir: Where registered replicas are cached (default ``~/.cache/presence/replicas``).
    """

    size: int | None = Field(default=None, ge=16, le=4096)
    seed: int = 0
    realtime: bool | None = None
    cache_dir: Path | None = None


class WarpParams(StillParams):
    """Parameters of the warp renderer (``StillParams`` plus ``device``: auto, cpu or cuda)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"


class Wav2LipParams(WarpParams):
    """Parameters of the Wav2Lip renderer (``WarpParams`` plus the user-supplied ``checkpoint``)."""

    checkpoint: Path


def _processor(engine: RendererEngine, params: StillParams, ctx: BuildContext) -> RendererProcessor:
    replica_path = ctx.persona.replica
    if replica_path is None:
        raise ConfigError(
            "the persona has no replica; set `replica: portrait.png` in the persona file",
            field="persona.replica",
        )
    cache = params.cache_dir
    if cache is not None and not cache.is_absolute():
        cache = ctx.base_dir / cache
    engine.prepare(register_replica(replica_path, ctx.persona.name, cache))
    realtime = (not ctx.fast) if params.realtime is None else params.realtime
    return RendererProcessor(engine, realtime=realtime, name=f"renderer-{engine.name}")


def _size(params: StillParams, ctx: BuildContext) -> tuple[int, int]:
    return (params.size, params.size) if params.size else (ctx.video.width, ctx.video.height)


@register("renderer", "still", StillParams, summary="the replica's portrait, still (no lip sync)")
def build_still(params: StillParams, ctx: BuildContext) -> RendererProcessor:
    """Build the still renderer."""
    from presence.processors.renderer.engines.still import StillEngine

    engine = StillEngine(_size(params, ctx), ctx.video.fps, ctx.audio_out_sample_rate, params.seed)
    return _processor(engine, params, ctx)


@register(
    "renderer",
    "warp",
    WarpParams,
    summary="weightless lip sync: a bilinear warp (OpenCV on CPU, torch on CUDA)",
)
def build_warp(params: WarpParams, ctx: BuildContext) -> RendererProcessor:
    """Build the warp renderer."""
    from presence.processors.renderer.engines.warp import WarpEngine

    try:
        engine = WarpEngine(
            _size(params, ctx), ctx.video.fps, ctx.audio_out_sample_rate, params.seed, params.device
        )
    except ValueError as exc:
        raise ConfigError(str(exc), field="stages.renderer.device") from exc
    return _processor(engine, params, ctx)


@register(
    "renderer",
    "wav2lip",
    Wav2LipParams,
    summary="neural lip sync from user-supplied Wav2Lip weights (GPU tier)",
)
def build_wav2lip(params: Wav2LipParams, ctx: BuildContext) -> RendererProcessor:
    """Build the Wav2Lip renderer."""
    from presence.processors.renderer.engines.wav2lip import Wav2LipEngine

    checkpoint = (
        params.checkpoint if params.checkpoint.is_absolute() else ctx.base_dir / params.checkpoint
    )
    try:
        engine = Wav2LipEngine(
            _size(params, ctx),
            ctx.video.fps,
            ctx.audio_out_sample_rate,
            params.seed,
            device=params.device,
            checkpoint=checkpoint,
        )
    except ValueError as exc:
        raise ConfigError(str(exc), field="stages.renderer.device") from exc
    return _processor(engine, params, ctx)
