"""Fallback providers for a stage: fail over, replay the failed work, come back to the primary.

``build_with_fallback(stage, specs, ctx)`` builds a stage's providers (its ``fallback:`` list) and,
with more than one, wraps them in a pipecat ``ServiceSwitcher`` (``LLMSwitcher`` for LLM services)
whose ``FallbackStrategy``:

- fails over when the active provider reports a failed turn (``TurnFailedFrame``) and *replays* it
  on the next usable provider, so the user still gets this turn's answer; a provider that gives up
  for good on its own (e.g. an STT that cannot reconnect) fails over the pipecat way;
- goes back to the primary at the start of a later turn once ``recover_after_s`` have passed since
  the failover (LLM and TTS; a turn starts with an ``LLMContextFrame``, a reply with an
  ``LLMFullResponseStartFrame`` or a ``TTSSpeakFrame``). If the primary fails again, the same
  turn is replayed on the backup and the wait starts over, so a provider that stays down costs
  one failed attempt per ``recover_after_s``. ``None`` stays on the backup for the session.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseStartFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.llm_switcher import LLMSwitcher
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyFailover
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService

if TYPE_CHECKING:
    from presence.framework.config import StageConfig
    from presence.framework.registry import BuildContext

DEFAULT_RECOVER_AFTER_S = 60.0
TURN_STARTS = (LLMContextFrame, LLMFullResponseStartFrame, TTSSpeakFrame)
RECOVERING_STAGES = ("llm", "tts")


@dataclass
class TurnFailedFrame(ErrorFrame):
    """An error after which a backup provider should take over and redo ``replay``.

    Parameters:
        replay: The frame that, queued into the backup provider, redoes the failed work
            (an ``LLMContextFrame`` for an LLM turn, a ``TTSSpeakFrame`` for unspoken text).
    """

    replay: Frame | None = None


class FallbackStrategy(ServiceSwitcherStrategyFailover):
    """Failover that replays the failed turn on the next service and later returns to the first.

    Attributes:
        recover_after_s: Seconds after a failover before a turn goes back to the primary
            (``None``: never).
    """

    recover_after_s: float | None = None

    def __init__(self, services: list[FrameProcessor]):
        super().__init__(services)
        self._failed_over_at: float | None = None

    async def handle_error(self, error: ErrorFrame) -> FrameProcessor | None:
        """Switch to the next usable service after a failed one; replay its work there."""
        if not isinstance(error, TurnFailedFrame):
            return await super().handle_error(error)
        failed = error.processor or self._active_service
        start = self._services.index(failed) if failed in self._services else 0
        for candidate in self._services[start + 1 :]:
            if candidate.is_usable:
                switched = await self._set_active_if_available(candidate)
                if switched:
                    self._failed_over_at = time.monotonic()
                if switched and error.replay is not None:
                    logger.warning(f"{failed.name} failed; {candidate.name} takes over")
                    await candidate.queue_frame(error.replay, FrameDirection.DOWNSTREAM)
                return switched
        return None

    async def recover_if_due(self) -> FrameProcessor | None:
        """Make the primary active again once the wait after the failover is over.

        Returns:
            The primary when this call switched back to it, else ``None``.
        """
        primary = self._services[0]
        if (
            self.recover_after_s is None
            or self._failed_over_at is None
            or self._active_service is primary
            or time.monotonic() - self._failed_over_at < self.recover_after_s
        ):
            return None
        self._failed_over_at = None
        if not primary.is_usable:  # written off by its failed turn: give it this turn (half-open)
            await primary.set_usable(True)
        switched = await self._set_active_if_available(primary)
        if switched:
            logger.info(f"{primary.name} is tried again after the failover")
        return switched


class _RecoverAtTurnStart:
    """Switcher mixin: before a new turn or reply goes in, let the strategy return to the primary."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Recover at a turn start, then switch the frame as pipecat does."""
        if direction == FrameDirection.DOWNSTREAM and isinstance(frame, TURN_STARTS):
            await self.strategy.recover_if_due()
        await super().process_frame(frame, direction)


class RecoveringServiceSwitcher(_RecoverAtTurnStart, ServiceSwitcher):
    """A ``ServiceSwitcher`` that returns to its primary at a turn start (``FallbackStrategy``)."""


class RecoveringLLMSwitcher(_RecoverAtTurnStart, LLMSwitcher):
    """An ``LLMSwitcher`` that returns to its primary at a turn start (``FallbackStrategy``)."""


def _later_usable(services: Sequence[FrameProcessor], index: int) -> bool:
    return any(s.is_usable for s in services[index + 1 :])


def build_with_fallback(
    stage: str,
    specs: StageConfig | Sequence[StageConfig],
    ctx: BuildContext,
    *,
    recover_after_s: float | None = None,
) -> FrameProcessor:
    """Build a stage from its provider and ``fallback:`` list.

    Args:
        stage: The stage name (``stt``, ``llm``, ``tts``).
        specs: The resolved stage (its ``fallbacks`` and ``recover_after_s`` are used), or the
            providers in order.
        ctx: The build context handed to every factory.
        recover_after_s: With a list of providers: seconds before going back to the primary
            (default ``DEFAULT_RECOVER_AFTER_S`` for LLM and TTS; STT stays on the backup).

    Returns:
        The primary's processor when there is no fallback; otherwise a switcher trying them in
        order.
    """
    if not isinstance(specs, Sequence):
        if recover_after_s is None:
            recover_after_s = getattr(specs, "recover_after_s", None)
        specs = [specs, *specs.fallbacks]
    services = [spec.provider.factory(spec.params, ctx) for spec in specs]
    if len(services) == 1:
        return services[0]
    for i, service in enumerate(services):
        if hasattr(service, "has_backup"):
            service.has_backup = lambda i=i: _later_usable(services, i)
    if stage == "llm" and all(isinstance(s, LLMService) for s in services):
        switcher = RecoveringLLMSwitcher(services, strategy_type=FallbackStrategy)
    else:
        switcher = RecoveringServiceSwitcher(services, strategy_type=FallbackStrategy)
    if stage in RECOVERING_STAGES:
        wait = DEFAULT_RECOVER_AFTER_S if recover_after_s is None else recover_after_s
        switcher.strategy.recover_after_s = wait
    return switcher
