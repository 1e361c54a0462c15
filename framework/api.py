"""The public API behind ``import presence``: load a pipeline file, and run it wherever you like.

``PresencePipeline`` is one validated pipeline file (plus overrides). It builds a pipecat pipeline
for any transport you hand it, runs over files, serves its browser page, and benchmarks itself::

    import presence

    pipeline = presence.load_pipeline("pipelines/local.yaml", overrides={"stages.tts.provider": "espeak"})
    report = pipeline.run_file("question.wav", "answer.mp4", fast=True)
    session = pipeline.build(my_transport)          # a pipecat PipelineWorker in session.worker

Nothing here is global: each call loads and builds its own objects, so two pipelines (or two
sessions of one) never share state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipecat.observers.base_observer import BaseObserver
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import BaseTransport, TransportParams

from presence.framework.builder import Session, build_session
from presence.framework.config import (
    LoadedPipeline,
    override_strings,
    resolve_pipeline_path,
)
from presence.framework.config import load_pipeline as _load_file
from presence.framework.errors import ConfigError

Overrides = Sequence[str] | Mapping[str, Any]
"""``["stages.tts.provider=espeak"]`` (as ``--set``) or ``{"stages.tts.provider": "espeak"}``."""

BENCHMARKS = ("latency", "conversation")


class PresencePipeline:
    """A validated pipeline file: build it for a transport, run it over files, serve it, bench it.

    Get one with ``presence.load_pipeline``. Every method builds fresh processors, so one
    ``PresencePipeline`` can serve many sessions, one after another or at once.

    Example::

        pipeline = presence.load_pipeline("local", overrides=["stages.renderer.provider=still"])
        print(pipeline.name, pipeline.providers)   # local {'stt': 'whisper', ...}
        pipeline.serve(port=7860)                  # the browser page; one session per tab
    """

    def __init__(self, loaded: LoadedPipeline, overrides: Sequence[str] = ()):
        self._loaded = loaded
        self._overrides = list(overrides)

    # ------------------------------------------------------------------ what it is

    @property
    def loaded(self) -> LoadedPipeline:
        """The validated file (spec, persona, resolved stages and inserts, transport spec)."""
        return self._loaded

    @property
    def name(self) -> str:
        """The pipeline's ``name:``."""
        return self._loaded.spec.name

    @property
    def source(self) -> Path:
        """The pipeline file (absolute)."""
        return self._loaded.source

    @property
    def overrides(self) -> list[str]:
        """The overrides it was loaded with, as ``PATH=VALUE`` strings."""
        return list(self._overrides)

    @property
    def persona(self):
        """The loaded persona (``presence.framework.persona.Persona``)."""
        return self._loaded.persona

    @property
    def providers(self) -> dict[str, str]:
        """Provider name of each stage, in data-path order."""
        return {stage: cfg.provider.name for stage, cfg in self._loaded.stages.items()}

    @property
    def transport(self) -> Any:
        """The validated ``transport:`` block (``presence.transports.factory`` specs)."""
        return self._loaded.transport

    def video(self) -> tuple[int, int, int]:
        """``(width, height, fps)`` of the persona's video (512, 512, 25 when the transport has none)."""
        video = getattr(self._loaded.transport, "video", None)
        return (video.width, video.height, video.fps) if video else (512, 512, 25)

    def __repr__(self) -> str:
        return f"PresencePipeline({self.name!r}, source={str(self.source)!r})"

    # ------------------------------------------------------------------ building

    def build(
        self,
        transport: BaseTransport,
        *,
        observers: Sequence[BaseObserver] = (),
        insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
        idle_timeout_secs: float | None = None,
        enable_rtvi: bool | None = None,
        fast: bool = False,
    ) -> Session:
        """Build the pipecat pipeline and worker for one conversation over ``transport``.

        Args:
            transport: Any pipecat transport (its params should come from ``transport_params``
                so the face reaches the user in step with the voice).
            observers: Extra pipecat observers for the worker.
            insert: Your own processors by insert point (``after_stt``, ``before_tts``,
                ``after_renderer``, ...; see ``presence.framework.custom.INSERT_POINTS``).
            idle_timeout_secs: Cancel the worker after this long without activity (None: never).
            enable_rtvi: Force RTVI on or off (None: pipecat's default, on).
            fast: The transport feeds media faster than real time (offline renders).

        Returns:
            The ``Session``: ``session.worker`` (a pipecat ``PipelineWorker``) to run,
            ``session.pipeline``, ``session.context``, ``session.stages``, ``session.greet()``.

        Raises:
            ConfigError: A stage or inserted processor built something that is not a processor.

        Example::

            session = pipeline.build(transport, insert={"before_tts": [MyFilter()]})
            runner = WorkerRunner(handle_sigint=False)
            await runner.add_workers(session.worker)
            await runner.run()
        """
        return build_session(
            self._loaded,
            transport,
            fast=fast,
            observers=observers,
            idle_timeout_secs=idle_timeout_secs,
            enable_rtvi=enable_rtvi,
            insert=insert,
        )

    def transport_params(self, kind: str = "webrtc", **overrides: Any) -> TransportParams:
        """Params for a pipecat transport that carries this pipeline's face and voice in step.

        Args:
            kind: ``webrtc`` (SmallWebRTC), ``daily`` (``DailyParams``) or ``eval`` (pipecat's
                eval harness; audio only).
            **overrides: Any other ``TransportParams`` field.

        Example::

            transport = WebRTCTransport(connection, pipeline.transport_params("webrtc"))
        """
        from presence.framework.stages import transport_params

        width, height, fps = self.video()
        camera_fps = getattr(self._loaded.transport, "camera_fps", 0)
        return transport_params(
            width=width, height=height, fps=fps, kind=kind, camera_fps=camera_fps, **overrides
        )

    # ------------------------------------------------------------------ running

    async def run(
        self,
        transport: BaseTransport,
        *,
        observers: Sequence[BaseObserver] = (),
        insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
        greet: bool = True,
        idle_timeout_secs: float | None = None,
        handle_sigint: bool = False,
        on_built: Callable[[Session], None] | None = None,
    ) -> Session:
        """Run one conversation over a live transport until the participant leaves.

        The persona greets when the first participant connects (``greet``) and the session ends
        when they disconnect.

        Args:
            transport: A live pipecat transport (SmallWebRTC, Daily, WebSocket, ...).
            observers: Extra pipecat observers.
            insert: Your own processors by insert point (see ``build``).
            greet: Say the persona's greeting when the participant connects.
            idle_timeout_secs: Cancel after this long without activity (None: never).
            handle_sigint: Let pipecat's runner end the session on Ctrl-C.
            on_built: Called with the session before it runs.

        Returns:
            The finished session.

        Example::

            await pipeline.run(DailyTransport(room_url, token, "presence", pipeline.transport_params("daily")))
        """
        from pipecat.workers.runner import WorkerRunner

        from presence.framework.runtime import greet_on_connect, hang_up_on_disconnect

        session = self.build(
            transport, observers=observers, insert=insert, idle_timeout_secs=idle_timeout_secs
        )
        if greet:
            greet_on_connect(session, transport)
        hang_up_on_disconnect(session, transport)
        if on_built is not None:
            on_built(session)
        runner = WorkerRunner(handle_sigint=handle_sigint)
        await runner.add_workers(session.worker)
        await runner.run()
        return session

    async def arun_file(
        self,
        input_wav: str | Path,
        output_mp4: str | Path,
        *,
        camera: str | Path | None = None,
        fast: bool = False,
        greet: bool = False,
        observers: Sequence[BaseObserver] = (),
        insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
    ) -> dict[str, Any]:
        """Async form of ``run_file`` (use it inside a running event loop)."""
        from presence.transports.file.session import run_file_session

        return await run_file_session(
            self._loaded,
            Path(input_wav),
            Path(output_mp4),
            camera=Path(camera) if camera is not None else None,
            fast=fast,
            greet=greet,
            observers=observers,
            insert=insert,
        )

    def run_file(
        self,
        input_wav: str | Path,
        output_mp4: str | Path,
        *,
        camera: str | Path | None = None,
        fast: bool = False,
        greet: bool = False,
        observers: Sequence[BaseObserver] = (),
        insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
    ) -> dict[str, Any]:
        """One conversation over files: ``input_wav`` is the user, the persona goes to ``output_mp4``.

        Args:
            input_wav: The user's microphone (WAV, FLAC, OGG, MP3…; any rate, mono or stereo).
            output_mp4: The persona's video and voice (H.264 + AAC); ``<stem>.json`` beside it.
            camera: Optional ``.y4m``/``.mp4`` used as the user's camera.
            fast: Feed the input faster than real time where the pipeline allows.
            greet: Have the persona say its greeting first.
            observers: Extra pipecat observers.
            insert: Your own processors by insert point (see ``build``).

        Returns:
            The JSON report: ``turns`` (the transcript), ``timings`` per turn, media metadata.

        Raises:
            InputError: The WAV, camera clip or output path is unusable.

        Example::

            report = presence.load_pipeline("local").run_file("q.wav", "a.mp4", fast=True)
            print([t["content"] for t in report["turns"]])
        """
        coro = self.arun_file(
            input_wav,
            output_mp4,
            camera=camera,
            fast=fast,
            greet=greet,
            observers=observers,
            insert=insert,
        )
        return asyncio.run(coro)

    async def aserve(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        """Async form of ``serve``."""
        from presence.framework import runtime

        kind = getattr(self._loaded.transport, "kind", "webrtc")
        if kind == "file":
            raise ConfigError(
                "this pipeline's transport is 'file': use run_file(input_wav, output_mp4)",
                source=str(self.source),
                field="transport.kind",
            )
        if kind == "webrtc":
            await runtime.serve_browser(self._loaded, host=host, port=port, on_ready=on_ready)
        else:
            await runtime.run_single_transport(self._loaded)

    def serve(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        """Serve the pipeline until cancelled: the browser page (``webrtc``), or join its room.

        ``webrtc`` serves presence's page and runs one session per browser tab; ``daily``,
        ``websocket`` and ``local`` run one session over the transport the file describes.

        Args:
            host: Interface for the page (default: the file's, else 127.0.0.1).
            port: Port for the page (default: the file's, else 7860; 0 picks a free one).
            on_ready: Called with the page URL once it accepts connections.

        Raises:
            ConfigError: The transport is ``file`` (use ``run_file``) or cannot be built.

        Example::

            presence.load_pipeline("local").serve(port=7860, on_ready=print)
        """
        asyncio.run(self.aserve(host=host, port=port, on_ready=on_ready))

    def benchmark(self, kind: str = "latency", **kwargs: Any) -> dict[str, Any]:
        """Run a benchmark on this pipeline file (with its overrides) and return the report.

        Args:
            kind: ``latency`` (scripted users, per-stage p50/p95/p99, vs plain pipecat; see
                ``presence.benchmarks.latency.runner.run_latency_benchmark``) or
                ``conversation`` (spoken questions: word error, answered right, latency).
            **kwargs: That benchmark's options, e.g. ``turns=5``, ``json_path="r.json"``,
                ``plot_path="r.png"``, ``baseline=False``.

        Returns:
            The report (also written to ``json_path`` when given).

        Raises:
            ConfigError: Unknown ``kind``, or the file or an option is wrong.

        Example::

            report = presence.load_pipeline("benchmarks/latency/scripted.yaml").benchmark(turns=3)
            print(report["summary"]["voice_to_voice_ms"]["p50"])
        """
        overrides = kwargs.pop("overrides", None)
        merged = self._overrides + override_strings(overrides)
        if kind == "latency":
            from presence.benchmarks.latency.runner import run_latency_benchmark

            return run_latency_benchmark(self.source, overrides=merged, **kwargs)
        if kind == "conversation":
            from presence.benchmarks.conversation.runner import run_conversation_benchmark

            return run_conversation_benchmark(self.source, merged, **kwargs)
        raise ConfigError(f"unknown benchmark {kind!r}; benchmarks are: {', '.join(BENCHMARKS)}")


def load_pipeline(path: str | Path, overrides: Overrides | None = None) -> PresencePipeline:
    """Load and validate a pipeline file (and its persona) before anything starts.

    Args:
        path: A pipeline YAML, or the name of a bundled one (``"local"``, ``"cloud"``,
            ``"byo-llm"``).
        overrides: Field overrides by dotted path, exactly like ``--set`` on the command line:
            ``["stages.tts.provider=espeak"]`` or ``{"stages.tts": {"provider": "espeak"}}``.

    Returns:
        The validated ``PresencePipeline``.

    Raises:
        ConfigError: The file, its persona or an override is wrong; the message names the file,
            the field and the fix (``MissingSecretError`` names an unset ``${VAR}``).

    Example::

        pipeline = presence.load_pipeline("local", {"stages.renderer": {"provider": "still"}})
    """
    strings = override_strings(overrides)
    loaded = _load_file(resolve_pipeline_path(path), strings)
    return PresencePipeline(loaded, strings)
