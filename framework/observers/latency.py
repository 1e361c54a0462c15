"""``TurnLatencyObserver``: each user turn's latency, counted from the end of the user's voice.

Every figure presence calls latency counts from the user's **last voiced audio sample** to what
the user perceives: the persona's first audio leaving the output transport
(``BotStartedSpeakingFrame``, pushed when the first speech audio is written; the renderer writes
the first speaking video frame with it). It watches frames without touching the pipeline (pipecat
``BaseObserver``) and, per user turn, takes on the pipeline clock (``FramePushed.timestamp``):

* **end of voice**: ``VADUserStoppedSpeakingFrame`` minus its ``stop_secs`` (the VAD decides only
  after that much silence). A pause inside the turn (VAD stop, then VAD start again before the
  persona answers) moves the end of voice to the later stop;
* **turn decided**: the turn's last ``UserStoppedSpeakingFrame`` (the turn strategy's decision,
  which is also when pipecat sends RTVI ``user-stopped-speaking``: a clock started there leaves
  out the VAD's silence and the turn model's wait);
* **first audio**: the first downstream ``BotStartedSpeakingFrame`` after the end of voice.

A turn is reported only when the turn strategy decided it and its end of voice is known: a cough
the strategy ignored, the greeting or a typed ``respond`` give no figure. Without a VAD there is
no end of voice, so nothing is reported (a figure from the turn decision would hide the silence).
The VAD's frames may arrive twice (pipecat's user aggregator pushes an upstream and a downstream
copy); only speaking/silent transitions count, so the earlier copy sets the time.

Each report (also the RTVI ``server-message`` data the page and pipecat's JS client receive through
``onServerMessage``), integers in ms::

    {"type": "presence-turn-latency", "turn": 1,     # n-th reported turn of the session
     "voice_to_voice_ms": 1234,                      # end of voice -> persona's first audio
     "end_of_speech_ms": 400,                        # end of voice -> VAD said "stopped"
     "turn_decided_ms": 950}                         # end of voice -> turn decided (< 0: the
                                                     # user spoke on after the decision)

``attach_turn_latency(worker)`` adds one to a ``PipelineWorker`` that has RTVI, sending through
``worker.rtvi.send_server_message``; the builder does this for every session. The INFO log line
per turn carries the figures only, never what the user said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

MESSAGE_TYPE = "presence-turn-latency"
"""``data.type`` of the RTVI ``server-message`` that carries one turn's latency."""

Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class _Turn:
    """A user turn awaiting the persona's first audio (times in ns, pipeline clock)."""

    voice_end_ns: int | None = None  # last voiced sample; None while the user speaks
    vad_stop_ns: int | None = None  # when the VAD reported the stop
    decided_ns: int | None = None  # last turn decision


class TurnLatencyObserver(BaseObserver):
    """Reports each user turn's latency from the user's last voiced sample to the first audio.

    Args:
        send: ``async send(report)`` called once per reported turn (e.g. an RTVI processor's
            ``send_server_message``); ``None`` only records. Its failures are logged, not raised.

    Attributes:
        reports: Every report so far, in order (see the module docstring for the fields).
    """

    def __init__(self, *, send: Send | None = None, **kwargs):
        super().__init__(observe_every_push=False, **kwargs)
        self.send = send
        self.reports: list[dict[str, Any]] = []
        self._turn: _Turn | None = None
        self._voice_on = False

    async def on_push_frame(self, data: FramePushed):
        """Track the turn's moments; report on the persona's first audio after the user's voice."""
        frame = data.frame
        # Broadcast pairs (turn decision, bot speaking) count once, downstream; the VAD's two
        # copies are not siblings and are told apart by the speaking/silent transition.
        if frame.broadcast_sibling_id is not None and data.direction != FrameDirection.DOWNSTREAM:
            return
        t_ns = data.timestamp
        if isinstance(frame, VADUserStartedSpeakingFrame):
            if not self._voice_on:
                self._voice_on = True
                turn = self._turn or _Turn()
                turn.voice_end_ns = turn.vad_stop_ns = None  # speaking (again): the end moves
                self._turn = turn
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            if self._voice_on:
                self._voice_on = False
                if self._turn is not None:
                    self._turn.vad_stop_ns = t_ns
                    self._turn.voice_end_ns = t_ns - round(frame.stop_secs * 1e9)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            if self._turn is not None:
                self._turn.decided_ns = t_ns
        elif isinstance(frame, BotStartedSpeakingFrame):
            if data.direction == FrameDirection.DOWNSTREAM:
                await self._bot_started(t_ns)

    async def _bot_started(self, t_ns: int) -> None:
        turn = self._turn
        if turn is None:
            return  # the greeting, an answer to typed text
        if self._voice_on or turn.voice_end_ns is None or turn.decided_ns is None:
            # Not an answer to a finished, decided turn (a cough; the user talks over the start).
            # A decision is answered once: later speech needs a decision of its own.
            turn.decided_ns = None
            return
        self._turn = None
        report = {
            "type": MESSAGE_TYPE,
            "turn": len(self.reports) + 1,
            "voice_to_voice_ms": _ms(t_ns - turn.voice_end_ns),
            "end_of_speech_ms": _ms(turn.vad_stop_ns - turn.voice_end_ns),
            "turn_decided_ms": _ms(turn.decided_ns - turn.voice_end_ns),
        }
        self.reports.append(report)
        logger.info(
            f"turn {report['turn']} latency {report['voice_to_voice_ms']} ms from the end of the "
            f"user's voice (speech end detected +{report['end_of_speech_ms']} ms, "
            f"turn decided {report['turn_decided_ms']:+d} ms)"
        )
        if self.send is not None:
            try:
                await self.send(report)
            except Exception as exc:  # a client gone away must not stop the measurements
                logger.warning(f"could not send turn latency to the client: {exc}")


def attach_turn_latency(worker: Any) -> TurnLatencyObserver | None:
    """Add a ``TurnLatencyObserver`` to ``worker`` that reports to its RTVI client.

    Args:
        worker: A pipecat ``PipelineWorker`` (before it runs).

    Returns:
        The observer, or ``None`` when the worker has no RTVI (nothing to send to).
    """
    return attach_rtvi_observer(worker, lambda send: TurnLatencyObserver(send=send))


def attach_rtvi_observer(worker: Any, make: Callable[[Send], BaseObserver]) -> Any:
    """Add ``make(send)`` to ``worker``, ``send`` being its RTVI ``send_server_message``.

    Returns:
        The observer, or ``None`` when the worker has no RTVI (nothing is added).
    """
    try:
        send = worker.rtvi.send_server_message
    except Exception:  # pipecat raises a plain Exception when RTVI is off
        return None
    observer = make(send)
    worker.add_observer(observer)
    return observer


def _ms(ns: int) -> int:
    return round(ns / 1e6)
