"""One deterministic conversation over files: a WAV in, an MP4 and a JSON report out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
from pipecat.observers.base_observer import BaseObserver
from pipecat.processors.frame_processor import FrameProcessor

from presence.framework.builder import build_session
from presence.framework.config import LoadedPipeline
from presence.framework.runtime import run_worker
from presence.transports.file.transport import FileTransport


def _portrait(loaded: LoadedPipeline) -> np.ndarray | None:
    """The persona's portrait as RGB, shown until the renderer's first frame (None if unreadable)."""
    replica = loaded.persona.replica
    if replica is None or not replica.is_file():
        return None
    image = cv2.imread(str(replica), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


async def run_file_session(
    loaded: LoadedPipeline,
    input_wav: Path,
    output_mp4: Path,
    *,
    camera: Path | None = None,
    fast: bool = False,
    greet: bool = False,
    observers: Sequence[BaseObserver] = (),
    insert: Mapping[str, Sequence[FrameProcessor]] | None = None,
) -> dict:
    """Run ``loaded`` with ``input_wav`` as the user's microphone and record the persona.

    The run ends by itself once the persona has answered and stayed quiet (see ``FileTransport``).

    Args:
        loaded: The validated pipeline; its transport block is ignored except for video settings.
        input_wav: The user's audio (any file libsndfile reads; resampled/downmixed as needed).
        output_mp4: Where the persona's audio and video go; ``<stem>.json`` is written beside it.
        camera: Optional ``.y4m``/``.mp4`` clip used as the user's camera.
        fast: Feed the input faster than real time where the pipeline allows.
        greet: Have the persona say its greeting first (off by default: the WAV is the user's side
            of a call that starts at t=0, and a greeting would be talked over).
        observers: Extra observers attached to the worker (e.g. a benchmark's), after the
            transport's transcript observer.
        insert: Extra processors by insert point (see ``build_session``).

    Returns:
        The report written to ``<stem>.json`` (transcript, per-turn timings, media metadata).

    Raises:
        InputError: The WAV, the camera clip or the output path is unusable.
    """
    video = getattr(loaded.transport, "video", None)
    transport = FileTransport(
        input_wav,
        output_mp4,
        camera=camera,
        width=video.width if video else 512,
        height=video.height if video else 512,
        fps=video.fps if video else 25,
        fast=fast,
        poster=_portrait(loaded),
    )
    session = build_session(
        loaded,
        transport,
        fast=fast,
        observers=[transport.observer, *observers],
        idle_timeout_secs=None,
        extras={"camera_fps": transport.camera_fps} if transport.camera_fps else None,
        insert=insert,
    )
    perception = session.stages.get("perception")
    if perception is not None and hasattr(perception, "analysis"):
        transport.report_sections["perception"] = perception.analysis
    if greet:
        await session.greet()
    await run_worker(session)
    return json.loads(transport.report_path.read_text())
