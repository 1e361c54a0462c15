"""presence pipelines as pipecat-runner bots: ``bot(runner_args)`` serves any pipeline file.

pipecat's development runner (``pipecat.runner.run.main``) imports ``bot`` from the main module
and calls it once per session with the arguments of the transport the client chose; Pipecat
Cloud's base image does the same, one session per container. ``bot`` loads the pipeline named by
``PRESENCE_PIPELINE``, builds the transport with ``pipecat.runner.utils.create_transport`` (for
SmallWebRTC, presence's ``WebRTCTransport``, whose audio output keeps up with the track) and runs
one conversation::

    # bot.py (examples/bot.py)
    from presence import bot, runner_main  # noqa: F401  (the runner looks ``bot`` up here)

    if __name__ == "__main__":
        runner_main()

    PRESENCE_PIPELINE=pipelines/local.yaml python bot.py -t webrtc   # http://localhost:7860/client
    PRESENCE_PIPELINE=cloud python bot.py -t daily                    # DAILY_API_KEY: a room per call

Transports: ``webrtc`` (SmallWebRTC; pipecat's prebuilt page at ``/client``, offers at
``/api/offer``), ``daily``, and pipecat's eval harness (``ws://HOST:PORT/ws``; audio in and out,
no video). Environment, read per session:

- ``PRESENCE_PIPELINE``: a pipeline file or a bundled name (default ``local``);
- ``PRESENCE_SET``: overrides as ``--set`` takes them, separated by newlines or ``;``;
- ``PRESENCE_GREET``: ``0`` to skip the persona's greeting;
- ``PRESENCE_ICE_HOST_ADDRESSES``: read once by ``runner_main``: the only host addresses WebRTC
  offers (``127.0.0.1`` on a machine whose only interface is loopback).

For your own file and overrides without the environment, ``bot = presence.make_bot("my.yaml")``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loguru import logger

from presence.framework.api import Overrides, PresencePipeline, load_pipeline

PIPELINE_ENV = "PRESENCE_PIPELINE"
OVERRIDES_ENV = "PRESENCE_SET"
GREET_ENV = "PRESENCE_GREET"
ICE_ENV = "PRESENCE_ICE_HOST_ADDRESSES"
DEFAULT_PIPELINE = "local"

Bot = Callable[[Any], Awaitable[None]]
"""``async def bot(runner_args)``, what pipecat's runner calls per session."""


def env_overrides(environ: dict[str, str] | None = None) -> list[str]:
    """``PRESENCE_SET`` split into ``PATH=VALUE`` strings (newlines or ``;`` separate them)."""
    raw = (environ if environ is not None else os.environ).get(OVERRIDES_ENV, "")
    return [part.strip() for line in raw.splitlines() for part in line.split(";") if part.strip()]


def runner_transport_params(pipeline: PresencePipeline) -> dict[str, Callable[[], Any]]:
    """The ``transport_params`` map ``create_transport`` takes, from the pipeline's video."""
    return {
        kind: (lambda k=kind: pipeline.transport_params(k)) for kind in ("webrtc", "daily", "eval")
    }


def make_bot(
    pipeline: str | Path | PresencePipeline | None = None,
    overrides: Overrides | None = None,
    *,
    greet: bool | None = None,
) -> Bot:
    """A pipecat-runner ``bot(runner_args)`` for a presence pipeline.

    Args:
        pipeline: A pipeline file, bundled name or loaded ``PresencePipeline``; ``None`` reads
            ``PRESENCE_PIPELINE`` at each session (default ``local``).
        overrides: Overrides for a file or name (``PRESENCE_SET`` is used when ``pipeline`` is
            ``None``).
        greet: Say the persona's greeting when the user connects; ``None`` reads
            ``PRESENCE_GREET`` (default on).

    Returns:
        ``async def bot(runner_args)``: one conversation per call, over the transport the
        runner arguments describe (SmallWebRTC, Daily, or pipecat's eval harness).

    Example::

        bot = presence.make_bot("pipelines/local.yaml", ["stages.renderer.provider=still"])
    """

    def resolve() -> PresencePipeline:
        if isinstance(pipeline, PresencePipeline):
            return pipeline
        if pipeline is None:
            return load_pipeline(os.environ.get(PIPELINE_ENV) or DEFAULT_PIPELINE, env_overrides())
        return load_pipeline(pipeline, overrides)

    async def bot(runner_args: Any) -> None:
        from pipecat.runner.types import SmallWebRTCRunnerArguments
        from pipecat.runner.utils import create_transport

        from presence.transports.webrtc.output import WebRTCTransport

        loaded = resolve()
        params = runner_transport_params(loaded)
        if isinstance(runner_args, SmallWebRTCRunnerArguments):  # its output keeps up with playout
            transport = WebRTCTransport(
                params=params["webrtc"](), webrtc_connection=runner_args.webrtc_connection
            )
        else:
            transport = await create_transport(runner_args, params)
        greets = greet if greet is not None else os.environ.get(GREET_ENV, "1") != "0"
        logger.info(f"presence bot: {loaded.name} over {type(transport).__name__}")
        await loaded.run(
            transport,
            greet=greets,
            idle_timeout_secs=getattr(runner_args, "pipeline_idle_timeout_secs", None),
            handle_sigint=getattr(runner_args, "handle_sigint", False),
        )

    return bot


bot: Bot = make_bot()
"""The environment-driven bot: ``PRESENCE_PIPELINE`` (default ``local``) and ``PRESENCE_SET``."""


def runner_main() -> None:
    """Start pipecat's development runner for the ``bot`` of the main module (its CLI flags).

    Applies ``PRESENCE_ICE_HOST_ADDRESSES`` first (comma-separated), then hands over to
    ``pipecat.runner.run.main``: ``-t webrtc|daily``, ``--host``, ``--port``, ...
    """
    addresses = [a.strip() for a in os.environ.get(ICE_ENV, "").split(",") if a.strip()]
    if addresses:
        from presence.transports.webrtc import limit_ice_host_addresses

        limit_ice_host_addresses(addresses)
    from pipecat.runner.run import main

    main()


if __name__ == "__main__":
    runner_main()
