"""Base of the WebSocket provider fakes: serve ``_handle`` on a free 127.0.0.1 port."""

from __future__ import annotations

from websockets.asyncio.server import ServerConnection, serve


class LoopbackWebSocketFake:
    """Serves ``self._handle`` on ``ws://127.0.0.1:PORT`` for the duration of ``async with``."""

    _server = None
    port = 0

    async def _handle(self, ws: ServerConnection) -> None:
        raise NotImplementedError

    async def __aenter__(self):
        self._server = await serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()
