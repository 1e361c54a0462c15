"""Placing the square replica portrait in a frame of any size (pure numpy/OpenCV).

The portrait is scaled to the frame's short side and centred; a wider or taller frame is filled
by mirroring the portrait's edges. ``Layout`` maps portrait fractions to frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Layout:
    """Where the square portrait sits in a ``width×height`` frame."""

    width: int
    height: int
    side: int
    x0: int
    y0: int

    @classmethod
    def of(cls, width: int, height: int) -> Layout:
        """The layout of the portrait in a ``width×height`` frame."""
        side = min(width, height)
        return cls(width, height, side, (width - side) // 2, (height - side) // 2)

    def px(self, fx: float, fy: float) -> tuple[float, float]:
        """Frame pixel of a point given in portrait fractions."""
        return self.x0 + fx * self.side, self.y0 + fy * self.side

    def length(self, f: float) -> float:
        """Pixels of a length given as a fraction of the portrait side."""
        return f * self.side


def _place(img: np.ndarray, layout: Layout, border: int, value: float = 0.0) -> np.ndarray:
    interp = cv2.INTER_AREA if img.shape[0] > layout.side else cv2.INTER_LINEAR
    img = cv2.resize(img, (layout.side, layout.side), interpolation=interp)
    right = layout.width - layout.side - layout.x0
    bottom = layout.height - layout.side - layout.y0
    if layout.x0 or layout.y0 or right or bottom:
        img = cv2.copyMakeBorder(img, layout.y0, bottom, layout.x0, right, border, value=value)
    return img


def fit_portrait(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The portrait scaled and centred in a ``height×width×3`` uint8 frame."""
    return np.ascontiguousarray(_place(image, Layout.of(width, height), cv2.BORDER_REFLECT_101))


def fit_field(field: np.ndarray, width: int, height: int) -> np.ndarray:
    """A displacement field (``S×S×2``, grid units of the square) in frame grid units."""
    layout = Layout.of(width, height)
    out = _place(field.astype(np.float32), layout, cv2.BORDER_CONSTANT, 0.0)
    out[..., 0] *= layout.side / width
    out[..., 1] *= layout.side / height
    return out


def fit_weight(weight: np.ndarray, width: int, height: int) -> np.ndarray:
    """A per-pixel weight map (``S×S``) placed in the frame; the margin takes the edge value."""
    layout = Layout.of(width, height)
    return _place(weight.astype(np.float32), layout, cv2.BORDER_REPLICATE)
