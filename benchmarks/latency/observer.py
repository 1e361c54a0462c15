"""``LatencyObserver``: a pipecat observer that timestamps every stage of every turn.

It never touches the pipeline: it records, on the pipeline clock (``FramePushed.timestamp``, ns),
the first push of the frames that mark a stage, and which processor pushed them:

==================  ==========================================================================
event               frame
==================  ==========================================================================
``vad_stop``        ``VADUserStoppedSpeakingFrame``
``turn_start``      ``UserStartedSpeakingFrame`` (downstream)
``turn_stop``       ``UserStoppedSpeakingFrame`` (downstream): the turn decision
``cancel``          ``EagerEndOfTurnCancelFrame`` (a withdrawn speculation)
``interruption``    ``InterruptionFrame``
``stt_final``       ``TranscriptionFrame`` from the STT
``llm_request``     ``LLMContextFrame`` into the LLM (``speculation`` flag kept)
``llm_token``       ``LLMTextFrame`` out of the LLM (after its speculation gate)
``tts_audio``       ``TTSAudioRawFrame`` out of the TTS
``render_speech``   first speech audio out of the renderer after silence; ``image_ns`` is the
                    push time of the first image whose period starts with speech (the first
                    speaking video frame; the next image when speech completed an idle period)
``bot_started``     ``BotStartedSpeakingFrame`` (downstream)
==================  ==========================================================================

Scripted providers' own delays (``metadata["scripted_*"]``) are kept on the events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    EagerEndOfTurnCancelFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection


@dataclass
class Event:
    """One observed moment.

    Attributes:
        kind: See the module table.
        t_ns: Pipeline-clock time of the push.
        info: Extra values (scripted delays, speculation flag, image time).
    """

    kind: str
    t_ns: int
    info: dict[str, Any] = field(default_factory=dict)


class LatencyObserver(BaseObserver):
    """Collects stage events; call ``bind`` with the stage processors before the run.

    Attributes:
        events: Everything observed, in arrival order.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.events: list[Event] = []
        self._stt = self._llm = self._tts = self._renderer = None
        self._renderer_speaking = False
        self._last_image_ns: int | None = None
        self._awaiting_image: Event | None = None

    def bind(self, *, stt=None, llm=None, tts=None, renderer=None) -> None:
        """Tell the observer which processors are which stage."""
        self._stt, self._llm, self._tts, self._renderer = stt, llm, tts, renderer

    def of(self, kind: str) -> list[Event]:
        """Events of one kind, in time order."""
        return sorted((e for e in self.events if e.kind == kind), key=lambda e: e.t_ns)

    def _add(self, kind: str, t_ns: int, **info: Any) -> None:
        self.events.append(Event(kind, t_ns, info))

    async def on_push_frame(self, data: FramePushed):
        """Record the stage a frame marks (first push only)."""
        if not data.first_push:
            return
        frame, src, t = data.frame, data.source, data.timestamp
        down = data.direction == FrameDirection.DOWNSTREAM
        if src is self._renderer and src is not None:
            if isinstance(frame, OutputImageRawFrame):
                self._last_image_ns = t
                if self._renderer_speaking and self._awaiting_image is not None:
                    self._awaiting_image.info["image_ns"] = t
                self._awaiting_image = None
            elif isinstance(frame, TTSAudioRawFrame):
                if not self._renderer_speaking:
                    self._add("render_speech", t, image_ns=self._last_image_ns)
                    if self._last_image_ns is None:  # speech completed an idle frame's period
                        self._awaiting_image = self.events[-1]  # its image is the next one
                self._renderer_speaking = True
            elif isinstance(frame, OutputAudioRawFrame):
                self._renderer_speaking = False
                self._last_image_ns = None  # an image followed by silence is not a speaking one
            return
        if isinstance(frame, VADUserStoppedSpeakingFrame) and down:
            self._add("vad_stop", t)
        elif isinstance(frame, UserStartedSpeakingFrame) and down:
            self._add("turn_start", t)
        elif isinstance(frame, UserStoppedSpeakingFrame) and down:
            self._add("turn_stop", t)
        elif isinstance(frame, EagerEndOfTurnCancelFrame) and down:
            self._add("cancel", t)
        elif isinstance(frame, InterruptionFrame) and down:
            self._add("interruption", t)
        elif isinstance(frame, TranscriptionFrame) and src is self._stt:
            self._add("stt_final", t, scripted_ms=frame.metadata.get("scripted_delay_ms"))
        elif isinstance(frame, LLMContextFrame) and data.destination is self._llm:
            self._add("llm_request", t, speculation=bool(frame.speculation))
        elif isinstance(frame, LLMTextFrame) and src is self._llm:
            self._add("llm_token", t, scripted_ms=frame.metadata.get("scripted_elapsed_ms"))
        elif isinstance(frame, TTSAudioRawFrame) and src is self._tts:
            self._add(
                "tts_audio",
                t,
                scripted_ms=frame.metadata.get("scripted_ttfb_ms"),
                text_at_ns=frame.metadata.get("scripted_text_at_ns"),
            )
        elif isinstance(frame, BotStartedSpeakingFrame) and down:
            self._add("bot_started", t)
