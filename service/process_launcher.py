"""``ProcessLauncher``: each conversation's pipeline runs in a process of its own.

A crash in one session (even a segfault in a native library), a stage that blocks its event loop,
or a heavy render cannot stall the service or another conversation; each session has its own
interpreter (GIL), its own process-wide native state (espeak-ng, aiortc's ICE settings) and its
own memory, returned to the system when the call ends.

How it works::

    service process                                  session process (one per conversation)
    ─────────────────                                ───────────────────────────────────────
    start(spec, events) ── forkserver ──────────────▶ child_main: WebRTCLauncher.start(spec)
                        ◀── ("ready", port) ──────── uvicorn on 127.0.0.1:<port>
    /c/{id}/api/... ───── HTTP proxy (httpx) ──────▶ SmallWebRTC offer/ICE (media flows peer to
                                                     peer from the child, not through the parent)
    interact(id, msg) ─── POST /_control/interact ──▶ InteractionsProcessor
    end(handle) ───────── POST /_control/end ───────▶ final transcript, recording; exit
    events.* ◀─────────── multiprocessing queue ───── joined/left/transcript/perception/...
    (process exits on its own) ──▶ events.failed("session", "exit code ...") ─▶ reason exception

Processes come from a ``forkserver`` that has imported pipecat and presence once
(``session_process.PRELOAD``; started by ``warm()`` when the service starts), so a session
process is ready in well under a second instead of importing everything again. Where
``forkserver`` is unavailable (Windows), ``spawn`` is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue as queue_module
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from loguru import logger

from presence.service.session_process import (
    CONTROL_HEADER,
    FIELD_HEADER,
    PRELOAD,
    child_main,
    noop,
)
from presence.service.session_run import LaunchError
from presence.service.session_spec import ConversationSpec, SessionEvents

START_TIMEOUT_SECS = 60.0
END_TIMEOUT_SECS = 8.0
EVENTS = (
    "joined", "left", "transcript", "perception", "recording", "failed", "guardrail", "objective",
)  # fmt: skip


@dataclass
class ProcessSession:
    """A live session process (the launcher's handle)."""

    spec: ConversationSpec
    process: Any
    events: SessionEvents
    token: str
    ready: asyncio.Future
    exited: asyncio.Future
    port: int | None = None
    conversation_url: str | None = None
    ending: bool = False
    prepared: bool = False
    client: httpx.AsyncClient | None = None
    proxy: Any = None
    lifeline: Any = None
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """The session process's id."""
        return self.process.pid


class ProcessLauncher:
    """Runs each conversation in its own process (the browser page; see the module docstring).

    Args:
        ice_host_addresses: Host addresses aiortc offers in the session processes.
        ice_servers: STUN/TURN servers for both peers.
        start_method: ``forkserver`` (default where available) or ``spawn``.
        start_timeout: Seconds a session process may take to get ready.
        verbose: Log verbosity of the session processes (as ``presence -v``).
    """

    def __init__(
        self,
        *,
        ice_host_addresses: list[str] | None = None,
        ice_servers: list | None = None,
        start_method: str | None = None,
        start_timeout: float = START_TIMEOUT_SECS,
        verbose: int = 0,
    ):
        methods = multiprocessing.get_all_start_methods()
        method = start_method or ("forkserver" if "forkserver" in methods else "spawn")
        self._ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            self._ctx.set_forkserver_preload(PRELOAD)
        self._options = {
            "ice_host_addresses": ice_host_addresses,
            "ice_servers": ice_servers,
            "verbose": verbose,
        }
        self._start_timeout = start_timeout
        self._sessions: dict[str, ProcessSession] = {}

    async def warm(self) -> None:
        """Start the forkserver now and wait until it has imported pipecat and presence (seconds).

        Without it the first conversation pays that import. Harmless to call again.
        """
        if self._ctx.get_start_method() != "forkserver":
            return

        def start_one() -> None:
            process = self._ctx.Process(target=noop, name="presence-warm", daemon=True)
            process.start()
            process.join(self._start_timeout)

        await asyncio.to_thread(start_one)

    # ---- SessionLauncher -----------------------------------------------------------------------

    async def start(self, spec: ConversationSpec, events: SessionEvents) -> ProcessSession:
        """Start the conversation's process and wait until its page can be joined.

        Raises:
            LaunchError: The pipeline is invalid (its stage), or the process did not get ready.
        """
        loop = asyncio.get_running_loop()
        events_queue = self._ctx.Queue()
        parent_end, child_end = self._ctx.Pipe()
        token = secrets.token_urlsafe(24)
        # A forkserver child inherits the forkserver's environment: hand it the service's own now.
        options = {**self._options, "environ": dict(os.environ)}
        process = self._ctx.Process(
            target=child_main,
            args=(spec, events_queue, child_end, token, options),
            name=f"presence-session-{spec.conversation_id}",
            daemon=True,
        )
        await asyncio.to_thread(process.start)
        child_end.close()
        handle = ProcessSession(
            spec, process, events, token, loop.create_future(), loop.create_future()
        )
        handle.lifeline = parent_end  # closing it (or dying) tells the child to stop
        handle.reader = threading.Thread(
            target=self._read, args=(handle, events_queue, loop), daemon=True
        )
        handle.reader.start()
        try:
            port, url = await asyncio.wait_for(asyncio.shield(handle.ready), self._start_timeout)
        except TimeoutError:
            await self._stop(handle)
            raise LaunchError(
                f"the session process was not ready after {self._start_timeout:.0f} s",
                stage="launch",
            ) from None
        except LaunchError:
            await self._stop(handle)
            raise
        handle.port, handle.conversation_url = port, url
        handle.client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        handle.proxy = ProxyApp(handle.client)
        self._sessions[spec.conversation_id] = handle
        logger.info(f"conversation {spec.conversation_id}: session process {process.pid} ready")
        return handle

    async def end(self, handle: ProcessSession, reason: str) -> None:
        """Ask the process to end the session, wait for its last events, and reap it."""
        self._sessions.pop(handle.spec.conversation_id, None)
        handle.ending = True
        if handle.client is not None and handle.process.is_alive():
            with contextlib.suppress(httpx.HTTPError):
                await handle.client.post(
                    "/_control/end",
                    json={"reason": reason},
                    headers={CONTROL_HEADER: handle.token},
                    timeout=END_TIMEOUT_SECS,
                )
        await self._stop(handle)

    def join_app(self, conversation_id: str) -> Any:
        """The proxy to the session process's page signalling, or ``None`` when not live.

        A conversation in a room elsewhere (Daily: ``conversation_url`` is the room) has no page.
        """
        handle = self._sessions.get(conversation_id)
        return handle.proxy if handle is not None and not handle.conversation_url else None

    async def interact(self, conversation_id: str, message: Any) -> str:
        """Run an interaction in the conversation's process.

        Raises:
            NotRunningError: The conversation is not live or nobody joined yet.
            InteractionError: The message is invalid.
        """
        from presence.processors.interactions.engines.protocol import (
            InteractionError,
            NotRunningError,
        )

        handle = self._sessions.get(conversation_id)
        if handle is None or handle.client is None:
            raise NotRunningError("the conversation's pipeline is not running")
        try:
            response = await handle.client.post(
                "/_control/interact", json=message, headers={CONTROL_HEADER: handle.token}
            )
        except httpx.HTTPError as exc:
            raise NotRunningError(f"the conversation's session process is gone ({exc})") from None
        detail = _detail(response)
        if response.status_code == 409:
            raise NotRunningError(detail)
        if response.status_code == 422:
            raise InteractionError(detail, field=response.headers.get(FIELD_HEADER))
        response.raise_for_status()
        return response.json()["event_type"]

    def is_prepared(self, conversation_id: str) -> bool:
        """Whether the conversation's process has prepared its session (a join only wires it)."""
        handle = self._sessions.get(conversation_id)
        return handle is not None and handle.prepared

    def pid(self, conversation_id: str) -> int | None:
        """The process id of a live conversation's session (``None`` when not live)."""
        handle = self._sessions.get(conversation_id)
        return handle.pid if handle is not None else None

    # ---- internals -----------------------------------------------------------------------------

    async def _stop(self, handle: ProcessSession) -> None:
        """Wait for the process to exit (terminate, then kill, if it lingers) and its last events."""
        process = handle.process
        await asyncio.to_thread(process.join, END_TIMEOUT_SECS)
        if process.is_alive():
            logger.warning(f"session process {process.pid} did not exit; terminating it")
            process.terminate()
            await asyncio.to_thread(process.join, 2.0)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 2.0)
        handle.lifeline.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(handle.exited), 5.0)
        if handle.client is not None:
            await handle.client.aclose()

    def _read(self, handle: ProcessSession, events_queue: Any, loop) -> None:
        """Reader thread: replay the child's tuples on the loop, in order, then its exit."""
        process = handle.process
        while True:
            try:
                name, args = events_queue.get(timeout=0.2)
            except queue_module.Empty:
                if process.exitcode is not None:
                    break
                continue
            except (EOFError, OSError):
                break
            loop.call_soon_threadsafe(self._dispatch, handle, name, args)
        loop.call_soon_threadsafe(self._dispatch, handle, "exit", (process.exitcode,))

    def _dispatch(self, handle: ProcessSession, name: str, args: tuple) -> None:
        if name == "ready":
            if not handle.ready.done():
                handle.ready.set_result(args)
        elif name == "prepared":
            handle.prepared = True
        elif name == "launch_failed":
            if not handle.ready.done():
                handle.ready.set_exception(LaunchError(args[1], stage=args[0] or "launch"))
            elif not handle.ending:  # the session process failed after it was ready
                handle.ending = True
                handle.events.failed(args[0] or "session", args[1])
        elif name == "exit":
            code = args[0]
            if not handle.ready.done():
                handle.ready.set_exception(
                    LaunchError(f"the session process exited (code {code})", stage="launch")
                )
            elif not handle.ending:
                logger.warning(f"session process {handle.pid} exited unexpectedly (code {code})")
                handle.events.failed("session", f"the session process exited (code {code})")
            if not handle.exited.done():
                handle.exited.set_result(code)
        elif name in EVENTS:
            try:
                getattr(handle.events, name)(*args)
            except Exception as exc:
                logger.warning(f"session event {name} could not be handled: {exc!r}")


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text


class ProxyApp:
    """ASGI app forwarding ``/api/...`` HTTP requests to a session process (signalling only)."""

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host"}

    def __init__(self, client: httpx.AsyncClient):
        self._client = client

    async def __call__(self, scope, receive, send) -> None:
        """Forward one HTTP request and its whole body; answer 502 when the process is gone."""
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        path = scope["path"] + (
            f"?{scope['query_string'].decode()}" if scope["query_string"] else ""
        )
        headers = [
            (k.decode(), v.decode())
            for k, v in scope["headers"]
            if k.decode().lower() not in self.HOP_BY_HOP and k.decode().lower() != CONTROL_HEADER
        ]
        try:
            response = await self._client.request(
                scope["method"], path, content=body, headers=headers
            )
            status, content = response.status_code, response.content
            out = [
                (k.encode(), v.encode())
                for k, v in response.headers.items()
                if k.lower() not in self.HOP_BY_HOP | {"content-length", "content-encoding"}
            ]
        except httpx.HTTPError as exc:
            status, content, out = 502, f"session unavailable: {exc}".encode(), []
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})
