"""``SessionActor``: one conversation on a Ray worker, driven by an API replica's ``RayLauncher``.

The actor runs an in-process launcher (the WebRTC one by default) and keeps the conversation's
events in a list the driving replica long-polls (``events``). Actors are detached and named
``presence-<conversation id>`` in the ``presence`` namespace: they outlive the API replica that
placed them, so another replica can take the call over (``adopt``) and go on from the last event
the first one handled, while the user's media keeps flowing to the worker. An actor no replica
has polled for ``orphaned_after`` seconds (every replica is gone, or none adopted it) ends its call
and removes itself, so a detached actor never holds a node's CPUs for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import time
from typing import Any

from loguru import logger

from presence.service.session_spec import ConversationSpec

POLL_SECS = 5.0
"""How long one ``events`` call waits for an event before answering with none."""
ORPHANED_AFTER_SECS = 120.0
"""Without a replica's poll for this long, the actor ends its call and removes itself."""


class SessionActor:
    """One conversation on a Ray worker (made a Ray actor class by ``RayLauncher``).

    Args:
        inner: ``module:attribute`` of the in-process launcher class to run (default
            ``WebRTCLauncher``; tests pass a small one).
        options: Keyword arguments for it (``ice_host_addresses``, ``ice_servers``).
        orphaned_after: Seconds without a replica's poll after which the call ends (longer than
            a replica takes to be found dead and its calls adopted).
    """

    def __init__(
        self, inner: str, options: dict[str, Any], orphaned_after: float = ORPHANED_AFTER_SECS
    ):
        module, _, name = inner.partition(":")
        self._launcher = getattr(importlib.import_module(module), name)(**options)
        self._events: list[tuple[str, tuple]] = []
        self._changed: asyncio.Event | None = None
        self._handle: Any = None
        self._client: Any = None
        self._cid = ""
        self._spec: ConversationSpec | None = None
        self._consumed = 0  # events the driver has asked past: it has handled them
        self._orphaned_after = orphaned_after
        self._polled_at = time.monotonic()
        self._watch: asyncio.Task | None = None

    def _put(self, name: str, *args: Any) -> None:
        self._events.append((name, args))
        if self._changed is not None:
            self._changed.set()

    async def start(self, spec: ConversationSpec) -> dict[str, Any]:
        """Start the conversation; returns ``where()`` it runs.

        Raises:
            LaunchError: The pipeline could not start (its stage is kept).
        """
        import httpx

        from presence.service.session_process import QueueEvents

        self._changed = asyncio.Event()
        self._cid, self._spec = spec.conversation_id, spec
        sink = QueueEvents(self)  # QueueEvents calls .put((name, args))
        self._handle = await self._launcher.start(spec, sink)
        app = self._launcher.join_app(spec.conversation_id)
        if app is not None:
            self._client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://session", timeout=30.0
            )
        self._polled_at = time.monotonic()
        self._watch = asyncio.create_task(self._watch_replicas())
        return self.where()

    async def _watch_replicas(self) -> None:
        import ray

        while self._handle is not None:
            await asyncio.sleep(min(5.0, self._orphaned_after / 4))
            if self._handle is not None and (
                time.monotonic() - self._polled_at > self._orphaned_after
            ):
                logger.warning(
                    f"conversation {self._cid}: no replica for {self._orphaned_after:.0f} s; ending"
                )
                await self.end("service_instance_lost")
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)

    def where(self) -> dict[str, Any]:
        """Where it runs: ``node`` (address), ``node_id`` (Ray's), ``pid``, ``conversation_url``."""
        import ray

        return {
            "node": ray.util.get_node_ip_address(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "conversation_url": getattr(self._handle, "conversation_url", None),
        }

    def adopt(self) -> dict[str, Any]:
        """What a replica taking this conversation over needs.

        Returns:
            ``where()`` plus the conversation's ``spec``, whether its pipeline is still
            ``running``, and ``consumed``: the events the previous replica handled.
        """
        return {
            **self.where(),
            "spec": self._spec,
            "running": self._handle is not None,
            "consumed": self._consumed,
        }

    def put(self, item: tuple[str, tuple]) -> None:
        """``QueueEvents`` sink: record one event."""
        self._put(item[0], *item[1])

    async def events(self, after: int, wait: float = POLL_SECS) -> list[tuple[str, tuple]]:
        """Events after the first ``after`` ones, waiting up to ``wait`` s for one to come.

        Asking past an event acknowledges it: a replica that adopts this actor (``adopt``) goes on
        from the last acknowledged event.
        """
        self._consumed = max(self._consumed, after)
        self._polled_at = time.monotonic()
        if len(self._events) <= after and self._changed is not None:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
        return self._events[after:]

    async def http(
        self, method: str, path: str, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Forward one signalling request (SDP offer/answer, ICE candidates) to the page's app."""
        if self._client is None:
            return 404, [], b"this conversation has no page"
        response = await self._client.request(method, path, content=body, headers=headers)
        return response.status_code, list(response.headers.items()), response.content

    async def interact(self, message: Any) -> tuple[str, str]:
        """Run an interaction: ``("ok", event_type)``, ``("not_running"|"invalid", detail)``."""
        from presence.processors.interactions.engines.protocol import (
            InteractionError,
            NotRunningError,
        )

        try:
            return "ok", await self._launcher.interact(self._cid, message)
        except NotRunningError as exc:
            return "not_running", str(exc)
        except InteractionError as exc:
            return "invalid", str(exc)

    async def end(self, reason: str) -> None:
        """Stop the session (its last transcript and recording events are recorded first)."""
        if self._handle is not None:
            await self._launcher.end(self._handle, reason)
            self._handle = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
