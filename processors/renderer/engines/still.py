"""The still engine: the replica's portrait, unmoving, on the same audio clock as every engine.

Useful as the cheapest fallback (no torch) and as the control in benchmarks: its lip-sync score
is what "no lip sync" measures.
"""

from __future__ import annotations

import numpy as np

from presence.processors.renderer.engines.base import FrameState, RendererEngine
from presence.processors.renderer.engines.layout import fit_portrait


class StillEngine(RendererEngine):
    """Shows the portrait as is; frames still carry their audio (see ``RendererEngine``)."""

    name = "still"

    def _load(self, replica) -> None:
        self._image = fit_portrait(replica.neutral, self.width, self.height)

    def _draw(self, state: FrameState) -> np.ndarray:
        return self._image.copy()
