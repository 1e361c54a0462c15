"""From per-frame observations to debounced perception events (pure Python, no pipecat).

``PerceptionTracker.update(t, observation)`` is called once per sampled frame with a time in
seconds and returns the events that this sample caused; ``observation`` is ``None`` for a moment
when no camera frame arrived at all (the processor's camera watchdog sends those). Each boolean
cue is a ``HysteresisFlag``: it switches on when at least ``on`` of the samples in the last
``window_s`` agree and off when at most ``off`` of them do, so one missed detection does not
flicker an event.

The first decision of a flag is an event for presence and attention (a call that starts with
nobody on camera reports ``user_absent``); for the other cues only a first *on* is (no opening
``lighting_ok``, ``eyes_open`` or ``not_smiling`` noise).

Event vocabulary (``PerceptionEvent.kind``)::

    user_present / user_absent      a face is (not) seen               window 1.0 s
                                    (user_absent's detail: {"reason": ...}, see below)
    attending / looking_away        frontal face near the centre (or not), only while present
    smiling / not_smiling           smile cascade inside a frontal face
    eyes_closed / eyes_open         no open eye found in a frontal face for ~1.5 s
    too_dark / lighting_ok          mean luma under ``dark_luma``
    nod / shake                     face-box centre swings up-down / left-right (instantaneous)

Presence is what the camera shows, nothing more: a sample counts as present only when a face was
seen in it. Every other sample says *why* no face was seen (``judge``)::

    no_face      a usable image without a face: the user left
    too_dark     mean luma under ``dark_luma``: a dark room, a black or disabled camera track
    covered      almost no contrast (``covered_contrast``): a covered lens or a blank surface
    no_camera    no camera frame arrived (the camera stopped, or never started)

The last three are *unjudgeable*: the user may be there, but cannot be seen. After the presence
debounce they raise ``user_absent`` like an empty room does, with the most common reason of the
window in the event's detail (a persona should say "I can't see you", not pretend it can), and the
call's analysis keeps them apart from real absence. ``user_present`` follows when a face returns.

Nods and shakes need a sampling period of about 100 ms or less to be seen reliably (a nod lasts
~0.5 s); at the default 200 ms only slow, deliberate ones register.
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
#: Why a sample showed no face (``judge``); all but ``no_face`` mean the camera could not tell.
NO_FACE_REASONS = ("no_face", "too_dark", "covered", "no_camera")
UNJUDGEABLE = ("too_dark", "covered", "no_camera")
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
        covered_contrast: Brightness standard deviation (0..128) under which a frame without a
            face counts as covered rather than empty (a lens under a finger or a cap is nearly
            uniform; a room is not).
    """

    dark_luma: float = 45.0
    covered_contrast: float = 8.0
    center_tolerance: float = 0.3
    min_face_height: float = 0.15
    gesture_window_s: float = 1.6
    gesture_amplitude: float = 0.06


def judge(obs: Observation | None, config: TrackerConfig) -> str:
    """What one sample showed: ``face``, or why no face was seen (one of ``NO_FACE_REASONS``)."""
    if obs is None:
        return "no_camera"
    if obs.face is not None:
        return "face"
    if obs.luma < config.dark_luma:
        return "too_dark"
    if obs.contrast < config.covered_contrast:
        return "covered"
    return "no_face"


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
        #: What the last sample showed (``judge``); ``None`` before the first.
        self.last_seen: str | None = None
        #: Why the user is not seen, while ``present`` is False (one of ``NO_FACE_REASONS``).
        self.absent_reason: str | None = None
        self._reasons: deque[tuple[float, str]] = deque()
        self._track: deque[tuple[float, float, float, float]] = deque()
        self._gesture_quiet_until = float("-inf")

    def state(self, name: str) -> bool | None:
        """Current value of a flag (``present``, ``attending``, …), ``None`` if undecided."""
        return self.flags[name].state

    def update(self, t: float, obs: Observation | None) -> list[PerceptionEvent]:
        """Feed one observation taken at time ``t`` (seconds); return the events it caused.

        Args:
            t: Time of the sample in seconds.
            obs: What the engine saw, or ``None`` when no camera frame arrived at all.
        """
        cfg = self.config
        events: list[PerceptionEvent] = []
        seen = self.last_seen = judge(obs, cfg)
        if obs is not None:
            luma = {"luma": round(obs.luma, 1)}
            self._apply("too_dark", t, obs.luma < cfg.dark_luma, events, luma)
        reason = self._note_reason(t, seen)
        changed = self._apply("present", t, seen == "face", events, {"reason": reason})
        if changed is False:
            for name in ("attending", "smiling", "eyes_closed"):
                self.flags[name].reset()
                self.since.pop(name, None)
            self._track.clear()
        if not self.flags["present"].state:
            self.absent_reason = reason or self.absent_reason
            return events
        self.absent_reason = None
        face = obs.face if obs is not None else None
        if obs is None or face is None:
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

    def _note_reason(self, t: float, seen: str) -> str | None:
        """The most common reason no face was seen in the presence window (latest on a tie)."""
        reasons = self._reasons
        if seen != "face":
            reasons.append((t, seen))
        while reasons and reasons[0][0] <= t - self.flags["present"].window_s:
            reasons.popleft()
        counts: dict[str, int] = {}
        for _, r in reasons:
            counts[r] = counts.get(r, 0) + 1
        latest = reasons[-1][1] if reasons else None
        return max(counts, key=lambda r: (counts[r], r == latest)) if counts else None

    def _apply(self, name: str, t: float, value: bool, events: list, detail=None) -> bool | None:
        flag = self.flags[name]
        first = flag.state is None
        changed = flag.update(t, value)
        if changed is not None:
            self.since[name] = t
            on, off = FLAG_EVENTS[name]
            if changed or not first or name in ("present", "attending"):
                extra = dict(detail or {}) if name != "present" or not changed else {}
                events.append(PerceptionEvent(on if changed else off, t, extra))
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
    dark = tracker.state("too_dark")
    if dark:
        parts.append("The camera image is too dark to see the user" + held("too_dark"))
    present = tracker.state("present")
    if present is False:
        why = {
            "too_dark": "" if dark else " (the image is too dark)",
            "covered": " (the camera seems covered)",
            "no_camera": " (no camera frames are arriving)",
        }.get(tracker.absent_reason or "", "")
        parts.append("The user is not visible on camera" + why + held("present"))
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
