"""How a ``Call`` is sent: over ``httpx.Client`` (sync) or ``httpx.AsyncClient`` (asyncio).

Building the request and parsing the answer are shared (``_Driver``); each driver only runs an
operation's generator, sending each call it yields with its own HTTP client.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from typing import Any

import httpx

from presence.framework.errors import ConfigError, PresenceError
from presence.service.client._core import (
    Call,
    PresenceAPIError,
    ServiceUnreachable,
    adapter,
    query_value,
)
from presence.service.client._endpoints import ENDPOINTS

API_KEY_ENV = "PRESENCE_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"


def _key(api_key: str | None) -> str:
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise ConfigError(
            f"no API key for the presence service: pass api_key or set {API_KEY_ENV} "
            "(one of the service's PRESENCE_API_KEYS)"
        )
    return key


class _Driver:
    """Request building and answer parsing shared by both drivers."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float):
        self.base_url = base_url.rstrip("/")
        self._headers = {"x-api-key": _key(api_key)}
        self._timeout = timeout

    def _request(self, call: Call) -> dict[str, Any]:
        endpoint = ENDPOINTS[call.endpoint]
        params = {k: query_value(v) for k, v in call.query.items() if v is not None}
        assert set(params) <= set(endpoint.query), f"{call.endpoint}: {set(params)} undeclared"
        request: dict[str, Any] = {
            "method": endpoint.method,
            "url": endpoint.path.format(**call.ids),
            "params": params,
            "headers": self._headers,
        }
        if call.json is not None:
            request["json"] = call.json
        if call.file is not None:
            request["files"] = {"file": call.file}
            request["data"] = call.form or {}
        return request

    def _unreachable(self, exc: httpx.TransportError) -> ServiceUnreachable:
        return ServiceUnreachable(f"no presence service answered at {self.base_url}: {exc}")

    @staticmethod
    def _refusal(call: Call, response: httpx.Response) -> PresenceAPIError:
        endpoint = ENDPOINTS[call.endpoint]
        try:
            answer = response.json()
            detail = answer.get("detail", response.text)
            error = answer.get("error") or answer.get("message") or ""
        except (ValueError, AttributeError):
            detail, error = response.text or response.reason_phrase, ""
        path = response.request.url.path
        return PresenceAPIError(response.status_code, detail, endpoint.method, path, str(error))

    def _parse(self, call: Call, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise self._refusal(call, response)
        kind = ENDPOINTS[call.endpoint].response
        if kind is None or response.status_code == 304:  # 304: a patch that changed nothing
            return None
        return adapter(kind).validate_json(response.content)


class _SyncDriver(_Driver):
    _http: httpx.Client

    def _bind(self, fn: Callable[..., Generator[Call, Any, Any]]) -> Callable[..., Any]:
        def method(*args: Any, **kwargs: Any) -> Any:
            ops = fn(self, *args, **kwargs)
            answer: Any = None
            failure: PresenceError | None = None
            while True:
                try:
                    call = ops.throw(failure) if failure else ops.send(answer)
                except StopIteration as done:
                    return done.value
                try:
                    answer, failure = self._send(call), None
                except PresenceError as exc:  # the operation may handle it (e.g. a 404)
                    answer, failure = None, exc

        return method

    def _send(self, call: Call) -> Any:
        try:
            if call.save_to is None:
                return self._parse(call, self._http.request(**self._request(call)))
            with self._http.stream(**self._request(call)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._refusal(call, response)
                with open(call.save_to, "wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
            return call.save_to
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc


class _AsyncDriver(_Driver):
    _http: httpx.AsyncClient

    def _bind(self, fn: Callable[..., Generator[Call, Any, Any]]) -> Callable[..., Any]:
        async def method(*args: Any, **kwargs: Any) -> Any:
            ops = fn(self, *args, **kwargs)
            answer: Any = None
            failure: PresenceError | None = None
            while True:
                try:
                    call = ops.throw(failure) if failure else ops.send(answer)
                except StopIteration as done:
                    return done.value
                try:
                    answer, failure = await self._send(call), None
                except PresenceError as exc:
                    answer, failure = None, exc

        return method

    async def _send(self, call: Call) -> Any:
        try:
            if call.save_to is None:
                return self._parse(call, await self._http.request(**self._request(call)))
            async with self._http.stream(**self._request(call)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._refusal(call, response)
                with open(call.save_to, "wb") as out:
                    async for chunk in response.aiter_bytes():
                        out.write(chunk)
            return call.save_to
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
