"""From per-frame observations to debounced perception events (pure Python, no pipecat).

``PerceptionTracker.update(t, observation)`` is called once per sampled frame with a time in
seconds and returns the events that this sample caused. Each boolean cue is a ``HysteresisFlag``:
it switches on when at least ``on`` of the samples in the last ``window_s`` agree and off when at
most ``off`` of them do, so one missed detection does not flicker an event.

The first decision of a flag is an event for presence and attention (a call that starts with
nobody on camera reports ``user_absent``); for the other cues only a first *on* is (no opening
``lighting_ok``, ``eyes_open`` or ``not_smiling`` noise).

Event vocabulary (``PerceptionEvent.kind``)::

    user_present / user_absent      a face is (not) seen               window 1.0 s
    attending / looking_away        frontal face near the centre (or not), only while present
    smiling / not_smiling           smile cascade inside a frontal face
    eyes_closed / eyes_open         no open eye found in a frontal face for ~1.5 s
    too_dark / lighting_ok          mean luma under ``dark_luma``
    nod / shake                     face-box centre swings up-down / left-right (instantaneous)

While the frame is too dark, presence and attention are *held* (no events): a disabled camera track
sends black frames, and a dark room is not an empty one. Nods and shakes need a sampling period of
about 100 ms or less to be seen reliably (a nod lasts ~0.5 s); at the default 200 ms only slow,
deliberate ones register.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from presence.processors.perception.engines.opencv import Observation

#: Pairs of (on, off) event names per flag.
FLAG_EVENTS = {
    "present": ("user_present", "user_absent"),
    "attending": ("attending", "looking_away"),
    "smiling": ("smiling", "not_smiling"),
    "eyes_closed": ("eyes_closed", "eyes_open"),
    "too_dark": ("too_dark", "lighting_ok"),
}
GESTURES = ("nod", "shake")
#: Every event kind the tracker can emit.
EVENT_KINDS = tuple(name for pair in FLAG_EVENTS.values() for name in pair) + GESTURES
#: Events that describe a lasting condition (usable as trigger conditions with a duration).
CONDITIONS = {on: (flag, True) for flag, (on, _) in FLAG_EVENTS.items()} | {
    off: (flag, False) for flag, (_, off) in FLAG_EVENTS.items()
}


@dataclass(frozen=True)
class PerceptionEvent:
    """One debounced perception event.

    Attributes:
        kind: One of ``EVENT_KINDS``.
        t: Time of the sample that decided it, in seconds on the tracker's clock.
        detail: Small JSON-able extras (e.g. the face centre for ``looking_away``).
    """

    kind: str
    t: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class HysteresisFlag:
    """A boolean that follows the share of recent true samples, with hysteresis.

    Attributes:
        window_s: Length of the sliding window, in seconds.
        on: Share of true samples in the window needed to switch on.
        off: Share of true samples at or below which it switches off.
        min_samples: Samples needed in the window before any decision.
        state: Current value; ``None`` until first decided.
    """

    window_s: float
    on: float
    off: float
    min_samples: int = 3
    state: bool | None = None
    _samples: deque = field(default_factory=deque, repr=False)

    def update(self, t: float, value: bool) -> bool | None:
        """Add a sample; return the new state if it changed, else ``None``."""
        self._samples.append((t, value))
        while self._samples and self._samples[0][0] <= t - self.window_s:
            self._samples.popleft()
        if len(self._samples) < self.min_samples:
            return None
        share = sum(v for _, v in self._samples) / len(self._samples)
        new = self.state
        if share >= self.on:
            new = True
        elif share <= self.off:
            new = False
        elif self.state is None:
            return None
        if new != self.state:
            self.state = new
            return new
        return None

    def reset(self) -> None:
        """Forget the samples and the state."""
        self._samples.clear()
        self.state = None


@dataclass
class TrackerConfig:
    """Thresholds of the tracker.

    Attributes:
        dark_luma: Mean luma (0..255) under which the frame counts as too dark.
        center_tolerance: Largest horizontal offset of the face centre from the frame centre
            (fraction of the width) that still counts as attending.
        min_face_height: Smallest face height (fraction of the frame height) that counts as
            attending; smaller faces are people leaning far back or walking past.
        gesture_window_s: Face-centre history used for nods and shakes.
        gesture_amplitude: Smallest swing, in face heights, that counts towards a nod or shake.
    """

    dark_luma: float = 45.0
    center_tolerance: float = 0.3
    min_face_height: float = 0.15
    gesture_window_s: float = 1.6
    gesture_amplitude: float = 0.06


class PerceptionTracker:
    """Debounces observations into events and keeps the current state.

    Args:
        config: Thresholds; defaults suit a laptop webcam at arm's length.
    """

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.flags = {
            "present": HysteresisFlag(1.0, 0.6, 0.2),
            "attending": HysteresisFlag(1.0, 0.6, 0.3),
            "smiling": HysteresisFlag(1.0, 0.6, 0.2),
            "eyes_closed": HysteresisFlag(1.5, 0.8, 0.3, min_samples=4),
            "too_dark": HysteresisFlag(1.0, 0.8, 0.2),
        }
        self.since: dict[str, float] = {}
        self.last_gesture: PerceptionEvent | None = None
        self._track: deque[tuple[float, float, float, float]] = deque()
        self._gesture_quiet_until = float("-inf")

    def state(self, name: str) -> bool | None:
        """Current value of a flag (``present``, ``attending``, …), ``None`` if undecided."""
        return self.flags[name].state

    def update(self, t: float, obs: Observation) -> list[PerceptionEvent]:
        """Feed one observation taken at time ``t`` (seconds); return the events it caused."""
        cfg = self.config
        events: list[PerceptionEvent] = []
        self._apply("too_dark", t, obs.luma < cfg.dark_luma, events, {"luma": round(obs.luma, 1)})
        if self.flags["too_dark"].state:
            return events  # hold presence and attention: darkness is not absence
        face = obs.face
        changed = self._apply("present", t, face is not None, events)
        if changed is False:
            for name in ("attending", "smiling", "eyes_closed"):
                self.flags[name].reset()
                self.since.pop(name, None)
            self._track.clear()
        if not self.flags["present"].state:
            return events
        if face is None:
            return events  # a missed detection while present: no opinion on the face cues
        attending = (
            obs.frontal
            and abs(face.cx - 0.5) <= cfg.center_tolerance
            and face.h >= cfg.min_face_height
        )
        detail = {"cx": round(face.cx, 3), "profile": obs.profile}
        self._apply("attending", t, attending, events, detail)
        if obs.frontal:
            self._apply("smiling", t, obs.smile, events)
            self._apply("eyes_closed", t, obs.eyes == 0, events)
        gesture = self._gesture(t, face.cx, face.cy, face.h)
        if gesture is not None:
            events.append(gesture)
            self.last_gesture = gesture
        return events

    def _apply(self, name: str, t: float, value: bool, events: list, detail=None) -> bool | None:
        flag = self.flags[name]
        first = flag.state is None
        changed = flag.update(t, value)
        if changed is not None:
            self.since[name] = t
            on, off = FLAG_EVENTS[name]
            if changed or not first or name in ("present", "attending"):
                events.append(PerceptionEvent(on if changed else off, t, dict(detail or {})))
        return changed

    def _gesture(self, t: float, cx: float, cy: float, size: float) -> PerceptionEvent | None:
        """A nod or shake when the face centre swung back and forth within the window."""
        cfg = self.config
        self._track.append((t, cx, cy, size))
        while self._track and self._track[0][0] < t - cfg.gesture_window_s:
            self._track.popleft()
        if t < self._gesture_quiet_until or len(self._track) < 4:
            return None
        size = sum(s for *_, s in self._track) / len(self._track)
        xs = [x / size for _, x, _, _ in self._track]
        ys = [y / size for _, _, y, _ in self._track]
        ny, nx = _swings(ys, cfg.gesture_amplitude), _swings(xs, cfg.gesture_amplitude)
        kind = None
        if ny >= 2 and ny > nx and _span(xs) < 0.6 * _span(ys):
            kind = "nod"
        elif nx >= 2 and nx > ny and _span(ys) < 0.6 * _span(xs):
            kind = "shake"
        if kind is None:
            return None
        self._track.clear()
        self._gesture_quiet_until = t + 1.0
        return PerceptionEvent(kind, t)


def _span(values: list[float]) -> float:
    return max(values) - min(values) if values else 0.0


def _swings(values: list[float], amplitude: float) -> int:
    """Count direction reversals whose swing exceeds ``amplitude`` (zig-zag filter)."""
    reversals, direction = 0, 0
    pivot = values[0]
    for v in values[1:]:
        if direction >= 0 and v < pivot - amplitude:
            reversals += direction > 0
            direction, pivot = -1, v
        elif direction <= 0 and v > pivot + amplitude:
            reversals += direction < 0
            direction, pivot = 1, v
        elif (direction > 0 and v > pivot) or (direction < 0 and v < pivot):
            pivot = v
    return reversals


def summary_text(tracker: PerceptionTracker, now: float, description: str | None = None) -> str:
    """A one-line, LLM-ready summary of what the camera shows now.

    Args:
        tracker: The tracker whose state to describe.
        now: Current time on the tracker's clock, for "for N s" phrases.
        description: Latest one-line description from a vision describer, if any.

    Returns:
        Text such as ``"The user is on camera, looking at you, smiling."``; empty if nothing
        has been decided yet.
    """

    def held(name: str) -> str:
        since = tracker.since.get(name)
        return f" for {now - since:.0f} s" if since is not None and now - since >= 3 else ""

    parts: list[str] = []
    if tracker.state("too_dark"):
        parts.append("The camera image is too dark to see the user" + held("too_dark"))
    present = tracker.state("present")
    if present is False:
        parts.append("The user is not visible on camera" + held("present"))
    elif present:
        cues = ["The user is on camera"]
        attending = tracker.state("attending")
        if attending is not None:
            cues.append("looking at you" if attending else "looking away" + held("attending"))
        if tracker.state("smiling"):
            cues.append("smiling")
        if tracker.state("eyes_closed"):
            cues.append("eyes closed" + held("eyes_closed"))
        gesture = tracker.last_gesture
        if gesture is not None and now - gesture.t <= 5:
            cues.append("just nodded" if gesture.kind == "nod" else "just shook their head")
        parts.append(", ".join(cues))
    if description:
        parts.append(f"Camera description: {description.strip().rstrip('.')}")
    return ". ".join(parts) + "." if parts else ""
