"""End-of-call perception analysis (pure Python, no pipecat).

``CallAnalysis`` integrates the tracker's state between samples (time is credited to the state
that held since the previous sample) and keeps a timeline of notable moments. ``report()`` returns
a JSON-able dict::

    {
      "duration_s": 60.2,          # first to last sample
      "samples": 301, "dropped": 0,
      "presence_pct": 91.0,        # share of the call with the user on camera
      "attention_pct": 78.5,       # share of the on-camera time spent looking at the persona
      "smiling_pct": 12.0,         # share of the on-camera time spent smiling
      "smiles": 3, "nods": 1, "shakes": 0,
      "eyes_closed_s": 0.0, "too_dark_pct": 0.0,
      "engine_ms": {"p50": 12.1, "p95": 19.8, "max": 31.0},
      "moments": [{"t": 0.6, "event": "user_present"}, ...],   # capped at ``max_moments``
      "descriptions": [{"t": 5.0, "text": "..."}]
    }

Percentages are of the time that was observed; time before the first decision counts as unknown
and is left out of both the numerator and the denominator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from presence.processors.perception.engines.events import PerceptionEvent, PerceptionTracker


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

    def record(
        self, t: float, tracker: PerceptionTracker, events: list[PerceptionEvent], ms: float
    ):
        """Account one sample at time ``t`` after the tracker processed it."""
        if self.start is None:
            self.start = t
        if self.last is not None and t > self.last:
            self._credit(t - self.last)
        self.last = t
        self.samples += 1
        if len(self.engine_ms) < 100_000:
            self.engine_ms.append(ms)
        for event in events:
            self.counts[event.kind] = self.counts.get(event.kind, 0) + 1
            if len(self.moments) < self.max_moments:
                self.moments.append({"t": round(event.t - self.start, 2), "event": event.kind})
            else:
                self.moments_left_out += 1
        self._state = {name: tracker.state(name) for name in tracker.flags}

    def describe(self, t: float, text: str) -> None:
        """Add a describer's one-line description taken at time ``t``."""
        base = self.start if self.start is not None else t
        if len(self.descriptions) < self.max_moments:
            self.descriptions.append({"t": round(t - base, 2), "text": text})

    def _credit(self, dt: float) -> None:
        state = self._state
        if state.get("too_dark"):
            self._add("too_dark", dt)
        present = state.get("present")
        if present is None or state.get("too_dark"):
            return
        self._add("observed", dt)
        if not present:
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
        duration = (
            (self.last - self.start) if self.start is not None and self.last is not None else 0.0
        )
        report: dict[str, Any] = {
            "duration_s": round(duration, 2),
            "samples": self.samples,
            "dropped": self.dropped,
            "presence_pct": _pct(s.get("present", 0.0), s.get("observed", 0.0)),
            "attention_pct": _pct(s.get("attending", 0.0), s.get("attention_observed", 0.0)),
            "smiling_pct": _pct(s.get("smiling", 0.0), s.get("present", 0.0)),
            "smiles": self.counts.get("smiling", 0),
            "nods": self.counts.get("nod", 0),
            "shakes": self.counts.get("shake", 0),
            "looked_away": self.counts.get("looking_away", 0),
            "left_frame": self.counts.get("user_absent", 0),
            "eyes_closed_s": round(s.get("eyes_closed", 0.0), 2),
            "too_dark_pct": _pct(s.get("too_dark", 0.0), duration) or 0.0,
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
