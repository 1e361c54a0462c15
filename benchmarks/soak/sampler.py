"""Per-interval samples of one live call: the process, the renderer's clock, what the user got.

A ``Sampler`` reads, without touching the pipeline, at each ``sample()``:

* the process (``psutil``): resident memory, open file descriptors, OS threads, and the event
  loop's asyncio tasks (the WebRTC user runs in the same process and loop: its share is constant);
  of the OS threads, ``thread_groups`` counts the Python ones by name (a pool's workers share one:
  ``ThreadPoolExecutor-0``) and ``native`` the rest (the runtimes' own: CTranslate2, onnxruntime,
  codecs), so a count that moves says whose threads moved; ``native_threads`` names those by
  their OS name (``/proc/self/task/*/comm``, Linux only);
* the renderer (``RendererProcessor.stats``): frames pushed, frames repeated because drawing fell
  behind, lateness of each push against its due time, and A/V drift — audio samples pushed minus
  the samples the pushed frames span, in frames (0 means each frame carried exactly its period);
* the user (``WebRTCUser.received``): video frames and 20 ms audio windows that arrived;
* the WebRTC output (``presence.transports.webrtc.output``), when given: the audio waiting in the
  output transport's queue and in its track (``output_backlog_s``: how late the user hears what
  the renderer pushed; read from pipecat's internals) and the idle silence it dropped to catch up;
* the session's idle memory trim (``IdleMemoryTrim``), when it has one: trims so far and the
  longest since the previous sample (a trim holds the allocator's locks while it runs);
* Python's cyclic garbage collector (``gc.callbacks``): full (oldest-generation) collections so
  far and the longest collection of any generation since the previous sample (a collection holds
  the GIL, so neither the event loop nor the render thread runs meanwhile).

``frames_short`` is the frames the wall clock called for since time zero minus those pushed
(repeats count as pushed); ``client_missing_frames`` the frames pushed since time zero that never
reached the user, less half a second in flight.

Counters are cumulative; ``Sample`` also holds what changed since the previous sample.
"""

from __future__ import annotations

import asyncio
import gc
import re
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pipecat.frames.frames import OutputAudioRawFrame

from presence.framework.optional import require


@dataclass
class Sample:
    """One reading. ``t_s``: seconds since the call's first video frame."""

    t_s: float
    rss_mb: float
    fds: int
    threads: int
    tasks: int
    frames: int
    repeated: int
    frames_short: int
    lateness_ms_p50: float | None
    lateness_ms_p99: float | None
    lateness_ms_max: float | None
    drift_frames: float
    client_video_frames: int
    client_audio_s: float
    client_missing_frames: int
    questions: int
    answers: int
    trims: int = 0
    trim_ms_max: float | None = None
    gc_full: int = 0
    gc_ms_max: float | None = None
    quiet: bool = False  # taken between turns (see the runner's ``QUIET_WAIT_S``)
    thread_groups: dict[str, int] | None = None
    native_threads: dict[str, int] | None = None
    output_backlog_s: float | None = None
    silence_dropped_s: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)


class Sampler:
    """Reads the process, a ``RendererProcessor`` and a ``WebRTCUser`` (see module doc).

    Args:
        renderer: The call's ``RendererProcessor`` (its ``stats`` and ``engine``).
        received: The user's ``Received`` record.
        start: ``time.monotonic()`` of the first video frame (time zero).
        trim: The session's ``IdleMemoryTrim`` (None: not sampled).
    """

    def __init__(
        self, renderer: Any, received: Any, start: float, trim: Any = None, output: Any = None
    ):
        require("psutil", extra="bench")
        import psutil

        self._process = psutil.Process()
        self._renderer = renderer
        self._output = output
        self._received = received
        self._start = start
        self._fps = renderer.engine.fps
        self._rate = renderer.engine.sample_rate
        self._late_from = renderer.stats.late_frames
        self._frames0 = renderer.stats.frames
        self._video0 = received.video_count
        self.questions = 0
        self.answers = 0
        self._trim = trim
        self._trims_seen = 0
        self._gc = GcPauses()

    def drift_frames(self) -> float:
        """Audio pushed by the renderer minus the span of its frames, in frames."""
        st = self._renderer.stats
        return st.audio_samples * self._fps / self._rate - st.frames

    def sample(self, *, quiet: bool = False) -> Sample:
        """Read everything now (call it from the event loop); ``quiet``: between turns."""
        now = time.monotonic()
        st, got = self._renderer.stats, self._received
        new = min(st.late_frames - self._late_from, len(st.lateness_s))
        late = np.array(list(st.lateness_s)[len(st.lateness_s) - new :]) * 1000
        self._late_from = st.late_frames
        elapsed = now - self._start
        pushed = st.frames - self._frames0
        in_flight = self._fps // 2  # frames pushed within the last half second may still travel
        missing = max(0, pushed - (got.video_count - self._video0) - in_flight)
        with self._process.oneshot():
            rss = self._process.memory_info().rss / 2**20
            fds = self._process.num_fds()
            threads = self._process.num_threads()
        groups = thread_groups()
        groups["native"] = max(0, threads - sum(groups.values()))  # one may end between reads

        def pct(q: float) -> float | None:
            return round(float(np.percentile(late, q)), 2) if late.size else None

        return Sample(
            t_s=round(elapsed, 2),
            rss_mb=round(rss, 1),
            fds=fds,
            threads=threads,
            tasks=len(asyncio.all_tasks()),
            frames=st.frames,
            repeated=st.repeated,
            frames_short=round(elapsed * self._fps) - pushed,
            lateness_ms_p50=pct(50),
            lateness_ms_p99=pct(99),
            lateness_ms_max=round(float(late.max()), 2) if late.size else None,
            drift_frames=round(self.drift_frames(), 3),
            client_video_frames=got.video_count,
            client_audio_s=round(got.audio_count * 0.02, 2),
            client_missing_frames=missing,
            questions=self.questions,
            answers=self.answers,
            **self._trims(),
            **self._gc.read(),
            quiet=quiet,
            thread_groups=groups,
            native_threads=native_thread_names(),
            output_backlog_s=output_backlog_s(self._output, self._rate),
            silence_dropped_s=getattr(self._output, "silence_dropped_s", None),
        )

    def close(self) -> None:
        """Stop timing garbage collections."""
        self._gc.close()

    def _trims(self) -> dict[str, Any]:
        if self._trim is None:
            return {}
        new = self._trim.trims - self._trims_seen
        self._trims_seen = self._trim.trims
        recent = self._trim.trim_ms[-new:] if new > 0 else []
        return {"trims": self._trim.trims,
                "trim_ms_max": round(max(recent), 2) if recent else None}  # fmt: skip


def thread_groups() -> dict[str, int]:
    """This process's Python threads, counted by name without a worker's number, sorted."""
    names = Counter(re.sub(r"[_-]\d+$", "", t.name) for t in threading.enumerate())
    return dict(sorted(names.items()))


def output_backlog_s(output: Any, rate: int) -> float | None:
    """Audio queued in a pipecat output transport and its WebRTC track, in seconds.

    Reads pipecat 1.14's internals (the media senders' audio queues, ``RawAudioTrack``'s chunk
    queue); ``None`` when there is no output or they are not where this expects them.
    """
    if output is None:
        return None
    try:
        queued = sum(
            len(f.audio)
            for sender in output._media_senders.values()
            for f in list(sender._audio_queue._queue)
            if isinstance(f, OutputAudioRawFrame)
        )
        track = output._client._audio_output_track
        in_track = sum(len(chunk) for chunk, _ in list(track._chunk_queue)) if track else 0
    except AttributeError:
        return None
    return round((queued + in_track) / 2 / rate, 3)


def native_thread_names() -> dict[str, int]:
    """The other threads (the runtimes' own), counted by their OS name without a number.

    Read from ``/proc/self/task/*/comm`` (Linux; empty elsewhere). A runtime names its threads
    (``ort``/onnxruntime pools, the video codec's workers), so a moving count says whose moved.
    """
    python = {t.native_id for t in threading.enumerate()}
    names: Counter[str] = Counter()
    for task in Path("/proc/self/task").glob("*"):
        try:
            if int(task.name) in python:
                continue
            names[re.sub(r"[_:-]?\d+$", "", (task / "comm").read_text().strip())] += 1
        except (OSError, ValueError):  # the thread ended between the listing and the read
            continue
    return dict(sorted(names.items()))


class GcPauses:
    """Times the cyclic garbage collector's collections from now until ``close``."""

    def __init__(self) -> None:
        self.full = 0
        self._longest_ms = 0.0
        self._began: float | None = None
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        if self._began is not None:
            self._longest_ms = max(self._longest_ms, (time.perf_counter() - self._began) * 1000)
            self._began = None
        self.full += info.get("generation") == 2

    def read(self) -> dict[str, Any]:
        """Full collections so far and the longest collection since the last read (or None)."""
        longest, self._longest_ms = self._longest_ms, 0.0
        return {"gc_full": self.full, "gc_ms_max": round(longest, 2) if longest else None}

    def close(self) -> None:
        """Remove the callback (idempotent)."""
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
