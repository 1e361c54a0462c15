"""Running a built pipeline: per browser connection, over Daily/WebSocket/local, or over files.

The CLI and the conversations service both start conversations through these functions, so a
pipeline behaves the same wherever it is started from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from loguru import logger
from pipecat.observers.base_observer import BaseObserver
from pipecat.transports.base_transport import BaseTransport
from pipecat.workers.runner import WorkerRunner

from presence.framework.builder import Session, build_session
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
) -> Session:
    """Build a session over a live transport, greet on connect, and run it to its end.

    Args:
        loaded: The validated pipeline.
        transport: A live transport (browser WebRTC, Daily, WebSocket, local audio).
        observers: Extra observers for the worker.
        on_built: Called with the session before it runs (e.g. to keep a handle to it).

    Returns:
        The finished session.
    """
    session = build_session(loaded, transport, observers=observers)
    greet_on_connect(session, transport)
    hang_up_on_disconnect(session, transport)
    if on_built:
        on_built(session)
    await run_worker(session)
    return session


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
        on_ready: Called with the page URL once it accepts connections.
    """
    from presence.transports.factory import webrtc_server

    spec = loaded.transport

    async def on_session(transport, session_id: str) -> None:
        logger.info(f"session {session_id} started")
        try:
            await run_connected_session(loaded, transport)
        finally:
            logger.info(f"session {session_id} ended")

    server = webrtc_server(spec, on_session, title=loaded.persona.name)
    await server.serve(
        host if host is not None else spec.host,
        port if port is not None else spec.port,
        on_ready=on_ready,
    )


async def run_single_transport(loaded: LoadedPipeline) -> None:
    """Run one session over a Daily, WebSocket or local-audio transport built from the file."""
    from presence.transports.factory import build_transport

    await run_connected_session(loaded, build_transport(loaded.transport))
