"""``RayLauncher``: each conversation runs as a Ray actor on a cluster (``--placement ray``).

::

    API replica (Ray driver)                              Ray worker node (one actor per call)
    ────────────────────────                              ────────────────────────────────────
    reserve: cluster has room? else 429                   SessionActor "presence-<id>"
    start(spec) ─── actor.start.remote(spec) ───────────▶ WebRTCLauncher.start(spec) (pipeline)
    /c/{id}/api/... ─ actor.http.remote(method, path…) ─▶ the page's SmallWebRTC signalling; the
                                                          browser's media then flows to the
                                                          worker's own address (ICE), not here
    interact(id, msg) ─ actor.interact.remote(msg) ─────▶ InteractionsProcessor
    events.* ◀──────── actor.events.remote(after) ─────── joined/left/transcript/... (long poll)
    actor or node dies ─▶ events.lost(...) ─▶ shutdown_reason ``worker_lost`` (stored transcript
                                              kept, shutdown and transcription webhooks sent)
    replica dies ─▶ another replica: adopt(id) ─ ray.get_actor("presence-<id>") ─▶ the call goes
                    on; events resume after the last one the dead replica handled

Resources: each actor asks Ray for ``ray_num_cpus`` CPUs, plus ``ray_num_gpus`` of a GPU when the
conversation's pipeline mentions ``cuda`` (its YAML or the persona's layers). Ray keeps token
authentication on (its default since 2.52): a driver joining a cluster needs the cluster's token
(``RAY_AUTH_TOKEN`` or the token file Ray writes), so only trusted API replicas can place calls.
A Daily persona's actor joins the room itself: ``conversation_url`` is the room.

Actors are detached (``lifetime="detached"``), so an API replica that dies takes no call with it:
the replica that finds its conversations orphaned adopts each live actor (``adopt``) and ends only
those whose actor is gone. Every end kills the actor; ``discard`` kills one whose conversation was
ended without it (an orphan that could not be adopted).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from presence.service.process_launcher import ProxyApp
from presence.service.ray_actor import ORPHANED_AFTER_SECS, SessionActor
from presence.service.session_run import LaunchError
from presence.service.session_spec import ConversationSpec, SessionEvents
from presence.service.supervisor import CapacityError

NAMESPACE = "presence"
START_TIMEOUT_SECS = 120.0
END_TIMEOUT_SECS = 8.0
ADOPT_TIMEOUT_SECS = 10.0


def actor_name(conversation_id: str) -> str:
    """The Ray name of a conversation's actor (in namespace ``presence``)."""
    return f"presence-{conversation_id}"


def uses_cuda(spec: ConversationSpec) -> bool:
    """Whether the conversation's pipeline runs a stage on CUDA (it says ``cuda`` somewhere)."""
    try:
        text = spec.pipeline.read_text()
    except OSError:
        text = ""
    return "cuda" in text or any("cuda" in o for o in spec.overrides)


@dataclass
class RaySession:
    """A live conversation's actor (the launcher's handle)."""

    spec: ConversationSpec
    actor: Any
    events: SessionEvents
    node: str | None = None
    node_id: str | None = None
    pid: int | None = None
    conversation_url: str | None = None
    ending: bool = False
    poller: asyncio.Task | None = None
    proxy: Any = field(default=None, repr=False)


class RayLauncher:
    """Places each conversation on a Ray cluster as an actor (see the module docstring).

    Args:
        address: Cluster address (``None`` or ``"local"``: start a local cluster in-process).
        num_cpus: CPUs each conversation asks for.
        num_gpus: GPU fraction each conversation asks for when its pipeline uses CUDA.
        inner: ``module:attribute`` of the in-process launcher the actor runs.
        inner_options: Its keyword arguments.
        init_options: Extra ``ray.init`` keyword arguments (e.g. ``runtime_env``).
        start_timeout: Seconds an actor may take to get placed and start its pipeline.
        orphaned_after: Seconds an actor runs its call without any replica polling it before it
            ends the call and removes itself.
    """

    def __init__(
        self,
        *,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.25,
        inner: str = "presence.service.launcher:WebRTCLauncher",
        inner_options: dict[str, Any] | None = None,
        init_options: dict[str, Any] | None = None,
        start_timeout: float = START_TIMEOUT_SECS,
        orphaned_after: float = ORPHANED_AFTER_SECS,
    ):
        try:
            import ray
        except ImportError:
            raise LaunchError(
                "placement 'ray' needs Ray: pip install 'presence[ray]'", stage="launch"
            ) from None
        self._ray = ray
        self._address = address
        self._init_options = init_options or {}
        self.num_cpus, self.num_gpus = num_cpus, num_gpus
        self._inner, self._inner_options = inner, inner_options or {}
        self._start_timeout = start_timeout
        self._orphaned_after = orphaned_after
        self._actor_class: Any = None
        self._sessions: dict[str, RaySession] = {}
        self._placing: dict[str, dict[str, float]] = {}  # started, not yet running

    @classmethod
    def from_settings(cls, settings: Any) -> RayLauncher:
        """The launcher ``presence serve --placement ray`` uses."""
        return cls(
            address=settings.ray_address,
            num_cpus=settings.ray_num_cpus,
            num_gpus=settings.ray_num_gpus,
            inner_options={
                "ice_host_addresses": settings.ice_host_addresses,
                "ice_servers": settings.ice_servers,
            },
        )

    def _connect(self) -> Any:
        ray = self._ray
        if not ray.is_initialized():
            address = None if self._address in (None, "local") else self._address
            ray.init(address=address, namespace=NAMESPACE, **self._init_options)
        if self._actor_class is None:
            self._actor_class = ray.remote(max_restarts=0, max_concurrency=64)(SessionActor)
        return self._actor_class

    async def warm(self) -> None:
        """Connect to (or start) the cluster when the service starts."""
        await asyncio.to_thread(self._connect)

    def _needs(self, spec: ConversationSpec) -> dict[str, float]:
        needs = {"CPU": self.num_cpus}
        if self.num_gpus > 0 and uses_cuda(spec):
            needs["GPU"] = self.num_gpus
        return needs

    def check_capacity(self, spec: ConversationSpec) -> None:
        """Refuse a conversation the cluster has no room for (the API answers 429), else hold room.

        The room is held from this check until the actor runs (or ``release``), so calls created
        at once cannot all pass the check before any of them reaches the cluster.

        Raises:
            CapacityError: No node has the CPUs (or GPU share) the conversation needs free.
        """
        self._connect()
        free = dict(self._ray.available_resources())
        for needs in self._placing.values():  # asked for, not yet taken from the cluster's count
            for name, amount in needs.items():
                free[name] = free.get(name, 0.0) - amount
        for name, amount in self._needs(spec).items():
            if free.get(name, 0.0) + 1e-9 < amount:
                raise CapacityError(
                    f"the Ray cluster has {free.get(name, 0.0):g} {name} free and a conversation "
                    f"needs {amount:g}; add nodes or end a conversation"
                )
        self._placing[spec.conversation_id] = self._needs(spec)

    def release(self, conversation_id: str) -> None:
        """Give back the room held for a conversation that will not be started."""
        self._placing.pop(conversation_id, None)

    async def start(self, spec: ConversationSpec, events: SessionEvents) -> RaySession:
        """Place the conversation's actor and start its pipeline there.

        Raises:
            LaunchError: The actor could not be placed in time, or its pipeline failed.
        """
        actor_class = await asyncio.to_thread(self._connect)
        needs = self._needs(spec)
        actor = actor_class.options(
            name=actor_name(spec.conversation_id),
            namespace=NAMESPACE,
            lifetime="detached",  # outlives this replica: another one can adopt the call
            num_cpus=needs["CPU"],
            num_gpus=needs.get("GPU", 0),
        ).remote(self._inner, self._inner_options, self._orphaned_after)
        handle = RaySession(spec, actor, events)
        self._placing[spec.conversation_id] = needs
        try:
            where = await asyncio.wait_for(actor.start.remote(spec), self._start_timeout)
        except Exception as exc:
            self._placing.pop(spec.conversation_id, None)
            self._ray.kill(actor)
            if isinstance(exc, TimeoutError):
                raise LaunchError(
                    f"the conversation's Ray actor was not running after {self._start_timeout:.0f} s",
                    stage="launch",
                ) from None
            cause = getattr(exc, "cause", None) or exc
            raise LaunchError(str(cause), stage=getattr(cause, "stage", None) or "launch") from None
        self._placing.pop(spec.conversation_id, None)
        self._attach(handle, where, seen=0)
        logger.info(f"conversation {spec.conversation_id}: Ray actor on {handle.node}")
        return handle

    def _attach(self, handle: RaySession, where: dict[str, Any], seen: int) -> None:
        handle.node, handle.node_id, handle.pid = where["node"], where["node_id"], where["pid"]
        handle.conversation_url = where["conversation_url"]
        handle.proxy = ActorProxy(handle.actor)
        cid = handle.spec.conversation_id
        handle.poller = asyncio.create_task(self._poll(handle, seen), name=f"ray-{cid}")
        self._sessions[cid] = handle

    def _named(self, conversation_id: str) -> Any:
        """The conversation's actor on the cluster, or ``None`` when there is none."""
        self._connect()
        try:
            return self._ray.get_actor(actor_name(conversation_id), namespace=NAMESPACE)
        except ValueError:
            return None

    async def adopt(self, conversation_id: str, events: SessionEvents) -> RaySession | None:
        """Take over a conversation whose replica died, if its actor still runs it.

        Events go on after the last one the previous replica handled (one it handled but had not
        yet acknowledged may come again: each event's effect is recorded once).

        Returns:
            The handle, or ``None`` when the actor is gone or its pipeline no longer runs.
        """
        actor = await asyncio.to_thread(self._named, conversation_id)
        if actor is None:
            return None
        try:
            state = await asyncio.wait_for(actor.adopt.remote(), ADOPT_TIMEOUT_SECS)
        except Exception as exc:  # the actor, its worker or its node is going away
            logger.warning(
                f"conversation {conversation_id}: its Ray actor did not answer ({exc!r})"
            )
            return None
        if not state["running"] or state["spec"] is None:
            return None
        handle = RaySession(state["spec"], actor, events)
        self._attach(handle, state, seen=state["consumed"])
        logger.info(f"conversation {conversation_id}: adopted its Ray actor on {handle.node}")
        return handle

    async def discard(self, conversation_id: str) -> None:
        """Kill the actor of a conversation that was ended without it (e.g. an orphan)."""
        actor = await asyncio.to_thread(self._named, conversation_id)
        if actor is not None:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)

    async def _poll(self, handle: RaySession, seen: int) -> None:
        while True:
            try:
                batch = await handle.actor.events.remote(seen)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the actor, its worker process or its node is gone
                if not handle.ending:
                    message = (
                        f"the Ray worker running the conversation was lost ({type(exc).__name__})"
                    )
                    logger.warning(f"conversation {handle.spec.conversation_id}: {message}")
                    lost = getattr(handle.events, "lost", None)
                    lost(message) if lost else handle.events.failed("worker", message)
                return
            seen += len(batch)
            for name, args in batch:
                if name == "launch_failed":
                    name, args = "failed", args
                with contextlib.suppress(Exception):
                    getattr(handle.events, name)(*args)

    async def end(self, handle: RaySession, reason: str) -> None:
        """End the session on its actor, replay its last events, and remove the actor."""
        self._sessions.pop(handle.spec.conversation_id, None)
        handle.ending = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(handle.actor.end.remote(reason), END_TIMEOUT_SECS)
        if handle.poller is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(handle.poller), 0.5)
            handle.poller.cancel()
        with contextlib.suppress(Exception):
            self._ray.kill(handle.actor)

    def join_app(self, conversation_id: str) -> Any:
        """Signalling forwarded to the conversation's actor, or ``None`` when not live here."""
        handle = self._sessions.get(conversation_id)
        return handle.proxy if handle is not None and not handle.conversation_url else None

    async def interact(self, conversation_id: str, message: Any) -> str:
        """Run an interaction on the conversation's actor."""
        from presence.processors.interactions.engines.protocol import (
            InteractionError,
            NotRunningError,
        )

        handle = self._sessions.get(conversation_id)
        if handle is None:
            raise NotRunningError("the conversation's pipeline is not running")
        try:
            kind, detail = await handle.actor.interact.remote(message)
        except Exception as exc:
            raise NotRunningError(f"the conversation's Ray actor is gone ({exc})") from None
        if kind == "not_running":
            raise NotRunningError(detail)
        if kind == "invalid":
            raise InteractionError(detail)
        return detail

    def node_of(self, conversation_id: str) -> str | None:
        """The address of the node running a live conversation."""
        handle = self._sessions.get(conversation_id)
        return handle.node if handle is not None else None


class ActorProxy(ProxyApp):
    """ASGI app forwarding ``/api/...`` signalling requests to a conversation's actor."""

    def __init__(self, actor: Any):
        self._actor = actor

    async def __call__(self, scope, receive, send) -> None:
        """Forward one HTTP request; answer 502 when the actor is gone."""
        if scope["type"] != "http":
            return
        body, more = b"", True
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
            if k.decode().lower() not in self.HOP_BY_HOP
        ]
        try:
            status, out_headers, content = await self._actor.http.remote(
                scope["method"], path, body, headers
            )
            out = [
                (k.encode(), v.encode())
                for k, v in out_headers
                if k.lower() not in self.HOP_BY_HOP | {"content-length", "content-encoding"}
            ]
        except Exception as exc:
            status, content, out = 502, f"session unavailable: {exc}".encode(), []
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})
