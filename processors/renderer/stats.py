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
        audio_samples: Audio samples pushed (speech and silence).
        speech_samples: Speech samples pushed.
        lateness_s: Per pushed frame, push time minus due time (real-time mode only); the
            last ``LATENESS_KEPT`` frames.
        late_frames: How many lateness values were ever recorded (``lateness_s`` keeps the last).
        first_speech_latency_s: First speech audio in → first speech audio out, per turn.
        cut: Idle frames cut short because speech started in their period (see ``clock.py``).
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
