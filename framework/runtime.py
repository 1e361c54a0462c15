"""Running a built pipeline: per browser connection, over Daily/WebSocket/local, or over files.

The CLI and the conversations service both start conversations through these functions, so a
pipeline behaves the same wherever it is started from.

The browser page's server keeps the next session's stages built and warmed up (``SpareStages``):
loading models takes seconds, and done on the event loop when the offer arrives it would stall
the very ICE/DTLS handshake the browser is waiting on. With a spare ready, a connection only wires
the stages around its transport, and the first persona frame follows the handshake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from loguru import logger
from pipecat.observers.base_observer import BaseObserver
from pipecat.transports.base_transport import BaseTransport
from pipecat.workers.runner import WorkerRunner

from presence.framework.builder import PreparedStages, Session, build_session, prepare_stages
from presence.framework.config import LoadedPipeline


async def run_worker(session: Session) -> None:
    """Run one session's worker until its pipeline ends or is cancelled."""
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(session.worker)
    await runner.run()


def greet_on_connect(session: Session, transport: BaseTransport) -> None:
    """Have the persona greet once the first participant connects to ``transport``."""
    greeted = False

    async def on_connected(_transport, _client) -> None:
        nonlocal greeted
        if not greeted:
            greeted = True
            await session.greet()

    for event in ("on_client_connected", "on_first_participant_joined"):
        try:
            transport.add_event_handler(event, on_connected)
        except Exception:  # the transport does not emit this event
            continue


def hang_up_on_disconnect(session: Session, transport: BaseTransport) -> None:
    """Cancel the session's worker when the participant leaves ``transport``."""

    async def on_disconnected(_transport, *_args) -> None:
        await session.worker.cancel(reason="participant left")

    for event in ("on_client_disconnected", "on_participant_left"):
        try:
            transport.add_event_handler(event, on_disconnected)
        except Exception:
            continue


async def run_connected_session(
    loaded: LoadedPipeline,
    transport: BaseTransport,
    *,
    observers: Sequence[BaseObserver] = (),
    on_built: Callable[[Session], None] | None = None,
    prepared: PreparedStages | None = None,
) -> Session:
    """Build a session over a live transport, greet on connect, and run it to its end.

    Args:
        loaded: The validated pipeline.
        transport: A live transport (browser WebRTC, Daily, WebSocket, local audio).
        observers: Extra observers for the worker.
        on_built: Called with the session before it runs (e.g. to keep a handle to it).
        prepared: Stages built ahead by ``prepare_stages``; built here (blocking) when None.

    Returns:
        The finished session.
    """
    session = build_session(loaded, transport, observers=observers, prepared=prepared)
    greet_on_connect(session, transport)
    hang_up_on_disconnect(session, transport)
    if on_built:
        on_built(session)
    await run_worker(session)
    return session


class SpareStages:
    """One session's stages, built and warmed up in a worker thread before they are needed.

    ``take()`` hands the spare over (waiting for it, without blocking the event loop, if it is
    still being built). The caller starts the next one with ``start()`` once the call that took
    it is running, so that a model load does not compete with that call's start.

    Args:
        loaded: The pipeline whose stages to prepare.
    """

    def __init__(self, loaded: LoadedPipeline):
        self._loaded = loaded
        self._next: asyncio.Future | None = None
        self._closed = False

    def start(self) -> None:
        """Start building a spare now, unless one is built or being built."""
        if self._next is None and not self._closed:
            self._next = asyncio.ensure_future(asyncio.to_thread(prepare_stages, self._loaded))

    async def ready(self) -> None:
        """Wait until a spare is built (starting one if needed).

        Raises:
            PresenceError: A stage failed to build (the next ``start()`` tries again).
        """
        self.start()
        assert self._next is not None
        try:
            await asyncio.shield(self._next)
        except BaseException:
            if self._next is not None and self._next.done():
                self._next = None
            raise

    async def take(self) -> PreparedStages:
        """The spare stages (built now if none was started).

        Raises:
            PresenceError: A stage failed to build.
        """
        self.start()
        spare, self._next = self._next, None
        assert spare is not None
        return await asyncio.shield(spare)

    def close(self) -> None:
        """Build no more spares (one being built finishes in its thread and is dropped)."""
        self._closed = True
        if self._next is not None:
            self._next.cancel()
            self._next = None


async def serve_browser(
    loaded: LoadedPipeline,
    *,
    host: str | None = None,
    port: int | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the browser page for ``loaded`` and run one session per connection until cancelled.

    Args:
        loaded: A pipeline whose transport kind is ``webrtc``.
        host: Interface to listen on (default: the file's, else 127.0.0.1).
        port: TCP port (default: the file's, else 7860; 0 picks a free one).
        on_ready: Called with the page URL once it accepts connections, which is once the first
            session's stages are built and warm (a connection then waits only for the handshake).

    Raises:
        PresenceError: A stage cannot be built (before anything is served).
    """
    from presence.transports.factory import webrtc_server

    spec = loaded.transport
    spare = SpareStages(loaded)

    async def on_session(transport, session_id: str) -> None:
        logger.info(f"session {session_id} started")

        def on_built(session: Session) -> None:
            @session.worker.event_handler("on_pipeline_started")
            async def build_next(*_args) -> None:
                spare.start()  # this call is live: the next one's stages can load now

        try:
            prepared = await spare.take()
            await run_connected_session(loaded, transport, prepared=prepared, on_built=on_built)
        finally:
            spare.start()  # in case this call never got as far as starting
            logger.info(f"session {session_id} ended")

    server = webrtc_server(spec, on_session, title=loaded.persona.name)
    sock = server.bind(  # a taken port fails at once, before the models load
        host if host is not None else spec.host, port if port is not None else spec.port
    )
    try:
        await spare.ready()  # a stage that cannot build fails here, before the page is served
        await server.serve(on_ready=on_ready, sock=sock)
    finally:
        sock.close()
        spare.close()


async def run_single_transport(loaded: LoadedPipeline) -> None:
    """Run one session over a Daily, WebSocket or local-audio transport built from the file."""
    from presence.transports.factory import build_transport

    await run_connected_session(loaded, build_transport(loaded.transport))
