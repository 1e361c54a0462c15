"""What a fake LLM server answers, request by request, and the aiohttp harness both fakes share.

A test queues ``Reply`` items; each HTTP request takes the next one (an empty queue answers
``Reply(text=["OK."])``). A reply is streamed text chunks and/or tool calls, or a fault:

=============  =================================================================
``fault``      what the client sees
=============  =================================================================
``"500"``      HTTP 500 with the provider's JSON error body
``"529"``      HTTP 529 overloaded (Anthropic) / 503 (OpenAI)
``"429"``      HTTP 429 with ``retry-after: <retry_after>``
``"stall"``    headers and the first event, then nothing for ``stall_s``
``"malformed"`` an SSE event whose data is not JSON
``"drop"``     the first text chunk, then the TCP connection is cut
=============  =================================================================
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    """One scripted answer."""

    text: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fault: str | None = None
    ttft_s: float = 0.0
    chunk_delay_s: float = 0.0
    retry_after: float = 0.05
    stall_s: float = 30.0


class FakeLLMServer:
    """Base: an aiohttp app on 127.0.0.1 that records requests and plays the script."""

    route = "/"

    def __init__(self, *replies: Reply):
        self.script: deque[Reply] = deque(replies)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.peers: list[
            tuple | None
        ] = []  # the client's address per request (same: one connection)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def next_reply(self) -> Reply:
        return self.script.popleft() if self.script else Reply(text=["OK."])

    async def __aenter__(self):
        app = web.Application()
        app.router.add_post(self.route, self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        self.peers.append(
            request.transport.get_extra_info("peername") if request.transport else None
        )
        reply = self.next_reply()
        if reply.ttft_s:
            await asyncio.sleep(reply.ttft_s)
        if reply.fault in ("500", "529", "429"):
            return self.error_response(reply)
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        try:
            await response.prepare(request)  # the client may have given up during ttft_s
            await self.stream(request, response, body, reply)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    @staticmethod
    async def send(response: web.StreamResponse, data: str, event: str | None = None):
        head = f"event: {event}\n" if event else ""
        await response.write(f"{head}data: {data}\n\n".encode())

    @staticmethod
    def cut(request: web.Request) -> None:
        request.transport.abort()

    def error_response(self, reply: Reply) -> web.Response:  # pragma: no cover - overridden
        raise NotImplementedError

    async def stream(self, request, response, body, reply: Reply) -> None:  # pragma: no cover
        raise NotImplementedError
