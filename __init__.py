"""presence: real-time conversational video AI built on pipecat.

The public API, for using presence as a library (everything else may change between versions)::

    import presence

    # A pipeline file: build it for any transport, run it over files, serve it, benchmark it.
    pipeline = presence.load_pipeline("local", overrides=["stages.tts.provider=espeak"])
    report = pipeline.run_file("question.wav", "answer.mp4", fast=True)

    # One stage for your own pipecat Pipeline([...]), and the transport params that carry its
    # voice and face in step.
    face = presence.stage("renderer", "warp", portrait="face.png", size=512, fps=25)
    params = presence.transport_params(face, kind="webrtc")

    # A pipecat-runner bot for any pipeline file (python bot.py -t webrtc).
    bot = presence.make_bot("pipelines/local.yaml")

Names:

- ``load_pipeline(path, overrides)`` → ``PresencePipeline`` (``build``, ``run``, ``run_file``,
  ``serve``, ``benchmark``, ``transport_params``, ``providers``, ``persona``).
- ``stage(stage, provider, **params)``: a registered provider (or ``module:factory``) as a
  ready pipecat object; ``providers(stage)`` lists them.
- ``transport_params(renderer, kind=...)``: ``TransportParams``/``DailyParams`` for the face.
- ``WebRTCTransport``: pipecat's ``SmallWebRTCTransport`` with an audio output that keeps up with
  its track (``presence.transports.webrtc.output``).
- ``bot``, ``make_bot``, ``runner_main``: pipecat's runner conventions (``presence.framework.
  runner_bot``).
- ``register``, ``StageParams``, ``BuildContext``: add a named provider from your own code.
- ``INSERT_POINTS``: where ``insert:`` entries and ``build(insert=...)`` processors go.
- Errors: ``PresenceError`` and its subclasses ``ConfigError``, ``MissingSecretError``,
  ``InputError``, ``ReplicaError``, ``DependencyError``, ``ProviderError``, ``ProviderTimeout``,
  ``ProviderUnavailable`` (``presence.framework.errors`` draws the tree).

Importing ``presence`` is cheap: each name loads its module (and pipecat) on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# OpenMP's worker threads (torch's, CTranslate2's) busy-wait after each parallel region by
# default, taking the cores that Piper, smart-turn and the renderer need in the same moments of a
# live call. Only a value set before torch or CTranslate2 loads counts; set it yourself to choose.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_EXPORTS = {
    "load_pipeline": "presence.framework.api",
    "PresencePipeline": "presence.framework.api",
    "bundled_pipelines": "presence.framework.config",
    "Session": "presence.framework.builder",
    "stage": "presence.framework.stages",
    "transport_params": "presence.framework.stages",
    "WebRTCTransport": "presence.transports.webrtc.output",
    "bot": "presence.framework.runner_bot",
    "make_bot": "presence.framework.runner_bot",
    "runner_main": "presence.framework.runner_bot",
    "INSERT_POINTS": "presence.framework.custom",
    "register": "presence.framework.registry",
    "providers": "presence.framework.registry",
    "StageParams": "presence.framework.registry",
    "BuildContext": "presence.framework.registry",
    "Persona": "presence.framework.persona",
    "PresenceError": "presence.framework.errors",
    "ConfigError": "presence.framework.errors",
    "MissingSecretError": "presence.framework.errors",
    "InputError": "presence.framework.errors",
    "ReplicaError": "presence.framework.errors",
    "DependencyError": "presence.framework.errors",
    "ProviderError": "presence.framework.errors",
    "ProviderTimeout": "presence.framework.errors",
    "ProviderUnavailable": "presence.framework.errors",
}

__all__ = [
    "BuildContext",
    "ConfigError",
    "DependencyError",
    "INSERT_POINTS",
    "InputError",
    "MissingSecretError",
    "Persona",
    "PresenceError",
    "PresencePipeline",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "ReplicaError",
    "Session",
    "StageParams",
    "bot",
    "bundled_pipelines",
    "load_pipeline",
    "make_bot",
    "providers",
    "register",
    "runner_main",
    "stage",
    "transport_params",
    "WebRTCTransport",
    "__version__",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from presence.framework.api import PresencePipeline, load_pipeline
    from presence.framework.builder import Session
    from presence.framework.config import bundled_pipelines
    from presence.framework.custom import INSERT_POINTS
    from presence.framework.errors import (
        ConfigError,
        DependencyError,
        InputError,
        MissingSecretError,
        PresenceError,
        ProviderError,
        ProviderTimeout,
        ProviderUnavailable,
        ReplicaError,
    )
    from presence.framework.persona import Persona
    from presence.framework.registry import BuildContext, StageParams, providers, register
    from presence.framework.runner_bot import bot, make_bot, runner_main
    from presence.framework.stages import stage, transport_params
    from presence.transports.webrtc.output import WebRTCTransport


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'presence' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__
