"""Taking the head of the renderer's speech inbox (pure; used when speech completes an idle frame).

The inbox holds ``(pcm_bytes, visemes)`` items in arrival order, visemes as
``(offset_seconds_within_item, name, phoneme)``. Taking the first ``n`` samples off it must leave
the rest exactly as the engine would have seen it: offsets re-based on the remaining audio, and
the viseme in force where the remaining audio begins kept (at an offset <= 0) so the mouth shape
carries over.
"""

from __future__ import annotations

from collections import deque

import numpy as np

Item = tuple[bytes, list | None]


def take_head(inbox: deque[Item], n: int, rate: int) -> np.ndarray | None:
    """Remove and return the first ``n`` int16 samples of ``inbox`` (None, untouched, if fewer)."""
    if n <= 0 or sum(len(a) for a, _ in inbox) // 2 < n:
        return None
    taken: list[np.ndarray] = []
    got = 0
    carried: list = []  # the viseme in force where the remaining audio begins
    while got < n:
        audio, visemes = inbox.popleft()
        pcm = np.frombuffer(audio, np.int16)
        take = min(n - got, pcm.size)
        taken.append(pcm[:take])
        got += take
        shifted = [(off - take / rate, name, ph) for off, name, ph in visemes or []]
        carried = [v for v in shifted if v[0] <= 0][-1:] or carried
        if take < pcm.size:
            inbox.appendleft((pcm[take:].tobytes(), carried + [v for v in shifted if v[0] > 0]))
            carried = []
    if carried and inbox:
        audio, visemes = inbox.popleft()
        inbox.appendleft((audio, carried + list(visemes or [])))
    return np.concatenate(taken)
