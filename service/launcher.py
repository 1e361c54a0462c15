"""Launchers: how a conversation's pipeline runs. ``WebRTCLauncher`` runs it in this process.

``WebRTCLauncher`` loads the conversation's pipeline (base YAML + persona layers), then serves a
per-conversation ``presence.transports.webrtc.WebRTCServer`` under ``/c/{conversation_id}/``: the
browser page, and the SmallWebRTC offer at ``/c/{id}/api/offer``. When the user connects the
pipeline runs over that connection (``presence.service.session_run.run_pipeline_session``) and the
persona greets first. A persona whose transport is ``daily`` gets a Daily room instead
(``presence.service.daily``): the room's URL is the ``conversation_url``.

A page's session is prepared as soon as the conversation starts: its stages are built and warmed
up in a thread (``presence.service.session_run.prepare_conversation``) while the user opens the
page, so when the offer arrives only the wiring is left and the ICE/DTLS handshake is never
stalled by a model load. An offer that arrives before preparation is done waits for it without
blocking the event loop. A second join of the same conversation (after the first peer left)
prepares its own stages the same way, in a thread.

The service runs each conversation in a process of its own (``presence.service.process_launcher``),
which runs this launcher in the child; ``WebRTCLauncher`` alone (sessions as tasks of one event
loop) is the ``inline`` isolation mode.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loguru import logger
from pipecat.transports.base_transport import BaseTransport

from presence.service.session_run import (
    LaunchError,
    in_thread,
    load_conversation_pipeline,
    make_interactions,
    prepare_conversation,
    run_pipeline_session,
    stage_of,
    submit_interaction,
)
from presence.service.session_spec import ConversationSpec, SessionEvents

DAILY_LEAVE_SECS = 5.0

__all__ = [
    "LaunchError",
    "WebRTCLauncher",
    "load_conversation_pipeline",
    "make_interactions",
    "run_pipeline_session",
    "stage_of",
    "submit_interaction",
]


class _BrowserSession:
    def __init__(self, spec: ConversationSpec, loaded: Any, events: SessionEvents):
        self.spec = spec
        self.loaded = loaded
        self.events = events
        self.server: Any = None
        self.interactions: Any = None
        self.prepared: asyncio.Future | None = None

    def prepare(self) -> None:
        """Start preparing the next join's stages in a thread (a failure is reported on join)."""
        self.prepared = in_thread(prepare_conversation, self.loaded, self.events, self.spec)
        started = time.monotonic()
        cid = self.spec.conversation_id

        def done(future: asyncio.Future) -> None:  # retrieved here, so never left unawaited
            if future.cancelled():
                return
            if future.exception() is not None:
                logger.warning(
                    f"conversation {cid}: its session cannot be prepared "
                    f"({future.exception()}); reported when the user joins"
                )
            else:
                logger.info(
                    f"conversation {cid}: session prepared in {time.monotonic() - started:.1f} s"
                )

        self.prepared.add_done_callback(done)

    @property
    def is_prepared(self) -> bool:
        """Whether the next join only wires stages (they are built and warm)."""
        future = self.prepared
        return (
            future is not None
            and future.done()
            and not future.cancelled()
            and (future.exception() is None)
        )

    def close(self) -> None:
        """Drop a preparation nobody will use (its thread finishes and the result is dropped)."""
        if self.prepared is not None:
            self.prepared.cancel()
            self.prepared = None

    async def on_session(self, transport: BaseTransport, session_id: str) -> None:
        logger.info(f"conversation {self.spec.conversation_id}: browser joined ({session_id})")
        self.interactions = make_interactions(self.loaded, self.spec.conversation_id)
        prepared, self.prepared = self.prepared, None  # a later join prepares its own
        await run_pipeline_session(
            self.loaded,
            transport,
            self.events,
            recording_path=self.spec.recording_path,
            interactions=self.interactions,
            spec=self.spec,
            prepared=prepared,
        )


class _DailySession:
    """A conversation in its own Daily room: the persona is in the room from the start."""

    def __init__(self, spec: ConversationSpec, room: Any, rooms: Any):
        self.spec = spec
        self.room = room
        self.rooms = rooms
        self.conversation_url = room.url
        self.server: Any = None
        self.interactions: Any = None
        self.task: asyncio.Task | None = None


class WebRTCLauncher:
    """Runs each conversation in this process (a page, or a Daily room).

    A ``webrtc`` persona transport serves the browser page at ``/c/{id}/`` (SmallWebRTC); a
    ``daily`` one gets a Daily room of its own, whose URL is the ``conversation_url``.

    Args:
        ice_host_addresses: Host addresses aiortc offers (``["127.0.0.1"]`` on loopback-only hosts).
        ice_servers: STUN/TURN servers for both peers.
    """

    def __init__(
        self, *, ice_host_addresses: list[str] | None = None, ice_servers: list | None = None
    ):
        self._ice_host_addresses = ice_host_addresses
        self._ice_servers = ice_servers
        self._sessions: dict[str, _BrowserSession] = {}

    async def start(self, spec: ConversationSpec, events: SessionEvents) -> _BrowserSession:
        """Load the pipeline and open the conversation's page.

        Raises:
            LaunchError: The pipeline is invalid, or its transport is not a browser one.
        """
        try:
            from presence.transports.webrtc import (
                WebRTCServer,
                limit_ice_host_addresses,
                webrtc_params,
            )
        except ImportError as exc:
            raise LaunchError(
                f"the browser transport is not available: {exc}", stage="transport"
            ) from None
        loaded = await asyncio.to_thread(load_conversation_pipeline, spec)
        kind = getattr(loaded.transport, "kind", "webrtc")
        if kind == "daily":
            return await self._start_daily(spec, loaded, events)
        if kind != "webrtc":
            raise LaunchError(
                f"transport '{kind}' cannot serve conversations; use webrtc or daily as the "
                "persona's transport",
                stage="transport",
            )
        video = getattr(loaded.transport, "video", None)
        size = {"width": video.width, "height": video.height, "fps": video.fps} if video else {}
        camera_fps = getattr(loaded.transport, "camera_fps", None)
        if camera_fps is not None:
            size["camera_fps"] = camera_fps
        session = _BrowserSession(spec, loaded, events)
        if self._ice_host_addresses is not None:
            limit_ice_host_addresses(self._ice_host_addresses)
        session.server = WebRTCServer(
            session.on_session,
            params=lambda: webrtc_params(**size),
            ice_servers=self._ice_servers,
            title=loaded.persona.name,
            max_sessions=1,
        )
        session.prepare()  # while the user opens the page; the offer then only wires it
        self._sessions[spec.conversation_id] = session
        return session

    async def _start_daily(
        self, spec: ConversationSpec, loaded: Any, events: SessionEvents
    ) -> _DailySession:
        from presence.service.daily import DailyRooms, run_daily_session

        rooms = DailyRooms()
        try:
            room = await rooms.create(spec)
        except LaunchError:
            await rooms.close()
            raise
        session = _DailySession(spec, room, rooms)
        session.interactions = make_interactions(loaded, spec.conversation_id)
        session.task = asyncio.create_task(
            run_daily_session(
                loaded,
                room,
                events,
                recording_path=spec.recording_path,
                interactions=session.interactions,
                spec=spec,
            ),
            name=f"daily-{spec.conversation_id}",
        )
        self._sessions[spec.conversation_id] = session
        return session

    async def end(self, handle: _BrowserSession | _DailySession, reason: str) -> None:
        """Stop the pipeline: close the page's peer connection, or leave and delete the room."""
        self._sessions.pop(handle.spec.conversation_id, None)
        if isinstance(handle, _BrowserSession):
            handle.close()
        if handle.server is not None:
            await handle.server.close()
        if isinstance(handle, _DailySession):
            await _end_daily(handle)

    def is_prepared(self, conversation_id: str) -> bool:
        """Whether the conversation's page is live and its next join only wires its stages."""
        session = self._sessions.get(conversation_id)
        return isinstance(session, _BrowserSession) and session.is_prepared

    def join_app(self, conversation_id: str) -> Any:
        """The per-conversation ASGI app (page + signalling), or ``None`` when not live."""
        session = self._sessions.get(conversation_id)
        return session.server.app if session is not None and session.server else None

    async def interact(self, conversation_id: str, message: Any) -> str:
        """Run an interaction in a live conversation (see ``submit_interaction``)."""
        session = self._sessions.get(conversation_id)
        return await submit_interaction(session.interactions if session else None, message)


async def _end_daily(handle: _DailySession) -> None:
    """Leave the room (bounded: a join still in progress can take ~20 s to give up), delete it."""
    if handle.task is not None and not handle.task.done():
        handle.task.cancel()
        await asyncio.wait({handle.task}, timeout=DAILY_LEAVE_SECS)
    try:
        await handle.rooms.delete(handle.room)
    except LaunchError as exc:
        logger.warning(f"conversation {handle.spec.conversation_id}: {exc}")
    finally:
        await handle.rooms.close()
