"""Taking the head of the speech inbox keeps the rest exactly as the engine would have seen it."""

from __future__ import annotations

from collections import deque

import numpy as np

from presence.processors.renderer.inbox import take_head


def test_take_head_splits_audio_and_rebases_visemes():
    rate = 1000
    a = np.arange(100, dtype=np.int16)
    b = np.arange(100, 250, dtype=np.int16)
    inbox = deque([(a.tobytes(), [(0.0, "closed", "m"), (0.05, "open", "a")]),
                   (b.tobytes(), [(0.1, "round", "o")])])  # fmt: skip
    head = take_head(inbox, 130, rate)
    assert np.array_equal(head, np.arange(130))
    rest_audio, rest_visemes = inbox[0]
    assert np.array_equal(np.frombuffer(rest_audio, np.int16), np.arange(130, 250))
    # "open" (at 50 ms) is in force where the rest begins; "round" moves from 100 ms to 70 ms
    assert [v[1] for v in rest_visemes] == ["open", "round"]
    assert rest_visemes[0][0] <= 0 and abs(rest_visemes[1][0] - 0.07) < 1e-9


def test_take_head_leaves_a_short_inbox_untouched():
    inbox = deque([(np.ones(50, np.int16).tobytes(), None)])
    assert take_head(inbox, 60, 1000) is None
    assert len(inbox) == 1 and len(inbox[0][0]) == 100
    whole = take_head(inbox, 50, 1000)
    assert whole is not None and whole.size == 50 and not inbox
