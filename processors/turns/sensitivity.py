"""Tavus's sensitivities as presence's turn and VAD settings: one table for personas and live calls.

A persona's ``layers`` (``conversational_flow.turn_taking_patience`` /
``replica_interruptibility``, or Sparrow-0's ``participant_pause_sensitivity`` /
``participant_interrupt_sensitivity``) set them when a conversation starts
(``presence.service.tavus``); a ``conversation.sensitivity`` interaction changes them in a live
call (``TurnControls``):

* **pause sensitivity** → turn-taking patience, inverted (a pause-sensitive replica takes the
  turn sooner) → the turn's silence fallback: smart-turn ``stop_secs`` 0.6 / 1.0 / 2.0 s,
  speech-timeout ``user_speech_timeout`` 0.4 / 0.6 / 1.2 s for low / medium / high patience;
* **interrupt sensitivity** → interruptibility, the same direction → VAD ``start_secs``
  0.5 / 0.2 / 0.1 s (how much of the user's voice interrupts the replica).

Sparrow-0's ``verylow`` and ``superlow`` apply as ``low``, the lowest presence has.
"""

from __future__ import annotations

from typing import Any

from loguru import logger

PATIENCE = {
    "smart-turn": ("stop_secs", {"low": 0.6, "medium": 1.0, "high": 2.0}),
    "speech-timeout": ("user_speech_timeout", {"low": 0.4, "medium": 0.6, "high": 1.2}),
}
"""Turn provider → (its silence parameter, seconds per patience level)."""

INTERRUPT_START_SECS = {"low": 0.5, "medium": 0.2, "high": 0.1}
"""Interruptibility level → VAD ``start_secs``."""

PAUSE_TO_PATIENCE = {"superlow": "high", "verylow": "high", "low": "high", "medium": "medium",
                     "high": "low"}  # fmt: skip
INTERRUPT_TO_INTERRUPTIBILITY = {"superlow": "low", "verylow": "low", "low": "low",
                                 "medium": "medium", "high": "high"}  # fmt: skip


class TurnControls:
    """Changes a live session's patience and interruptibility (``conversation.sensitivity``).

    Args:
        vad: The session's VAD analyzer (``session.stages["vad"]``), or None.
        turn: The session's ``UserTurnStrategies`` (``session.stages["turn"]``), or None.
    """

    def __init__(self, vad: Any = None, turn: Any = None):
        self._vad = vad
        self._turn = turn

    def vad_params(self, interrupt_sensitivity: str) -> Any:
        """The VAD's current params with the ``start_secs`` of ``interrupt_sensitivity``.

        Returns:
            A ``VADParams`` to send in a ``VADParamsUpdateFrame`` (the VAD applies it and tells
            the turn analyzer), or None when the session has no VAD.
        """
        if self._vad is None or not hasattr(self._vad, "params"):
            return None
        level = INTERRUPT_TO_INTERRUPTIBILITY[interrupt_sensitivity]
        return self._vad.params.model_copy(update={"start_secs": INTERRUPT_START_SECS[level]})

    def set_pause(self, pause_sensitivity: str) -> str | None:
        """Apply ``pause_sensitivity`` to the turn's silence fallback now.

        Returns:
            None when applied, else why not (the turn stage has no patience presence can set).
        """
        level = PAUSE_TO_PATIENCE[pause_sensitivity]
        for strategy in getattr(self._turn, "stop", None) or []:
            inner = _innermost(strategy)
            analyzer = getattr(inner, "_turn_analyzer", None)
            if analyzer is not None and hasattr(analyzer, "_stop_ms"):
                seconds = PATIENCE["smart-turn"][1][level]
                # pipecat's smart-turn keeps stop_secs in its params and, in ms, in _stop_ms
                analyzer.params.stop_secs = seconds
                analyzer._stop_ms = seconds * 1000
                logger.debug(f"turn patience {level}: smart-turn stop_secs {seconds}")
                return None
            if hasattr(inner, "_user_speech_timeout"):
                seconds = PATIENCE["speech-timeout"][1][level]
                inner._user_speech_timeout = seconds
                logger.debug(f"turn patience {level}: user_speech_timeout {seconds}")
                return None
        return "this conversation's turn stage has no pause setting to change"


def _innermost(strategy: Any) -> Any:
    """The pipecat strategy under presence's wrappers (speculative start, the floor)."""
    seen = 0
    while getattr(strategy, "_inner", None) is not None and seen < 8:
        strategy, seen = strategy._inner, seen + 1
    return strategy
