"""What a Python WebRTC user received (``Received``) and its 48 kHz audio helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

RATE = 48000
CHUNK = RATE // 50  # 20 ms
SILENCE_RMS = 1e-3  # full scale 1.0; decoded Opus silence is far below this, speech far above


@dataclass
class Received:
    """What the user received; times are ``time.monotonic()``."""

    video_times: list[float] = field(default_factory=list)
    video_size: tuple[int, int] | None = None
    last_video: Any = None  # the latest decoded frame (``av.VideoFrame``; ``to_ndarray()``)
    audio_chunks: list[np.ndarray] = field(default_factory=list)  # float32 mono, 48 kHz
    audio_times: list[float] = field(default_factory=list)  # arrival of each 20 ms window
    audio_rms: list[float] = field(default_factory=list)  # RMS of each 20 ms window
    messages: list[Any] = field(default_factory=list)  # data-channel messages (JSON decoded)
    keep_audio: bool = True  # keep the samples in ``audio_chunks`` (a long call: False)
    video_forgotten: int = 0  # entries dropped by ``forget``, so counts stay cumulative
    audio_forgotten: int = 0

    @property
    def video_count(self) -> int:
        """Video frames received since the call began (``forget`` included)."""
        return self.video_forgotten + len(self.video_times)

    @property
    def audio_count(self) -> int:
        """20 ms audio windows received since the call began (``forget`` included)."""
        return self.audio_forgotten + len(self.audio_times)

    def forget(self, before: float) -> None:
        """Drop what arrived before ``before`` and every message: bounded memory in a long call.

        Counts (``video_count``, ``audio_count``) stay cumulative; message indexes restart at 0.
        """
        video = sum(t < before for t in self.video_times)
        audio = sum(t < before for t in self.audio_times)
        del self.video_times[:video], self.audio_times[:audio], self.audio_rms[:audio]
        self.video_forgotten += video
        self.audio_forgotten += audio
        self.messages.clear()

    def frames_between(self, start: float, end: float) -> int:
        """Video frames that arrived in ``[start, end)``."""
        return sum(start <= t < end for t in self.video_times)

    def fps(self, start: float, end: float) -> float:
        """Received video frames per second in ``[start, end)``."""
        return self.frames_between(start, end) / max(end - start, 1e-6)

    def first_frame_after(self, start: float) -> float | None:
        """Seconds from ``start`` to the first video frame after it (``None``: none yet)."""
        later = [t for t in self.video_times if t >= start]
        return later[0] - start if later else None

    def audio(self) -> np.ndarray:
        """Every received audio sample, float32 mono at 48 kHz."""
        return np.concatenate(self.audio_chunks) if self.audio_chunks else np.zeros(0, np.float32)

    def audible(self, threshold: float = SILENCE_RMS * 10, windows: int = 10) -> bool:
        """At least ``windows`` 20 ms windows carried sound above ``threshold`` RMS."""
        return sum(r > threshold for r in self.audio_rms) >= windows

    def audio_stalls(self, min_gap: float = 0.1) -> list[tuple[float, float]]:
        """``(arrival time, seconds since the previous window)`` for each audio stall > min_gap."""
        t = self.audio_times
        return [(b, b - a) for a, b in zip(t, t[1:], strict=False) if b - a > min_gap]

    def audio_shortfall(self, start: float, end: float) -> float:
        """Seconds of audio missing in ``[start, end)``: wall time minus audio received then."""
        windows = sum(start <= t < end for t in self.audio_times)
        return (end - start) - windows * CHUNK / RATE


def read_wav(path: Path) -> np.ndarray:
    """An audio file (any the file transport takes: WAV, FLAC, OGG, MP3, …) as int16 mono at 48 kHz.

    Raises:
        InputError: The file is missing or is not audio libsndfile reads (see ``load_wav``).
    """
    from presence.transports.file.media import load_wav

    pcm, _ = load_wav(path, RATE)
    return pcm
