"""Trigger timing: hold time, once per episode, cooldown, waiting for quiet."""

from __future__ import annotations

from presence.processors.perception.engines.events import PerceptionTracker
from presence.processors.perception.engines.opencv import FaceBox, Observation
from presence.processors.perception.engines.triggers import TriggerBook, TriggerSpec

FACING = Observation(FaceBox(0.35, 0.3, 0.3, 0.4), frontal=True, eyes=2, luma=120)
ASIDE = Observation(FaceBox(0.0, 0.3, 0.3, 0.4), frontal=True, eyes=2, luma=120)


def drive(book: TriggerBook, script, quiet=lambda t: True, step: float = 0.2):
    """Feed (observation, seconds) segments; return the times at which triggers fired."""
    tracker, fired, t = PerceptionTracker(), [], 0.0
    for obs, seconds in script:
        for _ in range(round(seconds / step)):
            events = tracker.update(t, obs)
            fired += [(round(t, 1), s.when) for s in book.due(t, tracker, events, quiet(t))]
            t += step
    return fired


def test_fires_once_per_episode_after_the_hold_time():
    book = TriggerBook(
        [TriggerSpec(when="looking_away", for_s=2.0, say="Still there?", cooldown_s=0)]
    )
    fired = drive(book, [(FACING, 2), (ASIDE, 5), (FACING, 2), (ASIDE, 4)])
    assert len(fired) == 2  # one per looking-away episode, not one per sample
    first, second = (t for t, _ in fired)
    assert 4.0 <= first <= 5.0 and 11.0 <= second <= 12.0


def test_cooldown_and_once_limit_repeats():
    cooled = TriggerBook([TriggerSpec(when="looking_away", for_s=0.5, say="x", cooldown_s=60)])
    once = TriggerBook(
        [TriggerSpec(when="looking_away", for_s=0.5, say="x", cooldown_s=0, once=True)]
    )
    script = [(FACING, 2), (ASIDE, 3), (FACING, 2), (ASIDE, 3)]
    assert len(drive(cooled, script)) == 1
    assert len(drive(once, script)) == 1


def test_waits_for_quiet_then_fires_if_the_condition_still_holds():
    book = TriggerBook([TriggerSpec(when="looking_away", for_s=1.0, ask="Check in.")])
    fired = drive(book, [(FACING, 2), (ASIDE, 6)], quiet=lambda t: t >= 6.0)
    assert [t for t, _ in fired] == [6.0]
