"""A user-turn stop strategy that wraps another one (the detector) and forwards its events.

pipecat's stop strategies report through event handlers (``on_push_frame``,
``on_broadcast_frame``, ``on_user_turn_speculation_cancelled``, ``on_user_turn_inference_triggered``,
``on_user_turn_stopped``). ``WrappingUserTurnStopStrategy`` subscribes to them, forwards frames,
broadcasts and cancellations as its own, and leaves the two decisions (inference, turn stopped) to
the subclass. Setup and cleanup reach the wrapped strategy too.
"""

from __future__ import annotations

from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.turns.user_stop import BaseUserTurnStopStrategy
from pipecat.turns.user_stop.base_user_turn_stop_strategy import UserTurnStoppedParams


class WrappingUserTurnStopStrategy(BaseUserTurnStopStrategy):
    """Base of strategies that decorate a wrapped detector's decision.

    Args:
        inner: The wrapped stop strategy.
        **kwargs: Passed to ``BaseUserTurnStopStrategy``.
    """

    def __init__(self, inner: BaseUserTurnStopStrategy, **kwargs):
        super().__init__(**kwargs)
        self._inner = inner
        inner.add_event_handler("on_push_frame", self._forward_push)
        inner.add_event_handler("on_broadcast_frame", self._forward_broadcast)
        inner.add_event_handler("on_user_turn_speculation_cancelled", self._forward_cancel)
        inner.add_event_handler("on_user_turn_inference_triggered", self._on_inner_inference)
        inner.add_event_handler("on_user_turn_stopped", self._on_inner_stopped)

    @property
    def inner(self) -> BaseUserTurnStopStrategy:
        """The wrapped strategy."""
        return self._inner

    @property
    def resolves_proposed_turn_stop_frames(self) -> bool:
        """Whatever the wrapped strategy does with proposals."""
        return self._inner.resolves_proposed_turn_stop_frames

    async def setup(self, setup: FrameProcessorSetup):
        """Set up this strategy and the wrapped one."""
        await super().setup(setup)
        await self._inner.setup(setup)

    async def cleanup(self):
        """Clean up both."""
        await super().cleanup()
        await self._inner.cleanup()

    async def _forward_push(self, _inner, frame: Frame, direction: FrameDirection):
        await self.push_frame(frame, direction)

    async def _forward_broadcast(self, _inner, frame_cls, **kwargs):
        await self.broadcast_frame(frame_cls, **kwargs)

    async def _forward_cancel(self, _inner):
        await self.trigger_user_turn_speculation_cancelled()

    async def _on_inner_inference(self, _inner, speculation):
        """The wrapped strategy wants inference (default: pass it on)."""
        await self.trigger_user_turn_inference_triggered(speculation=speculation)

    async def _on_inner_stopped(self, _inner, params: UserTurnStoppedParams):
        """The wrapped strategy ended the turn (default: end it)."""
        await self.trigger_user_turn_stopped(
            enable_user_speaking_frames=params.enable_user_speaking_frames
        )
