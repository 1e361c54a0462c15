"""``IdleMemoryTrim``: a quiet session hands its freed native memory back to the system.

A turn's native runtimes (Whisper's decode, Piper's synthesis, smart-turn) allocate and free tens
of MiB; glibc keeps most freed pages mapped, so a session's resident memory between turns was
whatever its last turns left, and varied by ±5 % from one quiet moment to the next in a long call.
Once the persona has stopped speaking and neither the user nor the persona has started again for
``delay_s``, this observer calls ``release_freed_memory`` in a worker thread; the next turn maps
fresh pages as it needs them. It watches frames only; no pipecat processor is touched.

A trim takes 13–35 ms in a warm call and holds each malloc arena's lock while it walks it, so a
video frame drawn meanwhile can now and then miss its 40 ms (``benchmarks/results/SOAK.md``,
seventh and eighth passes: about one repeated frame in nine trims). Trimming only after a turn
that grew resident memory by 16 MiB skipped none: every turn grows it by more and gives it back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    UserStartedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed

from presence.framework.memory import release_freed_memory

DELAY_S = 0.5


class IdleMemoryTrim(BaseObserver):
    """Calls ``trim`` once per quiet spell after the persona's answer (see module doc).

    Args:
        delay_s: Silence after the persona stops speaking before the trim.
        trim: The blocking call to make (``release_freed_memory``; injectable for tests).

    Attributes:
        trims: How many trims ran.
        trim_ms: Duration of each trim, in ms (the last 1,000).
    """

    def __init__(self, *, delay_s: float = DELAY_S,
                 trim: Callable[[], object] = release_freed_memory, **kwargs):  # fmt: skip
        super().__init__(observe_every_push=False, **kwargs)
        self.delay_s = delay_s
        self._trim = trim
        self._pending: asyncio.TimerHandle | None = None
        self._running: asyncio.Task | None = None
        self.trims = 0
        self.trim_ms: list[float] = []

    async def on_push_frame(self, data: FramePushed):
        """Arm after the persona stops; disarm when anyone starts speaking."""
        frame = data.frame
        if isinstance(frame, BotStoppedSpeakingFrame):
            self._cancel()
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(self.delay_s, self._fire)
        elif isinstance(frame, (BotStartedSpeakingFrame, UserStartedSpeakingFrame,
                                VADUserStartedSpeakingFrame)):  # fmt: skip
            self._cancel()

    def _cancel(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None

    def _fire(self) -> None:
        self._pending = None
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(), name="idle-memory-trim")

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(self._timed_trim)
            self.trims += 1
        except Exception as exc:  # a trim that fails costs memory, never the call
            logger.debug(f"idle memory trim failed: {exc!r}")

    def _timed_trim(self) -> None:
        started = time.perf_counter()
        try:
            self._trim()
        finally:
            self.trim_ms.append((time.perf_counter() - started) * 1000)
            del self.trim_ms[:-1000]
