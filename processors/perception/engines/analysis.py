"""End-of-call perception analysis (pure Python, no pipecat).

``CallAnalysis`` integrates what each sample showed and the tracker's state between samples (the
time up to the next sample is credited to this one) and keeps a timeline of notable moments.
``report()`` returns a JSON-able dict::

    {
      "duration_s": 60.2,          # first to last sample
      "samples": 301, "dropped": 0,  # camera frames analysed / skipped while the engine was busy
      "presence_pct": 81.0,        # share of the call in which the user's face was seen
      "absent_pct": 9.0,           # ... in which the image was usable and showed no face
      "unjudgeable_pct": 10.0,     # ... in which the camera could not tell (dark, covered, none)
      "unjudgeable_s": {"too_dark": 6.0, "covered": 0.0, "no_camera": 0.0},
      "attention_pct": 78.5,       # share of the on-camera time spent looking at the persona
      "smiling_pct": 12.0,         # share of the on-camera time spent smiling
      "smiles": 3, "nods": 1, "shakes": 0,
      "eyes_closed_s": 0.0, "too_dark_pct": 0.0,
      "engine_ms": {"p50": 12.1, "p95": 19.8, "max": 31.0},
      "moments": [{"t": 0.6, "event": "user_present"},         # capped at ``max_moments``
                  {"t": 9.1, "event": "user_absent", "reason": "too_dark"}, ...],
      "descriptions": [{"t": 5.0, "text": "..."}]
    }

``presence_pct``, ``absent_pct`` and ``unjudgeable_pct`` are shares of the whole call and add up
to 100: a black, covered or silent camera never counts as presence. Attention and smiling are
shares of the time the user was (debounced) on camera; time before the tracker's first decision is
left out of those.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from presence.processors.perception.engines.events import (
    UNJUDGEABLE,
    PerceptionEvent,
    PerceptionTracker,
)


def _pct(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


@dataclass
class CallAnalysis:
    """Accumulates a call's perception timeline.

    Attributes:
        max_moments: Most timeline entries kept (later ones are counted, not stored).
    """

    max_moments: int = 200
    start: float | None = None
    last: float | None = None
    samples: int = 0
    dropped: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    moments: list[dict[str, Any]] = field(default_factory=list)
    moments_left_out: int = 0
    descriptions: list[dict[str, Any]] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)
    _state: dict[str, bool | None] = field(default_factory=dict)
    _seen: str | None = None

    def record(
        self,
        t: float,
        tracker: PerceptionTracker,
        events: list[PerceptionEvent],
        ms: float | None,
    ):
        """Account one sample at time ``t`` after the tracker processed it.

        Args:
            t: Time of the sample, in seconds.
            tracker: The tracker, after it took the sample (its ``last_seen`` and flags are read).
            events: The events the sample caused.
            ms: Time the engine took, or ``None`` for a moment without a camera frame.
        """
        if self.start is None:
            self.start = t
        if self.last is not None and t > self.last:
            self._credit(t - self.last)
        self.last = t
        if ms is not None:
            self.samples += 1
            if len(self.engine_ms) < 100_000:
                self.engine_ms.append(ms)
        for event in events:
            self.counts[event.kind] = self.counts.get(event.kind, 0) + 1
            if len(self.moments) < self.max_moments:
                moment = {"t": round(event.t - self.start, 2), "event": event.kind}
                if event.detail.get("reason"):
                    moment["reason"] = event.detail["reason"]  # why the user was not seen
                self.moments.append(moment)
            else:
                self.moments_left_out += 1
        self._state = {name: tracker.state(name) for name in tracker.flags}
        self._seen = tracker.last_seen

    def describe(self, t: float, text: str) -> None:
        """Add a describer's one-line description taken at time ``t``."""
        base = self.start if self.start is not None else t
        if len(self.descriptions) < self.max_moments:
            self.descriptions.append({"t": round(t - base, 2), "text": text})

    def _credit(self, dt: float) -> None:
        self._add("call", dt)
        if self._seen is not None:
            self._add(f"seen:{self._seen}", dt)
        state = self._state
        if not state.get("present"):
            return
        self._add("present", dt)
        if state.get("attending") is not None:
            self._add("attention_observed", dt)
            if state.get("attending"):
                self._add("attending", dt)
        if state.get("smiling"):
            self._add("smiling", dt)
        if state.get("eyes_closed"):
            self._add("eyes_closed", dt)

    def _add(self, key: str, dt: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + dt

    def report(self) -> dict[str, Any]:
        """The analysis as a JSON-able dict (see the module docstring)."""
        s = self.seconds
        duration = s.get("call", 0.0)
        unjudgeable = {r: round(s.get(f"seen:{r}", 0.0), 2) for r in UNJUDGEABLE}
        report: dict[str, Any] = {
            "duration_s": round(duration, 2),
            "samples": self.samples,
            "dropped": self.dropped,
            "presence_pct": _pct(s.get("seen:face", 0.0), duration),
            "absent_pct": _pct(s.get("seen:no_face", 0.0), duration),
            "unjudgeable_pct": _pct(sum(s.get(f"seen:{r}", 0.0) for r in UNJUDGEABLE), duration),
            "unjudgeable_s": unjudgeable,
            "attention_pct": _pct(s.get("attending", 0.0), s.get("attention_observed", 0.0)),
            "smiling_pct": _pct(s.get("smiling", 0.0), s.get("present", 0.0)),
            "smiles": self.counts.get("smiling", 0),
            "nods": self.counts.get("nod", 0),
            "shakes": self.counts.get("shake", 0),
            "looked_away": self.counts.get("looking_away", 0),
            "left_frame": self.counts.get("user_absent", 0),
            "eyes_closed_s": round(s.get("eyes_closed", 0.0), 2),
            "too_dark_pct": _pct(s.get("seen:too_dark", 0.0), duration) or 0.0,
            "engine_ms": (
                {
                    "p50": _percentile(self.engine_ms, 0.5),
                    "p95": _percentile(self.engine_ms, 0.95),
                    "max": round(max(self.engine_ms), 2),
                }
                if self.engine_ms
                else None
            ),
            "moments": list(self.moments),
            "descriptions": list(self.descriptions),
        }
        if self.moments_left_out:
            report["moments_left_out"] = self.moments_left_out
        return report
