"""Helpers for the service tests: a real app on a temp SQLite file, a real webhook receiver on
127.0.0.1, and a launcher that runs a small real pipecat pipeline per conversation."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from pipecat.frames.frames import EndFrame, Frame, TextFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from presence.service.settings import ServiceSettings

KEY_A, KEY_B = "key-a", "key-b"
DATABASES = ["sqlite", "postgresql"]
"""Params of the ``database_url`` fixture for tests that run on both databases."""
SECRET = "test-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """A webhook receiver on 127.0.0.1 that can be down (port closed) and come up later."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[dict, bytes]] = []
        self.arrived: list[float] = []  # time.monotonic() of each delivery, in order
        self._server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    def up(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["content-length"]))
                with owner.lock:
                    owner.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    owner.arrived.append(time.monotonic())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, predicate, timeout: float = 30.0) -> list[dict]:
        """Poll until ``predicate(events)`` holds; returns the events (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while not predicate(events := self.events()):
            assert time.monotonic() < deadline, (
                f"webhooks so far: {[e['event_type'] for e in events]}"
            )
            time.sleep(0.05)
        return events

    def arrival(self, event_type: str, conversation_id: str | None = None) -> float:
        """``time.monotonic()`` when the first ``event_type`` (of the conversation) arrived."""
        with self.lock:
            pairs = list(zip(self.received, self.arrived, strict=True))
        for (_, body), t in pairs:
            event = json.loads(body)
            if event["event_type"] == event_type and conversation_id in (
                None,
                event["conversation_id"],
            ):
                return t
        raise KeyError(event_type)

    def events(self, conversation_id: str | None = None) -> list[dict]:
        with self.lock:
            out = [json.loads(body) for _, body in self.received]
        return [
            e for e in out if conversation_id is None or e["conversation_id"] == conversation_id
        ]


class Echo(FrameProcessor):
    """Pushes every frame on; a ``TextFrame`` also lands in the conversation's transcript."""

    def __init__(self, session: TinySession):
        super().__init__()
        self._session = session

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            self._session.turns.append({"role": "assistant", "content": frame.text})
            self._session.events.transcript(self._session.turns)
        await self.push_frame(frame, direction)


class TinySession:
    def __init__(self, spec, events):
        self.spec = spec
        self.events = events
        self.turns: list[dict] = []
        self.worker = PipelineWorker(
            Pipeline([Echo(self)]), params=PipelineParams(), idle_timeout_secs=None
        )
        self.task: asyncio.Task | None = None
        self.ended_with: str | None = None


class PipecatLauncher:
    """Runs a one-processor pipecat pipeline per conversation; the test drives joins and leaves.

    Args:
        join: Report the user joined (and greet) as soon as the pipeline runs.
    """

    def __init__(self, *, join: bool = True):
        self.join = join
        self.sessions: dict[str, TinySession] = {}

    async def start(self, spec, events):
        session = TinySession(spec, events)
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(session.worker)
        session.task = asyncio.create_task(runner.run())
        self.sessions[spec.conversation_id] = session
        if self.join:
            await self.user_joins(spec.conversation_id)
        return session

    async def user_joins(self, cid: str) -> None:
        session = self.sessions[cid]
        session.events.joined()
        greeting = session.spec.persona.get("greeting", "hello")
        await session.worker.queue_frames([TextFrame(greeting)])

    async def say(self, cid: str, text: str) -> None:
        await self.sessions[cid].worker.queue_frames([TextFrame(text)])

    async def interact(self, cid: str, message: dict) -> str:
        """``conversation.echo`` only: the persona says ``properties.text``."""
        from presence.processors.interactions.engines.protocol import (
            InteractionError,
            NotRunningError,
        )

        session = self.sessions.get(cid)
        if session is None or session.task is None or session.task.done():
            raise NotRunningError("the conversation's pipeline is not running")
        if message.get("event_type") != "conversation.echo":
            raise InteractionError(f"{message.get('event_type')} is not supported here")
        await self.say(cid, message["properties"]["text"])
        return "conversation.echo"

    async def end(self, handle: TinySession, reason: str) -> None:
        handle.ended_with = reason
        await handle.worker.queue_frames([EndFrame()])
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(handle.task, 5)

    def join_app(self, conversation_id):
        return None


def make_settings(tmp_path: Path, **kwargs) -> ServiceSettings:
    defaults = dict(
        data_dir=tmp_path / "data",
        api_keys=[KEY_A, KEY_B],
        webhook_secret=SECRET,
        public_url="http://127.0.0.1:8000",
        max_sessions=2,
        webhook_backoff_initial=0.05,
        webhook_backoff_max=0.2,
        outbox_poll_interval=0.05,
    )
    defaults.update(kwargs)
    return ServiceSettings(**defaults)


def call(client: TestClient, coro):
    """Run ``coro`` on the app's event loop (where the sessions live)."""
    return client.portal.call(lambda: coro)


class FileLauncher:
    """Runs each conversation's real pipeline over the file transport (no browser).

    The user's side of conversation ``n`` (in start order) is ``wavs[n]``; the persona greets at
    once. The session reports through the service's ``run_pipeline_session``, exactly as a browser
    session does, and the file transport ends it once the persona has answered.

    Args:
        wavs: One WAV per conversation, in the order they are started.
        out_dir: Where the file transport writes its own MP4 and report.
        fast: Feed the WAVs faster than real time where the pipeline allows.
    """

    def __init__(self, wavs: list[Path], out_dir: Path, *, fast: bool = True):
        self.wavs = list(wavs)
        self.out_dir = Path(out_dir)
        self.fast = fast
        self.tasks: dict[str, asyncio.Task] = {}
        self.reasons: dict[str, str] = {}
        self.interactions: dict[str, object] = {}  # conversation id -> InteractionsProcessor

    async def start(self, spec, events):
        from presence.service.launcher import (
            load_conversation_pipeline,
            make_interactions,
            run_pipeline_session,
        )
        from presence.transports.file.transport import FileTransport

        loaded = await asyncio.to_thread(load_conversation_pipeline, spec)
        video = loaded.transport.video
        transport = FileTransport(
            self.wavs[len(self.tasks)],
            self.out_dir / f"{spec.conversation_id}.mp4",
            width=video.width,
            height=video.height,
            fps=video.fps,
            fast=self.fast,
        )
        interactions = make_interactions(loaded, spec.conversation_id)
        self.interactions[spec.conversation_id] = interactions
        task = asyncio.create_task(
            run_pipeline_session(
                loaded,
                transport,
                events,
                fast=self.fast,
                recording_path=spec.recording_path,
                interactions=interactions,
                spec=spec,
            )
        )
        self.tasks[spec.conversation_id] = task
        return spec.conversation_id

    async def end(self, handle: str, reason: str) -> None:
        self.reasons[handle] = reason
        task = self.tasks[handle]
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def interact(self, conversation_id: str, message) -> str:
        from presence.service.launcher import submit_interaction

        return await submit_interaction(self.interactions.get(conversation_id), message)

    def join_app(self, conversation_id):
        return None


@contextlib.contextmanager
def serve_app(app, port: int) -> Iterator[str]:
    """Serve ``app`` with uvicorn (lifespan on) in a thread on 127.0.0.1:``port``; yields the URL."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="presence-test-service", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 90  # the forkserver imports pipecat and presence first
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


@contextlib.contextmanager
def process_service(tmp_path: Path, max_sessions: int) -> Iterator[tuple[str, Any, Receiver]]:
    """The service with the real ``ProcessLauncher`` on loopback ICE, and a webhook receiver."""
    from presence.service.app import create_app
    from presence.service.process_launcher import ProcessLauncher
    from presence.transports.webrtc import limit_ice_host_addresses

    previous = limit_ice_host_addresses(["127.0.0.1"])  # the users' side (this process)
    launcher = ProcessLauncher(ice_host_addresses=["127.0.0.1"])
    receiver = Receiver()
    receiver.up()
    port = free_port()
    settings = make_settings(
        tmp_path, max_sessions=max_sessions, public_url=f"http://127.0.0.1:{port}"
    )
    try:
        with serve_app(create_app(settings, launcher=launcher), port) as base:
            yield base, launcher, receiver
    finally:
        receiver.down()
        limit_ice_host_addresses(previous)
