"""Scripted LLM: a fixed reply after a scripted time to first token, at a scripted token rate.

Each ``LLMTextFrame`` carries ``metadata["scripted_elapsed_ms"]`` (request → this token), so an
observer can subtract the provider's share without knowing the configuration.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext, standard_message_text
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings

from presence.benchmarks.fakes.delays import Delay, sample_delay


def _last_user_text(context: LLMContext) -> str | None:
    for message in reversed(context.get_messages()):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            return None
        if role == "user":
            return standard_message_text(message).strip()
    return None


class ScriptedLLMService(LLMService):
    """Streams a fixed reply after a scripted time to first token, at a scripted token rate.

    It subclasses pipecat's ``LLMService``, so speculative responses are held by its speculation
    gate and withdrawn ones are cancelled like any real LLM's. A context whose last message is
    the assistant's gets no reply.

    Args:
        ttft_ms: Request → first token.
        tokens_per_s: Streaming rate after the first token; one token is one word.
        reply: What it says.
        seed: Seed of the delay generator.

    Attributes:
        requests: ``(speculative, user_text)`` of every context it was asked to answer.
    """

    def __init__(
        self,
        *,
        ttft_ms: Delay = 300.0,
        tokens_per_s: float = 50.0,
        reply: str = "Sure. This is a scripted reply.",
        seed: int = 0,
        **kwargs: Any,
    ):
        settings = LLMSettings(
            model="scripted", system_instruction=None, temperature=None, max_tokens=None,
            top_p=None, top_k=None, frequency_penalty=None, presence_penalty=None, seed=None,
            filter_incomplete_user_turns=False, user_turn_completion_config=None,
        )  # fmt: skip
        super().__init__(settings=settings, **kwargs)
        self._spec = ttft_ms
        self._interval = 1.0 / tokens_per_s
        self._tokens = [w + " " for w in reply.split()]
        self._rng = random.Random(seed)
        self.requests: list[tuple[bool, str | None]] = []

    def can_generate_metrics(self) -> bool:
        """Report TTFB and processing metrics."""
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer ``LLMContextFrame``s; pass every other frame on."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        question = _last_user_text(frame.context)
        self.requests.append((bool(frame.speculation), question))
        if question is None:
            return
        ttft = sample_delay(self._spec, self._rng)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        try:
            await self.start_ttfb_metrics()
            await asyncio.sleep(ttft / 1000)
            await self.stop_ttfb_metrics()
            for i, token in enumerate(self._tokens):
                if i:
                    await asyncio.sleep(self._interval)
                text = LLMTextFrame(token)
                text.metadata["scripted_elapsed_ms"] = ttft + i * self._interval * 1000
                await self.push_frame(text)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())
