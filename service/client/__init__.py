"""A typed Python client for the whole presence REST API (``/v2``), sync and asyncio.

``PresenceClient`` (sync) and ``AsyncPresenceClient`` (asyncio) have the same methods, one per
route (personas, replicas, conversations and interactions, recordings, usage, documents with
uploads, memories, guardrails, objectives). They send the ``x-api-key`` header, validate request
bodies with the service's own models before sending (a misspelt field fails here, naming it)
and parse answers into its response models. A 4xx/5xx answer raises ``PresenceAPIError``
(``status_code``, the service's ``error`` sentence and ``detail``); an unreachable service
raises ``ServiceUnreachable``.

Each method is written once (``_conversations``, ``_knowledge``) as a generator of requests;
the two clients only differ in how they send them (``_drivers``). Each route is declared once
in ``ENDPOINTS``; the tests check that table against ``service/openapi.json``, and that every
route the API serves has a method, so the client cannot drift from the API.

Example:
    >>> from presence.service.client import PresenceClient
    >>> with PresenceClient("http://127.0.0.1:8000", api_key="...") as presence:
    ...     doc = presence.upload_document("faq.md", tags=["support"])
    ...     persona = presence.create_persona(
    ...         persona_name="Ada", system_prompt="Be brief.", document_tags=["support"]
    ...     )
    ...     talk = presence.create_conversation(persona_id=persona.persona_id)
    ...     print(talk.conversation_url)
    ...     presence.end_conversation(talk.conversation_id)
    ...     print(presence.transcript(talk.conversation_id))
"""

from __future__ import annotations

import httpx

from presence.service.client._conversations import ConversationOperations
from presence.service.client._core import Endpoint, PresenceAPIError, ServiceUnreachable
from presence.service.client._drivers import API_KEY_ENV, DEFAULT_URL, _AsyncDriver, _SyncDriver
from presence.service.client._endpoints import DERIVED, ENDPOINTS
from presence.service.client._knowledge import KnowledgeOperations

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_URL",
    "DERIVED",
    "ENDPOINTS",
    "AsyncPresenceClient",
    "Endpoint",
    "PresenceAPIError",
    "PresenceClient",
    "ServiceUnreachable",
]


class PresenceClient(ConversationOperations, KnowledgeOperations, _SyncDriver):
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


class AsyncPresenceClient(ConversationOperations, KnowledgeOperations, _AsyncDriver):
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
