"""``QuietVoiceGain``: raises a user heard too quietly before the VAD and STT hear them.

Sits right after ``transport.input()`` (the ``vad`` stage inserts it; ``quiet_gain_db: 0`` turns
it off). It changes only ``InputAudioRawFrame`` audio, and only while the user's speech level is
below ordinary levels (``engines.quiet_gain``); every other frame passes as it is.
"""

from __future__ import annotations

from loguru import logger
from pipecat.frames.frames import Frame, InputAudioRawFrame, StartFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.processors.audio.engines.quiet_gain import QuietGain


class QuietVoiceGain(FrameProcessor):
    """Applies ``QuietGain`` to the user's mono audio (see the module docstring).

    Args:
        max_gain_db: The most gain applied; 0 passes everything unchanged.
        **kwargs: ``FrameProcessor`` arguments.
    """

    def __init__(self, *, max_gain_db: float = 30.0, **kwargs):
        super().__init__(**kwargs)
        self._max_gain_db = max_gain_db
        self._engine: QuietGain | None = None
        self._rate = 0
        self._announced = False

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Raise a quiet user's audio; pass everything else."""
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):  # each session learns its own user's level
            self._engine, self._announced = None, False
        elif isinstance(frame, InputAudioRawFrame) and frame.num_channels == 1:
            if self._engine is None or frame.sample_rate != self._rate:
                self._rate = frame.sample_rate
                self._engine = QuietGain(frame.sample_rate, max_gain_db=self._max_gain_db)
            engine = self._engine
            frame.audio = engine.process(frame.audio)
            if engine.gain_db > 0 and not self._announced:
                self._announced = True
                logger.info(f"{self}: the user is heard quietly; raising their voice")
        await self.push_frame(frame, direction)
