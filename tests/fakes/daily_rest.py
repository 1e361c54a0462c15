"""A local Daily REST API (``/v1``): rooms and meeting tokens, with Daily's request and reply shapes.

=========================  ===================================================================
route                      answer
=========================  ===================================================================
``POST /rooms``            ``{id, name, api_created, privacy, url, created_at, config}``; 400
                           ``invalid-request-error`` when the name is taken
``GET /rooms/{name}``      the room object; 404 ``not-found``
``DELETE /rooms/{name}``   ``{deleted: true, name}``; 404 ``not-found``
``POST /meeting-tokens``   ``{token}``
=========================  ===================================================================

Every route needs ``Authorization: Bearer <api_key>`` (else 401 ``authentication-error``, as
Daily answers). ``fail["POST /rooms"] = 500`` makes that route answer the status with Daily's
error body. ``requests`` records ``(method, path, headers, json)``; point clients at ``base_url``.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

JSON_BODY = web.RequestKey("json_body", object)

ERRORS = {
    400: "invalid-request-error",
    401: "authentication-error",
    403: "authorization-error",
    404: "not-found",
    429: "rate-limit-error",
    500: "server-error",
}


class FakeDailyREST:
    """Daily's REST API on 127.0.0.1 for the duration of ``async with``."""

    def __init__(self, api_key: str = "daily-test-key", domain: str = "presence-test"):
        self.api_key = api_key
        self.domain = domain
        self.rooms: dict[str, dict[str, Any]] = {}
        self.tokens: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.fail: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def calls(self, method: str, path_prefix: str = "") -> list[tuple[str, dict[str, str], Any]]:
        """``(path, headers, json)`` of the requests with ``method`` under ``/v1{path_prefix}``."""
        return [
            (p, h, j)
            for m, p, h, j in self.requests
            if m == method and p.startswith("/v1" + path_prefix)
        ]

    async def __aenter__(self):
        app = web.Application(middlewares=[self._record])
        app.router.add_post("/v1/rooms", self._create_room)
        app.router.add_get("/v1/rooms/{name}", self._get_room)
        app.router.add_delete("/v1/rooms/{name}", self._delete_room)
        app.router.add_post("/v1/meeting-tokens", self._create_token)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        await self._runner.cleanup()

    @staticmethod
    def error(status: int, info: str) -> web.Response:
        return web.json_response(
            {"error": ERRORS.get(status, "server-error"), "info": info}, status=status
        )

    @web.middleware
    async def _record(self, request: web.Request, handler):
        body = await request.json() if request.can_read_body else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append((request.method, request.path, headers, body))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return self.error(401, "authorization header missing or invalid")
        route = f"{request.method} /{request.path.removeprefix('/v1/').split('/')[0]}"
        if route in self.fail:
            return self.error(self.fail[route], f"fake failure of {route}")
        request[JSON_BODY] = body
        return await handler(request)

    async def _create_room(self, request: web.Request) -> web.Response:
        body = request[JSON_BODY] or {}
        name = body.get("name") or secrets.token_urlsafe(15)
        if name in self.rooms:
            return self.error(400, f"a room named {name} already exists")
        room = {
            "id": str(uuid.uuid4()),
            "name": name,
            "api_created": True,
            "privacy": body.get("privacy", "public"),
            "url": f"https://{self.domain}.daily.co/{name}",
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "config": dict(body.get("properties") or {}),
        }
        self.rooms[name] = room
        return web.json_response(room)

    async def _get_room(self, request: web.Request) -> web.Response:
        room = self.rooms.get(request.match_info["name"])
        if room is None:
            return self.error(404, f"room {request.match_info['name']} was not found")
        return web.json_response(room)

    async def _delete_room(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if self.rooms.pop(name, None) is None:
            return self.error(404, f"room {name} was not found")
        return web.json_response({"deleted": True, "name": name})

    async def _create_token(self, request: web.Request) -> web.Response:
        properties = (request[JSON_BODY] or {}).get("properties") or {}
        token = "eyJ" + secrets.token_urlsafe(32)
        self.tokens.append({"token": token, **properties})
        return web.json_response({"token": token})
