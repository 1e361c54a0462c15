"""Registry entries for the ``perception`` stage.

::

    perception: {provider: opencv, every_ms: 200, triggers: [{when: looking_away, for_s: 5,
                 ask: "Check whether the user is still there."}]}
    perception: {provider: anthropic, describer: {model: claude-haiku-4-5,
                 api_key: ${ANTHROPIC_API_KEY}, interval_s: 10}}
    perception: {provider: off}

``opencv`` is offline (Haar cascades); ``anthropic`` is the same plus a vision model's one-line
description every ``interval_s``; ``off`` builds nothing. The processor belongs between the user
context aggregator and the LLM (see ``processor.py``).

With the file transport running faster than real time (``ctx.fast``) time is counted from the
camera frames: at ``ctx.extras["camera_fps"]`` when the transport put it there, else at the output
video's frame rate.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from presence.framework.errors import MissingSecretError
from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.perception.engines.events import PerceptionTracker, TrackerConfig
from presence.processors.perception.engines.opencv import HaarEngine
from presence.processors.perception.engines.triggers import TriggerSpec
from presence.processors.perception.processor import PerceptionProcessor


class PerceptionParams(StageParams):
    """Offline perception with OpenCV Haar cascades.

    Attributes:
        every_ms: Least time between two analysed camera frames.
        triggers: Persona reactions, e.g. ``{when: looking_away, for_s: 5, say: "Still there?"}``.
        context_note: When the LLM gets a perception note: ``changed`` (when the summary changed
            since the last note), ``every_turn``, or ``off``.
        analysis_width: Camera frames are shrunk to this width before analysis.
        profile: Also look for faces in profile (costs up to ~15 ms when no face is frontal).
        dark_luma: Mean brightness (0-255) under which the image counts as too dark.
        center_tolerance: Largest face-centre offset from the middle (fraction of the width) that
            still counts as looking at the persona.
        camera_timeout_s: Seconds without any camera frame after which the camera counts as gone
            (the user then reads absent, reason ``no_camera``, after the presence debounce).
    """

    every_ms: int = Field(200, ge=20, le=10_000)
    triggers: list[TriggerSpec] = Field(default_factory=list)
    context_note: Literal["changed", "every_turn", "off"] = "changed"
    analysis_width: int = Field(320, ge=96, le=1920)
    profile: bool = True
    dark_luma: float = Field(45.0, ge=0.0, le=255.0)
    center_tolerance: float = Field(0.3, gt=0.0, le=0.5)
    camera_timeout_s: float = Field(1.0, gt=0.0, le=60.0)


class DescriberParams(BaseModel):
    """The Anthropic vision describer.

    Attributes:
        model: A vision-capable Anthropic model.
        api_key: API key; when empty, ``ANTHROPIC_API_KEY`` from the environment.
        base_url: API root; empty for Anthropic's own (or ``ANTHROPIC_BASE_URL``).
        interval_s: Least time between two descriptions (also sent on presence changes).
        max_side: Longest side of the image sent, in pixels.
        timeout_s: Per-request timeout.
    """

    model_config = ConfigDict(extra="forbid")

    model: str = "claude-haiku-4-5"
    api_key: str | None = None
    base_url: str | None = None
    interval_s: float = Field(10.0, ge=1.0, le=3600.0)
    max_side: int = Field(512, ge=64, le=1568)
    timeout_s: float = Field(10.0, gt=0.0, le=120.0)


class AnthropicPerceptionParams(PerceptionParams):
    """Offline perception plus an Anthropic vision model's one-line descriptions."""

    describer: DescriberParams = Field(default_factory=DescriberParams)


def _media_fps(ctx: BuildContext) -> float | None:
    if not ctx.fast:
        return None
    return float(ctx.extras.get("camera_fps") or ctx.video.fps)


def _processor(params: PerceptionParams, ctx: BuildContext, **extra) -> PerceptionProcessor:
    engine = HaarEngine(analysis_width=params.analysis_width, profile=params.profile)
    tracker = PerceptionTracker(
        TrackerConfig(dark_luma=params.dark_luma, center_tolerance=params.center_tolerance)
    )
    return PerceptionProcessor(
        engine=engine,
        every_ms=params.every_ms,
        triggers=params.triggers,
        context_note=params.context_note,
        media_fps=_media_fps(ctx),
        camera_timeout_s=params.camera_timeout_s,
        tracker=tracker,
        **extra,
    )


@register(
    "perception",
    "opencv",
    PerceptionParams,
    summary="Haar-cascade face/attention/smile events (offline)",
)
def build_opencv(params: PerceptionParams, ctx: BuildContext) -> PerceptionProcessor:
    """Build the offline perception processor."""
    return _processor(params, ctx, engine_name="opencv")


@register(
    "perception",
    "anthropic",
    AnthropicPerceptionParams,
    summary="offline events plus an Anthropic vision model's one-line descriptions",
)
def build_anthropic(params: AnthropicPerceptionParams, ctx: BuildContext) -> PerceptionProcessor:
    """Build perception with the Anthropic describer.

    Raises:
        MissingSecretError: No ``api_key`` and no ``ANTHROPIC_API_KEY`` in the environment.
        DependencyError: The ``anthropic`` SDK is not installed.
    """
    from presence.processors.perception.engines.describer import AnthropicDescriber

    d = params.describer
    key = d.api_key or os.environ.get("ANTHROPIC_API_KEY")
    if not key:
        raise MissingSecretError(
            "the perception describer needs an API key: set ANTHROPIC_API_KEY",
            field="stages.perception.describer.api_key",
        )
    describer = AnthropicDescriber(
        api_key=key, model=d.model, base_url=d.base_url, timeout_s=d.timeout_s, max_side=d.max_side
    )
    return _processor(
        params,
        ctx,
        engine_name="opencv+anthropic",
        describer=describer,
        describe_interval_s=d.interval_s,
    )


@register("perception", "off", PerceptionParams, summary="no perception")
def build_off(params: PerceptionParams, ctx: BuildContext) -> None:
    """Perception disabled: the builder leaves the stage out."""
    return None
