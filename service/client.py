"""A typed Python client for the presence REST API (personas and conversations).

``PresenceClient`` (sync) and ``AsyncPresenceClient`` (asyncio) send the ``x-api-key`` header,
validate request bodies with the service's own request models before sending (a misspelt field
fails here, naming it) and parse answers into its response models. A 4xx/5xx answer raises
``PresenceAPIError`` carrying the status and the service's ``detail``; an unreachable service
raises ``ServiceUnreachable``. Each method's route is declared once in ``ENDPOINTS``; the tests
check that table against ``service/openapi.json`` so the client cannot drift from the API.

Example:
    >>> from presence.service.client import PresenceClient
    >>> with PresenceClient("http://127.0.0.1:8000", api_key="...") as presence:
    ...     persona = presence.create_persona(persona_name="Ada", system_prompt="Be brief.")
    ...     talk = presence.create_conversation(persona_id=persona.persona_id)
    ...     print(talk.conversation_url)
    ...     presence.end_conversation(talk.conversation_id)
    ...     print(presence.transcript(talk.conversation_id))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from presence.framework.errors import ConfigError, PresenceError
from presence.service.schemas import (
    ConversationCreate,
    ConversationOut,
    Page,
    PersonaCreate,
    PersonaOut,
)

API_KEY_ENV = "PRESENCE_API_KEY"
DEFAULT_URL = "http://127.0.0.1:8000"


class PresenceAPIError(PresenceError):
    """The service refused a request (4xx) or failed (5xx).

    Attributes:
        status_code: The HTTP status.
        detail: The service's ``detail``: a sentence, or for a 422 the list of field errors.
        method: The request's method.
        path: The request's path.
    """

    def __init__(self, status_code: int, detail: Any, method: str, path: str):
        self.status_code, self.detail, self.method, self.path = status_code, detail, method, path
        super().__init__(f"{method} {path} answered {status_code}: {_describe(detail)}")


class ServiceUnreachable(PresenceError):
    """No presence service answered at the client's URL."""


def _describe(detail: Any) -> str:
    if isinstance(detail, list):  # FastAPI's 422: [{loc, msg, type}, ...]
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


@dataclass(frozen=True)
class Endpoint:
    """One route a client method calls.

    Attributes:
        method: HTTP method.
        path: Path template as in the OpenAPI description.
        body: Request body model (JSON), if any.
        response: Model of the 200 answer; ``None`` for a 204.
        query: Query parameters the method may send.
    """

    method: str
    path: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: tuple[str, ...] = ()


ENDPOINTS: dict[str, Endpoint] = {
    "create_persona": Endpoint("POST", "/v2/personas", PersonaCreate, PersonaOut),
    "list_personas": Endpoint("GET", "/v2/personas", None, Page[PersonaOut], ("limit", "page")),
    "get_persona": Endpoint("GET", "/v2/personas/{persona_id}", None, PersonaOut),
    "delete_persona": Endpoint("DELETE", "/v2/personas/{persona_id}"),
    "create_conversation": Endpoint(
        "POST", "/v2/conversations", ConversationCreate, ConversationOut
    ),
    "list_conversations": Endpoint(
        "GET",
        "/v2/conversations",
        None,
        Page[ConversationOut],
        ("status", "persona_id", "limit", "page"),
    ),
    "get_conversation": Endpoint(
        "GET", "/v2/conversations/{conversation_id}", None, ConversationOut, ("verbose",)
    ),
    "end_conversation": Endpoint(
        "POST", "/v2/conversations/{conversation_id}/end", None, ConversationOut
    ),
    "delete_conversation": Endpoint("DELETE", "/v2/conversations/{conversation_id}"),
}
"""Route of each client method of the same name (``transcript`` reads ``get_conversation``)."""

Status = Literal["active", "ended"]


def _key(api_key: str | None) -> str:
    key = api_key or os.environ.get(API_KEY_ENV)
    if not key:
        raise ConfigError(
            f"no API key for the presence service: pass api_key or set {API_KEY_ENV} "
            "(one of the service's PRESENCE_API_KEYS)"
        )
    return key


def _body(model: type[BaseModel], given: BaseModel | None, fields: dict[str, Any]) -> dict:
    if given is not None and fields:
        raise TypeError(f"pass a {model.__name__} or keyword fields, not both")
    value = given if given is not None else model(**fields)
    # only what the caller set: the service applies its own defaults
    return value.model_dump(mode="json", exclude_unset=True, by_alias=True)


class _Calls:
    """Request building and answer parsing shared by the sync and async clients."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float):
        self.base_url = base_url.rstrip("/")
        self._headers = {"x-api-key": _key(api_key)}
        self._timeout = timeout

    def _request(self, name: str, body: dict | None, ids: dict[str, str], query: dict) -> dict:
        endpoint = ENDPOINTS[name]
        params = {k: v for k, v in query.items() if v is not None}
        assert set(params) <= set(endpoint.query), f"{name}: {set(params)} not declared"
        return {
            "method": endpoint.method,
            "url": endpoint.path.format(**ids),
            "json": body,
            "params": params,
            "headers": self._headers,
        }

    def _unreachable(self, exc: httpx.TransportError) -> ServiceUnreachable:
        return ServiceUnreachable(f"no presence service answered at {self.base_url}: {exc}")

    @staticmethod
    def _parse(name: str, response: httpx.Response) -> Any:
        endpoint = ENDPOINTS[name]
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except (ValueError, AttributeError):
                detail = response.text or response.reason_phrase
            raise PresenceAPIError(
                response.status_code, detail, endpoint.method, response.request.url.path
            )
        if endpoint.response is None:
            return None
        return endpoint.response.model_validate_json(response.content)


class PresenceClient(_Calls):
    """Synchronous client for a presence service.

    Args:
        base_url: The service's root URL (default ``http://127.0.0.1:8000``).
        api_key: One of the service's keys; default ``PRESENCE_API_KEY`` from the environment.
        timeout: Seconds per request.
        http: An ``httpx.Client`` to send through (its own ``base_url`` is then used).

    Raises:
        ConfigError: No API key was given or found in the environment.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ):
        super().__init__(base_url, api_key, timeout)
        self._owns_http = http is None
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)

    def __enter__(self) -> PresenceClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (not one passed in as ``http``)."""
        if self._owns_http:
            self._http.close()

    def _call(self, name: str, body: dict | None = None, ids: dict | None = None, **query):
        try:
            response = self._http.request(**self._request(name, body, ids or {}, query))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return self._parse(name, response)

    def create_persona(self, persona: PersonaCreate | None = None, **fields: Any) -> PersonaOut:
        """Create a persona from a ``PersonaCreate`` or its fields as keywords."""
        return self._call("create_persona", _body(PersonaCreate, persona, fields))

    def list_personas(self, *, limit: int = 10, page: int = 1) -> Page[PersonaOut]:
        """This key's personas, newest first (``limit`` 1..100 per ``page``)."""
        return self._call("list_personas", limit=limit, page=page)

    def get_persona(self, persona_id: str) -> PersonaOut:
        """One persona."""
        return self._call("get_persona", ids={"persona_id": persona_id})

    def delete_persona(self, persona_id: str) -> None:
        """Delete a persona."""
        self._call("delete_persona", ids={"persona_id": persona_id})

    def create_conversation(
        self, conversation: ConversationCreate | None = None, **fields: Any
    ) -> ConversationOut:
        """Start a conversation; share its ``conversation_url`` with the participant."""
        return self._call("create_conversation", _body(ConversationCreate, conversation, fields))

    def list_conversations(
        self,
        *,
        status: Status | None = None,
        persona_id: str | None = None,
        limit: int = 10,
        page: int = 1,
    ) -> Page[ConversationOut]:
        """This key's conversations, newest first, optionally filtered."""
        return self._call(
            "list_conversations", status=status, persona_id=persona_id, limit=limit, page=page
        )

    def get_conversation(self, conversation_id: str) -> ConversationOut:
        """One conversation with its transcript and events so far."""
        return self._call(
            "get_conversation", ids={"conversation_id": conversation_id}, verbose=True
        )

    def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's turns so far, each ``{"role": ..., "content": ...}``."""
        return self.get_conversation(conversation_id).transcript

    def end_conversation(self, conversation_id: str) -> ConversationOut:
        """End a live conversation (no-op once ended)."""
        return self._call("end_conversation", ids={"conversation_id": conversation_id})

    def delete_conversation(self, conversation_id: str) -> None:
        """End the conversation if live and delete its record."""
        self._call("delete_conversation", ids={"conversation_id": conversation_id})


class AsyncPresenceClient(_Calls):
    """Asyncio client for a presence service: ``PresenceClient``'s methods, awaited.

    Args:
        base_url: The service's root URL (default ``http://127.0.0.1:8000``).
        api_key: One of the service's keys; default ``PRESENCE_API_KEY`` from the environment.
        timeout: Seconds per request.
        http: An ``httpx.AsyncClient`` to send through (its own ``base_url`` is then used).

    Raises:
        ConfigError: No API key was given or found in the environment.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ):
        super().__init__(base_url, api_key, timeout)
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> AsyncPresenceClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (not one passed in as ``http``)."""
        if self._owns_http:
            await self._http.aclose()

    async def _call(self, name: str, body: dict | None = None, ids: dict | None = None, **query):
        try:
            response = await self._http.request(**self._request(name, body, ids or {}, query))
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return self._parse(name, response)

    async def create_persona(
        self, persona: PersonaCreate | None = None, **fields: Any
    ) -> PersonaOut:
        """Create a persona from a ``PersonaCreate`` or its fields as keywords."""
        return await self._call("create_persona", _body(PersonaCreate, persona, fields))

    async def list_personas(self, *, limit: int = 10, page: int = 1) -> Page[PersonaOut]:
        """This key's personas, newest first (``limit`` 1..100 per ``page``)."""
        return await self._call("list_personas", limit=limit, page=page)

    async def get_persona(self, persona_id: str) -> PersonaOut:
        """One persona."""
        return await self._call("get_persona", ids={"persona_id": persona_id})

    async def delete_persona(self, persona_id: str) -> None:
        """Delete a persona."""
        await self._call("delete_persona", ids={"persona_id": persona_id})

    async def create_conversation(
        self, conversation: ConversationCreate | None = None, **fields: Any
    ) -> ConversationOut:
        """Start a conversation; share its ``conversation_url`` with the participant."""
        body = _body(ConversationCreate, conversation, fields)
        return await self._call("create_conversation", body)

    async def list_conversations(
        self,
        *,
        status: Status | None = None,
        persona_id: str | None = None,
        limit: int = 10,
        page: int = 1,
    ) -> Page[ConversationOut]:
        """This key's conversations, newest first, optionally filtered."""
        return await self._call(
            "list_conversations", status=status, persona_id=persona_id, limit=limit, page=page
        )

    async def get_conversation(self, conversation_id: str) -> ConversationOut:
        """One conversation with its transcript and events so far."""
        ids = {"conversation_id": conversation_id}
        return await self._call("get_conversation", ids=ids, verbose=True)

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """The conversation's turns so far, each ``{"role": ..., "content": ...}``."""
        return (await self.get_conversation(conversation_id)).transcript

    async def end_conversation(self, conversation_id: str) -> ConversationOut:
        """End a live conversation (no-op once ended)."""
        return await self._call("end_conversation", ids={"conversation_id": conversation_id})

    async def delete_conversation(self, conversation_id: str) -> None:
        """End the conversation if live and delete its record."""
        await self._call("delete_conversation", ids={"conversation_id": conversation_id})
