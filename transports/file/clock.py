"""The media clock of a file session: time is the amount of user audio fed, not wall time.

The input feeder is the only thing that advances it (20 ms per chunk). In real-time mode the feeder
keeps it level with the wall clock; in fast mode it runs ahead through stretches whose content is
already known (the rest of the WAV, persona audio already written) and follows the wall clock
while the pipeline is working, so compute latencies keep their real length in the recording.
Everything the session records (MP4 timeline, transcript timings) is stamped with this clock.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_right

HISTORY = 8192


class SessionClock:
    """Session media time, in input samples since the start of the WAV.

    Args:
        sample_rate: Rate of the input audio that advances the clock.
    """

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = sample_rate
        self._samples = 0
        self._released = False
        self._changed: asyncio.Event | None = None
        self.bot_audio_until_s = 0.0
        """End of the persona audio already placed on the timeline, in seconds."""
        self.bot_speech_until_s = 0.0
        """End of the last audible persona audio (not a renderer's idle silence), in seconds."""
        self._seen = 0
        # (time.monotonic(), samples) after each advance, to answer "media time at instant t".
        self._walls: list[float] = []
        self._counts: list[int] = []
        self._seen_changed: asyncio.Event | None = None

    def now(self) -> float:
        """Seconds of media time elapsed since the session started."""
        return self._samples / self.sample_rate

    @property
    def samples(self) -> int:
        """Input samples fed so far."""
        return self._samples

    @property
    def released(self) -> bool:
        """True once the feeder has stopped: waits return at once from then on."""
        return self._released

    def advance(self, samples: int) -> None:
        """Move media time forward by ``samples`` input samples and wake waiters."""
        self._samples += samples
        self._walls.append(time.monotonic())
        self._counts.append(self._samples)
        if len(self._walls) > HISTORY:
            del self._walls[: HISTORY // 2], self._counts[: HISTORY // 2]
        self._notify()

    def at(self, monotonic_s: float) -> float:
        """Media time (seconds) as it was at the wall instant ``monotonic_s`` (``time.monotonic()``).

        Observers hear of a frame some time after it was pushed; this lets them stamp it with
        the media time of the push. Instants older than the kept history give its oldest entry.
        """
        i = bisect_right(self._walls, monotonic_s)
        if i >= len(self._walls):
            return self.now()
        return (self._counts[i - 1] if i > 0 else self._counts[0]) / self.sample_rate

    def release(self) -> None:
        """Stop the clock for good: every present and future wait returns immediately."""
        self._released = True
        self._notify()

    async def wait_until(self, t: float) -> None:
        """Wait until media time reaches ``t`` seconds (or the clock is released)."""
        while not self._released and self.now() < t:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def note_seen(self, samples: int) -> None:
        """Count ``samples`` of fed audio as having travelled through the whole pipeline."""
        self._seen += samples
        if self._seen_changed is not None:
            self._seen_changed.set()
            self._seen_changed = None

    async def wait_seen(self, timeout: float) -> bool:
        """Wait until all fed audio has been seen at the output, at most ``timeout`` seconds.

        Returns:
            True if it was; False on timeout (a processor may hold audio back, e.g. when muted).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._seen < self._samples and not self._released:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if self._seen_changed is None:
                self._seen_changed = asyncio.Event()
            try:
                await asyncio.wait_for(self._seen_changed.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None
