"""The child side of a conversation's own process (see ``presence.service.process_launcher``).

``child_main`` runs in a fresh process (forked from a pre-loaded forkserver, or spawned). It runs
the conversation with the in-process ``WebRTCLauncher`` and serves that conversation's page
signalling app with uvicorn on a free loopback port, plus two control routes the parent calls
with the per-process token (``x-presence-control``):

- ``POST /_control/interact``: body = an interaction message; 200 ``{"event_type"}``, 409 when the
  pipeline is not running, 422 when the message is invalid;
- ``POST /_control/end``: stop the session (final transcript and recording are reported first),
  then exit.

Everything the session reports (``SessionEvents``) goes to the parent as ``(name, args)`` tuples on
a ``multiprocessing`` queue, in order. The first tuple is ``("ready", port)`` or
``("launch_failed", stage, message)``; ``("prepared",)`` follows (or precedes) ``ready`` once the
session's stages are built and warm, so that a join only wires them. The child exits when the parent goes away (the lifeline pipe
reaches EOF), so a killed service leaves no orphan sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import os
import signal
import threading
from typing import Any

from loguru import logger

from presence.framework.registry import PROVIDER_MODULES
from presence.service.session_spec import ConversationSpec

CONTROL_HEADER = "x-presence-control"
PRELOAD = [
    "presence.service.session_process",
    "presence.service.launcher",
    "presence.framework.builder",
    "presence.framework.config",
    "presence.transports.webrtc",
    *PROVIDER_MODULES,
]
"""Modules a forkserver imports once, so each session process starts without importing them."""


class QueueEvents:
    """``SessionEvents`` that forward each call to the parent as a ``(name, args)`` tuple."""

    def __init__(self, queue: Any):
        self._queue = queue

    def _put(self, name: str, *args: Any) -> None:
        self._queue.put((name, args))

    def joined(self) -> None:
        """The user connected."""
        self._put("joined")

    def left(self) -> None:
        """The user disconnected (or the pipeline stopped)."""
        self._put("left")

    def transcript(self, turns: list[dict[str, Any]]) -> None:
        """The transcript so far."""
        self._put("transcript", [dict(t) for t in turns])

    def perception(self, analysis: dict[str, Any]) -> None:
        """The perception analysis so far."""
        self._put("perception", dict(analysis))

    def recording(self, path: str, duration: float | None) -> None:
        """The recording is complete."""
        self._put("recording", str(path), duration)

    def failed(self, stage: str | None, message: str) -> None:
        """A stage failed."""
        self._put("failed", stage, str(message))

    def guardrail(self, trigger: dict[str, Any]) -> None:
        """A guardrail fired."""
        self._put("guardrail", dict(trigger))

    def objective(self, completion: dict[str, Any], state: list[dict[str, Any]]) -> None:
        """An objective completed."""
        self._put("objective", dict(completion), [dict(s) for s in state])


def noop() -> None:
    """A process that does nothing (``ProcessLauncher.warm`` starts one to load the forkserver)."""


def _watch_lifeline(lifeline: Any, stop: Any) -> None:
    """Block until the parent's end of ``lifeline`` closes, then ask the loop to stop."""
    with contextlib.suppress(EOFError, OSError):
        while True:
            lifeline.recv()
    stop()


def child_main(
    spec: ConversationSpec,
    queue: Any,
    lifeline: Any,
    token: str,
    options: dict[str, Any],
) -> None:
    """Entry point of a session process (runs until ended, or until the parent is gone).

    Args:
        spec: The conversation.
        queue: Where ``(name, args)`` event tuples go.
        lifeline: The child's end of a pipe whose other end only the parent holds.
        token: Required in the ``x-presence-control`` header of control requests.
        options: ``ice_host_addresses``, ``ice_servers``, ``verbose``, ``environ`` (the
            parent's environment, replacing the forkserver's).
    """
    if options.get("environ") is not None:
        os.environ.clear()
        os.environ.update(options["environ"])
    from presence.framework.logs import setup_logging

    # Ctrl-C reaches the whole process group: the service ends its sessions itself, in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The preloaded modules live as long as the process: keep them out of full collections, whose
    # pauses (hundreds of ms) would otherwise show as frozen video and audio gaps.
    gc.freeze()

    setup_logging(int(options.get("verbose", 0)))
    try:
        asyncio.run(_serve(spec, queue, lifeline, token, options))
    except Exception as exc:  # the parent turns an exit without "ready" into a launch failure
        logger.exception(f"session process {spec.conversation_id} failed: {exc!r}")
        queue.put(("launch_failed", ("process", f"the session process failed: {exc}")))
    finally:
        queue.close()
        queue.join_thread()


async def _serve(
    spec: ConversationSpec, queue: Any, lifeline: Any, token: str, options: dict[str, Any]
) -> None:
    import uvicorn

    from presence.service.launcher import LaunchError, WebRTCLauncher
    from presence.transports.webrtc import WebRTCServer

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    threading.Thread(
        target=_watch_lifeline,
        args=(lifeline, lambda: loop.call_soon_threadsafe(done.set)),
        daemon=True,
    ).start()
    launcher = WebRTCLauncher(
        ice_host_addresses=options.get("ice_host_addresses"),
        ice_servers=options.get("ice_servers"),
    )
    try:
        handle = await launcher.start(spec, QueueEvents(queue))
    except LaunchError as exc:
        queue.put(("launch_failed", (exc.stage, str(exc))))
        return
    prepared = getattr(handle, "prepared", None)
    if prepared is not None:  # the page's session: stages load in a thread while the user comes

        def report_prepared(future: asyncio.Future) -> None:
            if not future.cancelled() and future.exception() is None:
                queue.put(("prepared", ()))

        prepared.add_done_callback(report_prepared)
    ending: list[asyncio.Task] = []

    async def end(reason: str) -> None:
        if not ending:
            ending.append(asyncio.ensure_future(launcher.end(handle, reason)))
        await asyncio.shield(ending[0])
        done.set()

    app = control_app(launcher, spec.conversation_id, token, end)
    server_app = getattr(getattr(handle, "server", None), "app", None)
    if server_app is not None:
        app.mount("/", server_app)
    sock = WebRTCServer.bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    )
    server.install_signal_handlers = lambda: None  # the parent decides when this process ends
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    queue.put(("ready", (port, getattr(handle, "conversation_url", None))))
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait({serving, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if not ending:  # the parent is gone (or the server died): end the session ourselves
        with contextlib.suppress(Exception):
            await asyncio.wait_for(end("service_restart"), 10)
    server.should_exit = True
    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
        await asyncio.wait_for(serving, 5)
    waiter.cancel()
    sock.close()


FIELD_HEADER = "x-presence-field"
"""On a refused interaction: the field to blame (the parent's 422 names it)."""


def control_app(launcher: Any, conversation_id: str, token: str, end) -> Any:
    """The control routes the parent calls (``x-presence-control: <token>`` required).

    Args:
        launcher: The in-process launcher running the conversation (``interact``).
        conversation_id: The conversation.
        token: The per-process secret.
        end: ``async (reason) -> None`` that ends the session and lets the process exit.
    """
    from fastapi import FastAPI, Header, HTTPException

    from presence.processors.interactions.engines.protocol import (
        InteractionError,
        NotRunningError,
    )

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    def check(value: str | None) -> None:
        if value is None or not hmac.compare_digest(value, token):
            raise HTTPException(403, detail="bad control token")

    @app.post("/_control/interact")
    async def interact(
        message: dict[str, Any], control: str | None = Header(None, alias=CONTROL_HEADER)
    ) -> dict[str, str]:
        check(control)
        try:
            return {"event_type": await launcher.interact(conversation_id, message)}
        except NotRunningError as exc:
            raise HTTPException(409, detail=str(exc)) from None
        except InteractionError as exc:
            raise HTTPException(
                422, detail=str(exc), headers={FIELD_HEADER: exc.field or "properties"}
            ) from None

    @app.post("/_control/end")
    async def end_route(
        body: dict[str, Any], control: str | None = Header(None, alias=CONTROL_HEADER)
    ) -> dict[str, bool]:
        check(control)
        await end(str(body.get("reason", "")))
        return {"ended": True}

    return app
