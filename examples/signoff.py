"""A processor of your own, for ``examples/custom_processor.yaml``: a sign-off after each answer.

Any importable class or function that returns a pipecat ``FrameProcessor`` works; its parameters
come from its signature (here ``text``), validated when the pipeline file loads.
"""

from pipecat.frames.frames import Frame, LLMFullResponseEndFrame, LLMTextFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class SignOff(FrameProcessor):
    """Adds ``text`` at the end of every LLM response, before the TTS speaks it."""

    def __init__(self, text: str = "Anything else?", **kwargs):
        super().__init__(**kwargs)
        self.text = text

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseEndFrame) and direction == FrameDirection.DOWNSTREAM:
            await self.push_frame(LLMTextFrame(f" {self.text}"), direction)
        await self.push_frame(frame, direction)
