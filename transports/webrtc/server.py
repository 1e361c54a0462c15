"""The browser page and its WebRTC signalling, over pipecat's SmallWebRTC transport.

One FastAPI app serves the static page (``transports/web/``: plain JavaScript, no build step, no
CDN, works offline) at ``/`` and pipecat's SmallWebRTC offer/answer exchange at ``/api/offer``.
Signalling is pipecat's own ``SmallWebRTCRequestHandler``; this module adds only the session
lifecycle::

    browser ──POST /api/offer──▶ SmallWebRTCRequestHandler ──new connection──▶ SmallWebRTCTransport
                                                                                    │
                            on_session(transport, session_id)  ◀── run as a task ───┘
                            (builds a pipeline over transport.input()/transport.output())

The session task is cancelled a few seconds after the peer connection closes if it has not ended by
itself, and the peer connection is closed when the session task ends, so neither outlives the
other. Captions and latency reach the page as pipecat RTVI messages over the WebRTC data channel
(the ``PipelineWorker`` adds RTVI by default); the latency is an RTVI ``server-message`` of type
``presence-turn-latency``, counted from the end of the user's voice by the ``TurnLatencyObserver``
the builder attaches (``presence.framework.observers.latency``); a pipeline built without the
builder calls ``attach_turn_latency(worker)`` for it.

Usage (one pipeline per browser; WebRTC's RTVI must stay enabled for captions)::

    async def on_session(transport, session_id):
        worker = PipelineWorker(Pipeline([transport.input(), ..., transport.output()]))
        runner = WorkerRunner(handle_sigint=False)  # the server owns Ctrl-C
        await runner.add_workers(worker)
        await runner.run()

    await serve(on_session, host="127.0.0.1", port=7860, on_ready=lambda url: print(url))

ICE: no STUN/TURN servers by default (offline, loopback/LAN only). ``ice_servers`` is passed both to
aiortc and to the page (``GET /api/config``). On a machine whose only interface is loopback, pass
``ice_host_addresses=["127.0.0.1"]`` (aioice never offers loopback on its own) and start the browser
with ``--allow-loopback-in-peer-connection``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from loguru import logger
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from presence.framework.errors import ConfigError
from presence.transports.webrtc.keyframes import CameraKeyframes
from presence.transports.webrtc.output import WebRTCTransport
from presence.transports.webrtc.params import (
    IceServerLike,
    limit_ice_host_addresses,
    to_ice_servers,
    webrtc_params,
)
from presence.transports.webrtc.params import ice_host_addresses as current_ice_host_addresses

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""The folder of the static browser page (index.html, app.js, style.css)."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860

SessionHandler = Callable[[SmallWebRTCTransport, str], Awaitable[None]]
"""``on_session(transport, session_id)``: runs one conversation; returns when it is over."""

# Seconds a session task may take to end by itself after its peer connection closed.
SESSION_END_GRACE_SECS = 3.0
# A page silent this long after pipecat's own 3 s ping window is taken for gone.
LIVENESS_GRACE_SECS = 2.0
LIVENESS_POLL_SECS = 0.5


class WebRTCServer:
    """Serves the browser page and runs one ``on_session`` task per browser connection.

    Args:
        on_session: ``async (transport, session_id) -> None``; builds and runs the pipeline for one
            conversation. It is run as an asyncio task, cancelled shortly after the browser leaves.
        params: Factory of ``TransportParams`` per session (default: ``webrtc_params()``).
        ice_servers: STUN/TURN servers for both peers; empty keeps everything on loopback/LAN.
        ice_host_addresses: Host addresses aiortc offers (see ``limit_ice_host_addresses``).
        title: Shown as the page title (e.g. the persona's name).
        page_dir: Folder holding the static page.
        max_sessions: Simultaneous browser sessions allowed; further offers get HTTP 503.
    """

    def __init__(
        self,
        on_session: SessionHandler,
        *,
        params: Callable[[], TransportParams] = webrtc_params,
        ice_servers: Sequence[IceServerLike] | None = None,
        ice_host_addresses: Sequence[str] | None = None,
        title: str = "presence",
        page_dir: Path = WEB_DIR,
        max_sessions: int = 4,
    ):
        self._on_session = on_session
        self._params = params
        self._ice_servers = to_ice_servers(ice_servers)
        self._ice_host_addresses = ice_host_addresses
        self._title = title
        self._page_dir = page_dir
        self._max_sessions = max_sessions
        self._handler = SmallWebRTCRequestHandler(ice_servers=self._ice_servers or None)
        self.sessions: dict[str, asyncio.Task] = {}
        self._reapers: set[asyncio.Task] = set()
        self.app = self._create_app()

    # ---- FastAPI app -------------------------------------------------------------------------

    def _create_app(self) -> FastAPI:
        @asynccontextmanager
        async def lifespan(_app: FastAPI):
            previous = current_ice_host_addresses()
            if self._ice_host_addresses is not None:
                previous = limit_ice_host_addresses(self._ice_host_addresses)
            try:
                yield
            finally:
                await self.close()
                if self._ice_host_addresses is not None:
                    limit_ice_host_addresses(previous)

        app = FastAPI(title=self._title, lifespan=lifespan, docs_url=None, redoc_url=None)

        @app.get("/", include_in_schema=False)
        async def index():
            return FileResponse(
                self._page_dir / "index.html", headers={"Cache-Control": "no-store"}
            )

        @app.get("/api/config")
        async def config():
            servers = [
                {
                    k: v
                    for k, v in {
                        "urls": s.urls,
                        "username": s.username,
                        "credential": s.credential,
                    }.items()
                    if v
                }
                for s in self._ice_servers
            ]
            return {"title": self._title, "iceServers": servers}

        @app.post("/api/offer")
        async def offer(request: dict[str, Any]):
            try:
                parsed = SmallWebRTCRequest.from_dict(request)
            except TypeError as exc:
                raise HTTPException(status_code=400, detail=f"not an offer: {exc}") from None
            return await self._offer(parsed)

        @app.patch("/api/offer")
        async def candidates(request: SmallWebRTCPatchRequest):
            await self._handler.handle_patch_request(request)
            return {"status": "success"}

        app.mount("/static", StaticFiles(directory=self._page_dir), name="static")
        return app

    async def _offer(self, request: SmallWebRTCRequest) -> dict[str, str] | None:
        sdp = request.sdp.replace("\r", "") if isinstance(request.sdp, str) else ""
        if request.type != "offer" or "\nm=audio" not in sdp:
            raise HTTPException(
                status_code=400, detail="expected an SDP offer whose first media is audio"
            )
        if not request.pc_id and len(self.sessions) >= self._max_sessions:
            raise HTTPException(status_code=503, detail="too many sessions; try again later")

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            self._start_session(connection)

        try:
            return await self._handler.handle_web_request(request, on_connection)
        except HTTPException:
            raise
        except Exception as exc:  # a malformed SDP must answer 400, not crash the server
            raise HTTPException(
                status_code=400, detail=f"cannot answer this offer: {exc}"
            ) from None

    # ---- sessions ----------------------------------------------------------------------------

    def _start_session(self, connection: SmallWebRTCConnection) -> None:
        session_id = uuid.uuid4().hex[:12]
        transport = WebRTCTransport(webrtc_connection=connection, params=self._params())
        task = asyncio.create_task(self._run_session(transport, connection, session_id))
        self.sessions[session_id] = task
        logger.info(f"browser session {session_id} started")

        @connection.event_handler("closed")
        async def on_closed(_connection: SmallWebRTCConnection) -> None:
            reaper = asyncio.create_task(self._end_after_grace(session_id, task))
            self._reapers.add(reaper)
            reaper.add_done_callback(self._reapers.discard)

    async def _run_session(
        self, transport: SmallWebRTCTransport, connection: SmallWebRTCConnection, session_id: str
    ) -> None:
        watchdog = asyncio.create_task(self._watch_liveness(connection, session_id))
        keyframes = CameraKeyframes(connection)
        keyframes.start()
        try:
            await self._on_session(transport, session_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a session's failure must not take the server down
            logger.exception(f"browser session {session_id} failed: {exc}")
        finally:
            watchdog.cancel()
            await keyframes.stop()
            self.sessions.pop(session_id, None)
            with contextlib.suppress(Exception):
                if connection.pc.connectionState != "closed":
                    await connection.disconnect()
            logger.info(f"browser session {session_id} ended")

    async def _watch_liveness(self, connection: SmallWebRTCConnection, session_id: str) -> None:
        """Close a connection whose page went away without hanging up (tab closed, crash).

        The page pings over the data channel every second; pipecat's ``is_connected()`` turns
        false 3 s after the last ping. aiortc itself notices a vanished peer only after ~30 s.
        """
        was_connected = False
        silent_since: float | None = None
        loop = asyncio.get_running_loop()
        while connection.pc.connectionState != "closed":
            await asyncio.sleep(LIVENESS_POLL_SECS)
            if connection.is_connected():
                was_connected, silent_since = True, None
            elif was_connected:
                silent_since = silent_since or loop.time()
                if loop.time() - silent_since >= LIVENESS_GRACE_SECS:
                    logger.info(f"browser session {session_id}: page stopped answering, closing")
                    await connection.disconnect()
                    return

    async def _end_after_grace(self, session_id: str, task: asyncio.Task) -> None:
        if task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=SESSION_END_GRACE_SECS)
        if not done:
            logger.debug(f"browser session {session_id}: peer left, cancelling its pipeline")
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def close(self) -> None:
        """Cancel every session and close every peer connection."""
        tasks = list(self.sessions.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._handler.close()

    # ---- serving -----------------------------------------------------------------------------

    @staticmethod
    def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
        """A listening socket on ``host:port`` (port 0 picks a free port).

        Raises:
            ConfigError: The address is in use or cannot be bound.
        """
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pick another with --port "
                "or stop whatever uses it",
                field="transport.port",
            ) from None
        sock.listen(64)
        sock.setblocking(False)
        return sock

    async def serve(
        self,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        on_ready: Callable[[str], None] | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        """Serve until cancelled (or until uvicorn gets SIGINT/SIGTERM).

        Args:
            host: Interface to listen on.
            port: TCP port; 0 picks a free one.
            on_ready: Called with the page's URL once the server accepts connections.
            sock: An already bound socket (from ``bind``); ``host``/``port`` are then ignored.

        Raises:
            ConfigError: ``host:port`` cannot be bound.
        """
        import uvicorn

        sock = sock or self.bind(host, port)
        bound_host, bound_port = sock.getsockname()[:2]
        url = f"http://{_url_host(bound_host)}:{bound_port}/"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        server = uvicorn.Server(config)

        async def announce() -> None:
            while not server.started:
                await asyncio.sleep(0.02)
            if on_ready:
                on_ready(url)

        announcer = asyncio.create_task(announce())
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Cancelled from outside: shut down like on Ctrl-C (sessions end, sockets close).
            server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(serving, timeout=10)
            raise
        finally:
            announcer.cancel()
            sock.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def create_app(on_session: SessionHandler, **kwargs: Any) -> FastAPI:
    """The FastAPI app of a ``WebRTCServer`` (for mounting or ASGI servers); kwargs as there."""
    return WebRTCServer(on_session, **kwargs).app


async def serve(
    on_session: SessionHandler,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    on_ready: Callable[[str], None] | None = None,
    **kwargs: Any,
) -> None:
    """Serve the page on ``http://host:port/`` and run ``on_session`` per browser connection.

    Args:
        on_session: ``async (transport, session_id) -> None``; see ``WebRTCServer``.
        host: Interface to listen on (default loopback).
        port: TCP port (default 7860).
        on_ready: Called with the page's URL once the server accepts connections.
        **kwargs: ``params``, ``ice_servers``, ``ice_host_addresses``, ``title``, ... as in
            ``WebRTCServer``.

    Raises:
        ConfigError: ``host:port`` cannot be bound.
    """
    server = WebRTCServer(on_session, **kwargs)
    await server.serve(host, port, on_ready=on_ready)
