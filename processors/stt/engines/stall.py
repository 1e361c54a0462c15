"""Blocking decodes with a time limit, for engines that may hang (no pipecat here).

``await within(fn, timeout_s)`` runs ``fn`` in a thread and returns ``(True, result)``, or
``(False, future)`` once ``timeout_s`` has passed: the thread cannot be stopped, so it runs on, and
its ``future`` still gives its result should the caller want it late (an exception it ends with is
never raised unless the future is awaited). ``timeout_s`` 0 waits for ever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def within(fn: Callable[[], Any], timeout_s: float) -> tuple[bool, Any]:
    """Run blocking ``fn`` off the event loop; stop waiting for it after ``timeout_s`` (0: never)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn))
    if timeout_s <= 0:
        return True, await task
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if task in done:
        return True, task.result()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # never "never retrieved"
    return False, task


class Every:
    """Says yes at most once per ``period_s`` (the first time always)."""

    def __init__(self, period_s: float):
        self.period_s = period_s
        self._last = -period_s

    def ready(self) -> bool:
        """True, and the period starts again, when ``period_s`` has passed since the last yes."""
        now = time.monotonic()
        if now - self._last < self.period_s:
            return False
        self._last = now
        return True
