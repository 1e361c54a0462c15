"""What the renderer's clock measured: a plain record the processor fills as it pushes frames.

Read by the benchmark and tests; the processor only ever appends or increments, so a reader may
look at it at any time from the event loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

LATENESS_KEPT = 25 * 3600  # an hour of frames at 25 fps: a long call's record stays bounded


@dataclass
class RendererStats:
    """What the clock measured (read by the benchmark and tests).

    Attributes:
        frames: Video frames pushed.
        rendered: Frames drawn by the engine (the rest repeated the previous image).
        repeated: Frames that repeated the previous image because rendering fell behind.
        audio_samples: Audio samples of the frames pushed (speech and silence, ``filled`` included).
        speech_samples: Speech samples pushed.
        lateness_s: Per pushed frame, push time minus due time (real-time mode only); the
            last ``LATENESS_KEPT`` frames.
        late_frames: How many lateness values were ever recorded (``lateness_s`` keeps the last).
        first_speech_latency_s: First speech audio in → first speech audio out, per turn.
        cut: Idle frames cut short because speech started in their period (see ``clock.py``).
        filled: Idle silence samples not pushed because the sink played its own in a dry gap
            (see ``clock.py``); ``audio_samples`` counts them, as the output's timeline does.
        fills: ``(frame, samples)`` per fill, the frame 0-based in push order; the last
            ``LATENESS_KEPT``.
        repeats: ``(time.monotonic(), speaking)`` per repeated frame, when it was pushed and
            whether it was a speaking frame; the last ``LATENESS_KEPT``.
        pauses: Times speech was paused by a ``SpeechPauseFrame``.
    """

    frames: int = 0
    rendered: int = 0
    repeated: int = 0
    audio_samples: int = 0
    speech_samples: int = 0
    lateness_s: deque[float] = field(default_factory=lambda: deque(maxlen=LATENESS_KEPT))
    late_frames: int = 0
    first_speech_latency_s: list[float] = field(default_factory=list)
    cut: int = 0
    filled: int = 0
    fills: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=LATENESS_KEPT))
    repeats: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=LATENESS_KEPT))
    pauses: int = 0

    def add_fill(self, frame: int, samples: int) -> None:
        """Record ``samples`` of frame ``frame``'s silence that the sink filled in a dry gap."""
        self.filled += samples
        self.fills.append((frame, samples))
