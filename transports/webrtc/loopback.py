"""One pipeline served on loopback and joined by a Python WebRTC user, in one process.

``local_call(loaded)`` serves ``loaded`` exactly as ``presence run`` does (the page server, one
session per connection, greeting on connect, hang-up on disconnect) on a free 127.0.0.1 port,
joins it with a ``WebRTCUser`` and waits for the first video frame. The soak benchmark and the
live-call fault tests use it::

    async with local_call(loaded) as call:
        call.user.say(pcm)
        call.session.stages["renderer"].stats
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from presence.framework.errors import PresenceError

CONNECT_TIMEOUT_S = 90.0


class CallError(PresenceError):
    """The loopback call did not start (no session, or no video in time)."""


@dataclass
class LocalCall:
    """A running loopback call.

    Attributes:
        url: The page's URL.
        user: The ``WebRTCUser`` in the call.
        sessions: The sessions the server started (one per connection).
        started: ``time.monotonic()`` of the user's first video frame.
    """

    url: str
    user: Any
    sessions: list = field(default_factory=list)
    started: float = 0.0

    @property
    def session(self):
        """The call's session (``presence.framework.builder.Session``)."""
        return self.sessions[0]

    def messages(self, kind: str, start: int = 0) -> list[dict]:
        """RTVI and signalling messages of type ``kind`` the user received (from ``start``)."""
        received = self.user.received.messages[start:]
        return [m for m in received if isinstance(m, dict) and m.get("type") == kind]

    async def wait_for(self, kind: str, count: int = 1, start: int = 0, timeout: float = 30.0):
        """Wait until ``count`` messages of ``kind`` arrived after ``start`` (else ``TimeoutError``)."""
        deadline = time.monotonic() + timeout
        while len(self.messages(kind, start)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} {kind!r} not received within {timeout} s")
            await asyncio.sleep(0.05)
        return self.messages(kind, start)


@contextlib.asynccontextmanager
async def local_call(
    loaded, *, connect_timeout_s: float = CONNECT_TIMEOUT_S, **user_kwargs: Any
) -> AsyncIterator[LocalCall]:
    """Serve ``loaded`` on 127.0.0.1 and join it with a ``WebRTCUser`` (see module doc).

    Args:
        loaded: A validated pipeline (``presence.framework.config.LoadedPipeline``).
        connect_timeout_s: Wait this long for the first video frame.
        **user_kwargs: Passed to ``WebRTCUser`` (``mic``, ``camera``, ...).

    Raises:
        CallError: No session started or no video arrived in time.
    """
    from presence.framework.runtime import run_connected_session
    from presence.transports.factory import webrtc_server
    from presence.transports.webrtc import WebRTCServer, limit_ice_host_addresses
    from presence.transports.webrtc.client import WebRTCUser

    sessions: list = []

    async def on_session(transport, session_id: str) -> None:
        await run_connected_session(loaded, transport, on_built=sessions.append)

    server = webrtc_server(loaded.transport, on_session, title=loaded.persona.name)
    sock = WebRTCServer.bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    previous = limit_ice_host_addresses(["127.0.0.1"])
    serving = asyncio.create_task(server.serve(sock=sock))
    user = WebRTCUser(url, **user_kwargs)
    call = LocalCall(url, user, sessions)
    try:
        await user.connect()
        try:
            await user.wait_for_video(1, timeout=connect_timeout_s)
        except TimeoutError as exc:
            raise CallError(f"the call showed no video within {connect_timeout_s:.0f} s") from exc
        if not sessions:
            raise CallError("no session started for the call")
        call.started = time.monotonic()
        yield call
    finally:
        await user.close()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await serving
        limit_ice_host_addresses(previous)
