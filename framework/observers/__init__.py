"""Pipeline observers: watch frames (transcripts, turn timings) without touching the pipeline."""

from presence.framework.observers.latency import TurnLatencyObserver, attach_turn_latency
from presence.framework.observers.transcript import TranscriptObserver

__all__ = ["TranscriptObserver", "TurnLatencyObserver", "attach_turn_latency"]
