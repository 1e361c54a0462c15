"""Launchers: how a conversation's pipeline runs. The browser one is the default.

``WebRTCLauncher`` loads the conversation's pipeline (base YAML + persona layers), then serves a
per-conversation ``presence.transports.webrtc.WebRTCServer`` under ``/c/{conversation_id}/``: the
browser page, and the SmallWebRTC offer at ``/c/{id}/api/offer``. When the user connects the
pipeline runs over that connection and the persona greets first; its transcript (pipecat
observer ``TranscriptObserver``) is reported as it grows; a stage that becomes unusable or raises a
fatal error ends the conversation with reason ``exception`` and that stage's name.

``run_pipeline_session`` is the transport-independent part (used with any pipecat transport), so
the same lifecycle code runs over WebRTC, the file transport or a test transport.

Interactions (``presence.processors.interactions``): every session has an
``InteractionsProcessor`` right after the transport input, so the user's page (data channel) and
server-side callers (``interact``, behind ``POST /v2/conversations/{id}/interactions``) can make the
replica echo text, respond as if the user spoke, stop, or change its conversational context, and
the page receives ``conversation.utterance`` and speaking events.

With ``spec.recording_path`` the call is recorded (``presence.service.recording.CallRecorder``) and
``events.recording`` reports the file before ``events.left``.

Isolation: sessions run as tasks of the service's event loop (not yet a process each); each has its
own pipeline, stages and LLM context (process-wide native libraries such as espeak-ng are
shared behind their engines' locks). See the README's "Sessions and isolation" for the limits
of running in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.frames.frames import ErrorFrame
from pipecat.transports.base_transport import BaseTransport

from presence.framework.errors import ConfigError, PresenceError
from presence.service.pipelines import apply_persona
from presence.service.supervisor import ConversationSpec, SessionEvents

TRANSCRIPT_POLL_SECS = 0.5


class LaunchError(PresenceError):
    """A conversation's pipeline cannot start; ``stage`` names what failed."""

    def __init__(self, message: str, stage: str):
        self.stage = stage
        super().__init__(message)


def load_conversation_pipeline(spec: ConversationSpec) -> Any:
    """The conversation's ``LoadedPipeline`` with the persona updates applied.

    Raises:
        LaunchError: The pipeline or persona is invalid (stage ``config``).
    """
    from presence.framework.config import load_pipeline

    try:
        loaded = load_pipeline(spec.pipeline, spec.overrides)
    except ConfigError as exc:
        raise LaunchError(str(exc), stage="config") from None
    loaded.persona = apply_persona(loaded.persona, spec.persona)
    return loaded


def make_interactions(loaded: Any, conversation_id: str | None = None) -> Any:
    """The conversation's ``InteractionsProcessor`` (its context starts from the persona's)."""
    from presence.processors.interactions.processor import InteractionsProcessor

    return InteractionsProcessor(
        conversation_id=conversation_id,
        system_prompt=loaded.persona.system_prompt,
        context=loaded.persona.context,
    )


async def submit_interaction(interactions: Any, message: Any) -> str:
    """Queue ``message`` on a live session's processor; returns the accepted ``event_type``.

    Raises:
        InteractionError: The message is invalid.
        NotRunningError: The session's pipeline is not running (an ``InteractionError``).
    """
    from presence.processors.interactions.engines.protocol import NotRunningError

    if interactions is None:
        raise NotRunningError("the conversation's pipeline is not running (nobody joined yet)")
    return (await interactions.submit(message)).event_type


def stage_of(session: Any, processor: Any) -> str | None:
    """The stage name of ``processor`` in a built session (its pipecat name when not a stage)."""
    for name, built in session.stages.items():
        if built is processor:
            return name
    return getattr(processor, "name", None)


def _recorder(loaded: Any, path: Path) -> Any:
    from presence.service.recording import CallRecorder

    video = getattr(loaded.transport, "video", None)
    return CallRecorder(
        path,
        width=video.width if video else 512,
        height=video.height if video else 512,
        fps=video.fps if video else 25,
    )


async def run_pipeline_session(
    loaded: Any,
    transport: BaseTransport,
    events: SessionEvents,
    *,
    fast: bool = False,
    recording_path: Path | None = None,
    extras: dict[str, Any] | None = None,
    interactions: Any = None,
) -> None:
    """Build and run one session over ``transport``, reporting to ``events`` until it ends.

    ``interactions`` is the session's ``InteractionsProcessor`` (``make_interactions``; one is
    made when ``None``): it goes right after the transport input, its observer on the worker.

    The persona greets when the transport reports ``on_client_connected`` (or at once when the
    transport has no such event). With ``recording_path`` the call is recorded there
    (``presence.service.recording``) and reported through ``events.recording`` before
    ``events.left``. Returns when the pipeline ends or the task is cancelled.
    """
    from pipecat.workers.runner import WorkerRunner

    from presence.framework.builder import build_session
    from presence.framework.observers.transcript import TranscriptObserver

    transcript = TranscriptObserver()
    observers: list[Any] = [transcript]
    recorder = None
    try:
        if interactions is None:
            interactions = make_interactions(loaded)
        observers.append(interactions.observer())
        if recording_path is not None:
            recorder = _recorder(loaded, recording_path)
            observers.append(recorder)
        session = build_session(
            loaded,
            transport,
            observers=observers,
            fast=fast,
            extras=extras,
            after_input=[interactions],
        )
    except Exception as exc:
        failed_recorder = recording_path is not None and recorder is None
        stage = getattr(exc, "field", None) or ("recording" if failed_recorder else "build")
        events.failed(str(stage).removeprefix("stages."), str(exc))
        return

    @session.worker.event_handler("on_pipeline_error")
    async def on_error(_worker, frame: ErrorFrame) -> None:
        processor = frame.processor
        if frame.fatal or (processor is not None and not processor.is_usable):
            events.failed(stage_of(session, processor), frame.error)

    greeted = asyncio.Event()

    async def join() -> None:
        if not greeted.is_set():
            greeted.set()
            events.joined()
            await session.greet()

    has_connect = "on_client_connected" in getattr(transport, "_event_handlers", {})
    if has_connect:

        @transport.event_handler("on_client_connected")
        async def on_connected(_transport, _client) -> None:
            await join()

    async def report() -> None:
        while True:
            await asyncio.sleep(TRANSCRIPT_POLL_SECS)
            events.transcript(transcript.report()["turns"])
            perception = session.stages.get("perception")
            if perception is not None and hasattr(perception, "analysis"):
                with contextlib.suppress(Exception):
                    events.perception(perception.analysis())

    reporter = asyncio.create_task(report())
    runner = WorkerRunner(handle_sigint=False)
    try:
        await runner.add_workers(session.worker)
        if not has_connect:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(join()))
        await runner.run()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        events.transcript(transcript.report()["turns"])
        perception = session.stages.get("perception")
        if perception is not None and hasattr(perception, "analysis"):
            with contextlib.suppress(Exception):
                events.perception(perception.analysis())
        if recorder is not None:
            try:
                summary = await recorder.close()
                events.recording(str(recorder.path), summary["duration_s"])
            except Exception as exc:  # the call is over; a broken file must not hide that
                logger.warning(f"recording {recorder.path.name} failed: {exc!r}")
        events.left()


class _BrowserSession:
    def __init__(self, spec: ConversationSpec, loaded: Any, events: SessionEvents):
        self.spec = spec
        self.loaded = loaded
        self.events = events
        self.server: Any = None
        self.interactions: Any = None

    async def on_session(self, transport: BaseTransport, session_id: str) -> None:
        logger.info(f"conversation {self.spec.conversation_id}: browser joined ({session_id})")
        self.interactions = make_interactions(self.loaded, self.spec.conversation_id)
        await run_pipeline_session(
            self.loaded,
            transport,
            self.events,
            recording_path=self.spec.recording_path,
            interactions=self.interactions,
        )


class WebRTCLauncher:
    """Runs each conversation over the browser page at ``/c/{id}/`` (SmallWebRTC).

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
        if kind != "webrtc":
            raise LaunchError(
                f"transport '{kind}' is not served by this launcher; use a webrtc persona transport",
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
        self._sessions[spec.conversation_id] = session
        return session

    async def end(self, handle: _BrowserSession, reason: str) -> None:
        """Close the page's peer connection and stop the pipeline."""
        self._sessions.pop(handle.spec.conversation_id, None)
        if handle.server is not None:
            await handle.server.close()

    def join_app(self, conversation_id: str) -> Any:
        """The per-conversation ASGI app (page + signalling), or ``None`` when not live."""
        session = self._sessions.get(conversation_id)
        return session.server.app if session is not None else None

    async def interact(self, conversation_id: str, message: Any) -> str:
        """Run an interaction in a live conversation (see ``submit_interaction``)."""
        session = self._sessions.get(conversation_id)
        return await submit_interaction(session.interactions if session else None, message)
