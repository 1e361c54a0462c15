"""Perception benchmark: engine cost per sampled frame and audio-path lateness with perception on.

``run_perception_benchmark()`` measures two things and returns them as a dict (``print_report``
draws a rich table):

1. **Engine** — ``HaarEngine.analyze`` on a scripted clip of a real face (the public-domain NASA
   portrait ``skimage.data.astronaut()``: on camera, off camera, off to the side), at 320x240 and
   at 640x480 (shrunk to 320 inside the engine), called as the processor calls it ("tracked") and
   in the worst case ("cold": full search with profile passes every time). Target: <= 30 ms per
   sampled frame at 320x240.
2. **Audio path** — a pipecat pipeline ``source -> [PerceptionProcessor] -> sink`` fed with 20 ms
   ``InputAudioRawFrame``s paced on the wall clock and 25 fps ``UserImageRawFrame``s. The sink
   records how late each audio frame arrives against its schedule, with perception off and on.
   Target: perception does not make the audio path stall (p99/max lateness close to "off").

``scripted_clip`` is also what the tests animate.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
from pipecat.frames.frames import EndFrame, Frame, InputAudioRawFrame, UserImageRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from presence.framework.optional import require
from presence.processors.perception.engines.events import PerceptionTracker
from presence.processors.perception.engines.opencv import HaarEngine
from presence.processors.perception.processor import PerceptionProcessor

#: Default scripted clip: (segment kind, seconds).
DEFAULT_SCRIPT = (("present", 4.0), ("absent", 3.0), ("side", 3.0))
SEGMENT_KINDS = ("present", "absent", "side", "dark", "covered", "nod")


def _portrait() -> tuple[np.ndarray, np.ndarray]:
    """(head-and-shoulders crop 240x240 with the face centred, face-free background 320x240)."""
    import cv2

    data = require("skimage.data", extra="dev", package="scikit-image")
    image = data.astronaut()  # 512x512 RGB, face at about x 177-272, y 66-161
    head = np.ascontiguousarray(image[0:240, 104:344])
    background = cv2.resize(image[272:512, 192:512], (320, 240), interpolation=cv2.INTER_AREA)
    return head, background


def scripted_clip(
    script=DEFAULT_SCRIPT, *, fps: int = 25, size: tuple[int, int] = (320, 240), seed: int = 0
) -> tuple[list[np.ndarray], list[tuple[str, float, float]]]:
    """Animate the portrait into RGB frames following ``script``.

    Segment kinds: ``present`` (face centred, gentle sway), ``absent`` (background only),
    ``side`` (face pushed to the left edge), ``dark`` (all black), ``covered`` (a lens under a
    finger: lit, reddish and featureless), ``nod`` (face bobbing up and down at 1.25 Hz). Every
    frame but the black ones gets mild sensor noise.

    Returns:
        ``(frames, segments)`` with segments as ``(kind, start_s, end_s)``.
    """
    import cv2

    head, background = _portrait()
    rng = np.random.default_rng(seed)
    frames: list[np.ndarray] = []
    segments: list[tuple[str, float, float]] = []
    t = 0.0
    for kind, seconds in script:
        if kind not in SEGMENT_KINDS:
            raise ValueError(f"unknown segment {kind!r}; use one of {', '.join(SEGMENT_KINDS)}")
        count = round(seconds * fps)
        segments.append((kind, t, t + count / fps))
        for _ in range(count):
            phase = (len(frames) / fps) * 2 * np.pi
            frame = background.copy()
            if kind == "dark":
                frame[:] = 0
            elif kind == "covered":
                frame[:] = (170, 95, 80)
            elif kind != "absent":
                ox = (40 if kind != "side" else -60) + round(2 * np.sin(phase * 0.5))
                oy = round(12 * np.sin(phase * 1.25)) if kind == "nod" else 0
                _paste(frame, head, ox, oy)
            if kind != "dark":
                noise = rng.normal(0, 3, frame.shape)
                frame = np.clip(frame + noise, 0, 255).astype(np.uint8)
            if (frame.shape[1], frame.shape[0]) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            frames.append(frame)
        t += count / fps
    return frames, segments


def _paste(frame: np.ndarray, patch: np.ndarray, ox: int, oy: int) -> None:
    h, w = frame.shape[:2]
    ph, pw = patch.shape[:2]
    x0, x1, y0, y1 = max(0, ox), min(w, ox + pw), max(0, oy), min(h, oy + ph)
    if x0 < x1 and y0 < y1:
        frame[y0:y1, x0:x1] = patch[y0 - oy : y1 - oy, x0 - ox : x1 - ox]


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    return {
        "p50": round(float(np.percentile(arr, 50)), 2),
        "p95": round(float(np.percentile(arr, 95)), 2),
        "p99": round(float(np.percentile(arr, 99)), 2),
        "max": round(float(arr.max()), 2),
        "n": int(arr.size),
    }


def bench_engine(size: tuple[int, int] = (320, 240), every: int = 5) -> dict[str, dict[str, float]]:
    """Time ``HaarEngine.analyze`` on every ``every``-th frame of the default clip at ``size``.

    Returns:
        ``{"tracked": stats, "cold": stats}``: *tracked* calls the engine as the processor does
        (previous face as a hint, no profile search while the user is absent); *cold* is the
        worst case (full-frame search with profile passes on every frame).
    """
    engine = HaarEngine()
    frames, _ = scripted_clip(size=size)
    engine.analyze(frames[0])  # warm-up
    sampled = frames[::every]
    cold, tracked = [], []
    for frame in sampled:
        start = time.perf_counter()
        engine.analyze(frame)
        cold.append((time.perf_counter() - start) * 1000)
    tracker, hint = PerceptionTracker(), None
    for i, frame in enumerate(sampled):
        start = time.perf_counter()
        obs = engine.analyze(frame, search_profile=tracker.state("present") is not False, hint=hint)
        tracked.append((time.perf_counter() - start) * 1000)
        hint = obs.face if obs.frontal else None
        tracker.update(i * every / 25, obs)
    return {"tracked": _stats(tracked), "cold": _stats(cold)}


class _LatenessSink(FrameProcessor):
    """Records how late each paced audio frame arrives (scheduled time in ``metadata``)."""

    def __init__(self):
        super().__init__()
        self.lateness_ms: list[float] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and "due" in frame.metadata:
            self.lateness_ms.append((time.perf_counter() - frame.metadata["due"]) * 1000)
        await self.push_frame(frame, direction)


async def bench_audio_path(
    perception: bool, *, seconds: float = 8.0, fps: int = 25, size=(320, 240), every_ms: int = 200
) -> dict[str, Any]:
    """Pace 20 ms audio frames and ``fps`` camera frames through a pipeline; return lateness."""
    frames, _ = scripted_clip(DEFAULT_SCRIPT, fps=fps, size=size)
    images = [f.tobytes() for f in frames]
    sink = _LatenessSink()
    processor = PerceptionProcessor(engine=HaarEngine(), every_ms=every_ms) if perception else None
    stages = [processor, sink] if processor else [sink]
    worker = PipelineWorker(
        Pipeline(stages), params=PipelineParams(), cancel_on_idle_timeout=False, enable_rtvi=False
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(_worker, _frame):
        started.set()

    silence = bytes(320 * 2)  # 20 ms at 16 kHz, mono s16

    async def pace():
        await asyncio.wait_for(started.wait(), timeout=5)
        t0 = time.perf_counter() + 0.05
        audio_n, video_n = round(seconds / 0.02), round(seconds * fps)
        events = sorted(
            [(t0 + i * 0.02, 0, i) for i in range(audio_n)]
            + [(t0 + i / fps, 1, i) for i in range(video_n)]
        )
        for due, kind, i in events:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == 0:
                frame = InputAudioRawFrame(audio=silence, sample_rate=16000, num_channels=1)
                frame.metadata["due"] = due
            else:
                frame = UserImageRawFrame(image=images[i % len(images)], size=size, format="RGB")
            await worker.queue_frame(frame)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), pace())
    result: dict[str, Any] = {"lateness_ms": _stats(sink.lateness_ms)}
    if processor is not None:
        analysis = processor.analysis()
        result["samples"] = analysis["samples"]
        result["dropped"] = analysis["dropped"]
        result["engine_ms"] = analysis["engine_ms"]
    return result


def run_perception_benchmark(
    *, seconds: float = 8.0, every_ms: int = 200, fps: int = 25, quiet: bool = False
) -> dict[str, Any]:
    """Run both measurements; return ``{"engine": {...}, "audio": {"off": ..., "on": ...}}``.

    Args:
        seconds: Length of each paced audio-path run.
        every_ms: Perception sampling period in the "on" run.
        fps: Camera frame rate fed to the pipeline.
        quiet: Do not print the rich table.
    """
    report: dict[str, Any] = {
        "engine": {
            "320x240": bench_engine((320, 240)),
            "640x480": bench_engine((640, 480)),
            "target_ms": 30,
        },
        "audio": {
            "off": asyncio.run(bench_audio_path(False, seconds=seconds, fps=fps)),
            "on": asyncio.run(bench_audio_path(True, seconds=seconds, fps=fps, every_ms=every_ms)),
        },
        "settings": {"seconds": seconds, "every_ms": every_ms, "camera_fps": fps},
    }
    if not quiet:
        print_report(report)
    return report


def print_report(report: dict[str, Any]) -> None:
    """Draw the benchmark report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    target = report["engine"]["target_ms"]
    engine = Table(title=f"perception engine, ms per frame (target <= {target})")
    for col in ("input", "p50", "p95", "p99", "max", "n"):
        engine.add_column(col, justify="right")
    for size in ("320x240", "640x480"):
        for mode in ("tracked", "cold"):
            s = report["engine"][size][mode]
            engine.add_row(
                f"{size} {mode}", *(str(s[k]) for k in ("p50", "p95", "p99", "max", "n"))
            )
    audio = Table(title="audio path lateness, ms (20 ms frames + 25 fps camera)")
    for col in ("perception", "p50", "p95", "p99", "max", "n", "samples", "dropped"):
        audio.add_column(col, justify="right")
    for mode in ("off", "on"):
        r = report["audio"][mode]
        s = r["lateness_ms"]
        audio.add_row(
            mode,
            *(str(s[k]) for k in ("p50", "p95", "p99", "max", "n")),
            str(r.get("samples", "-")),
            str(r.get("dropped", "-")),
        )
    console = Console()
    console.print(engine)
    console.print(audio)


if __name__ == "__main__":
    import sys

    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    run_perception_benchmark()
