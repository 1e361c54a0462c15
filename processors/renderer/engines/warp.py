"""The warp engine: weightless lip sync by bilinear displacement of the portrait.

Per frame, one sampling grid is built from the replica's displacement bases (see
``replica.compute_bases``) weighted by the motion model's controls — mouth opening and width,
blink — plus a head transform (sway, breathing, nods) weighted by ``head_weight``; one bilinear
sample warps the portrait, and a soft mouth cavity (dark interior, a hint of teeth) is blended into
the gap between the lips. Local bases only touch their bounding boxes, so a frame costs one
full-frame sample plus small region updates.

On CUDA the sample is torch's ``grid_sample``. On CPU it is OpenCV's ``remap`` over uint8 pixels
with the grid kept in pixel units, which draws the same frame (within 3 levels of 255) about six
times faster than ``grid_sample`` on one thread: a 512² frame takes ~1.5 ms instead of ~9 ms, so the
renderer leaves the cores to speech recognition and synthesis during a turn. Both libraries run one
thread (``torch.set_num_threads(1)``, ``cv2.setNumThreads(1)``) so several renderers do not stall
each other.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from presence.processors.renderer.engines.base import FrameState, RendererEngine
from presence.processors.renderer.engines.layout import Layout, fit_field, fit_portrait, fit_weight


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU raises ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use device: cpu")
    return torch.device(device)


def _roi(field: np.ndarray, pad: int = 2) -> tuple[slice, slice]:
    mag = np.abs(field).reshape(field.shape[0], field.shape[1], -1).max(axis=-1)
    ys, xs = np.nonzero(mag > 1e-6)
    if ys.size == 0:
        return slice(0, 0), slice(0, 0)
    h, w = mag.shape
    return (
        slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)),
        slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1)),
    )


class WarpEngine(RendererEngine):
    """Audio/viseme-driven displacement of jaw, lips and eyelids, with idle head motion.

    Args:
        size, fps, sample_rate, seed: See ``RendererEngine``.
        device: ``auto``, ``cpu`` or ``cuda`` (``cuda:N``).
    """

    name = "warp"

    def __init__(self, size=512, fps=25, sample_rate=24000, seed=0, device: str = "cpu"):
        super().__init__(size, fps, sample_rate, seed)
        self.device = resolve_device(device)

    def _load(self, replica) -> None:
        if self.device.type == "cpu":
            torch.set_num_threads(1)
            cv2.setNumThreads(1)
        w, h, dev = self.width, self.height, self.device
        self._layout = layout = Layout.of(w, h)
        image = fit_portrait(replica.neutral, w, h)
        self._src = torch.from_numpy(image).to(dev).permute(2, 0, 1)[None].float().contiguous()
        xs = (torch.arange(w, device=dev, dtype=torch.float32) * 2 + 1) / w - 1
        ys = (torch.arange(h, device=dev, dtype=torch.float32) * 2 + 1) / h - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        self._base = torch.stack([gx, gy], dim=-1)[None]
        self._hw = torch.from_numpy(fit_weight(replica.bases["head_weight"], w, h)).to(dev)
        self._local = []
        for key in ("open", "width", "blink"):
            field = fit_field(replica.bases[key], w, h)
            sy, sx = _roi(field)
            self._local.append((key, sy, sx, torch.from_numpy(field[sy, sx].copy()).to(dev)))
        self._cpu = (
            _PixelGrid(self._src, self._base, self._hw, self._local) if dev.type == "cpu" else None
        )
        g = replica.geometry
        self._mouth = layout.px(*g["mouth"])
        self._mouth_w = layout.length(g["mouth_width"])
        self._jaw = layout.length(g["jaw_drop"])
        self._lift = layout.length(g["lip_lift"])
        self._pivot = layout.px(g["mouth"][0], g["chin"])
        # mouth cavity region (pixels), generous enough for the widest opening and head motion
        mx, my = self._mouth
        half_w = 0.75 * self._mouth_w + 0.02 * layout.side
        self._cav_y = slice(
            max(0, int(my - self._lift - 0.03 * layout.side)),
            min(h, int(my + 1.3 * self._jaw + 0.03 * layout.side)),
        )
        self._cav_x = slice(max(0, int(mx - half_w)), min(w, int(mx + half_w) + 1))
        cy = torch.arange(self._cav_y.start, self._cav_y.stop, device=dev, dtype=torch.float32)
        cx = torch.arange(self._cav_x.start, self._cav_x.stop, device=dev, dtype=torch.float32)
        self._cav_grid = torch.meshgrid(cy + 0.5, cx + 0.5, indexing="ij")

    def _head(self, state: FrameState) -> tuple[float, ...]:
        """The head transform as ``d = M·p + b`` in grid units: ``(m00, m01, m10, m11, b0, b1)``.

        Output point p samples source c + R(-roll)(p - c - t)/scale, with c the pivot (chin under
        the mouth) and t the head's shift.
        """
        w, h = self.width, self.height
        dx, dy, roll, scale = state.head
        px, py = self._pivot
        c = (2 * px / w - 1, 2 * py / h - 1)
        t = (2 * dx, 2 * dy)
        cos, sin = math.cos(-roll) / scale, math.sin(-roll) / scale
        asp = w / h  # rotate in pixel space: x_pix ∝ x*w, y_pix ∝ y*h
        m00, m01, m10, m11 = cos - 1, -sin / asp, sin * asp, cos - 1
        b0 = -(m00 * c[0] + m01 * c[1]) - cos * t[0] + sin / asp * t[1]
        b1 = -(m10 * c[0] + m11 * c[1]) - sin * asp * t[0] - cos * t[1]
        return m00, m01, m10, m11, b0, b1

    def _mouth_at(self, head: tuple[float, ...]) -> tuple[float, float]:
        """Where the head motion moved the mouth centre (pixels)."""
        m00, m01, m10, m11, b0, b1 = head
        w, h = self.width, self.height
        mx, my = self._mouth
        gmx, gmy = 2 * mx / w - 1, 2 * my / h - 1
        return (
            mx - (m00 * gmx + m01 * gmy + b0) * w / 2,
            my - (m10 * gmx + m11 * gmy + b1) * h / 2,
        )

    @torch.inference_mode()
    def _draw(self, state: FrameState) -> np.ndarray:
        head = self._head(state)
        coef = {"open": state.mouth.open, "width": state.mouth.width, "blink": state.blink}
        if self._cpu is not None:
            img = self._cpu.sample(head, coef)
            if state.mouth.open > 0.02:
                region = img[self._cav_y, self._cav_x]
                pixels = torch.from_numpy(region).permute(2, 0, 1).float()
                self._cavity(pixels, state.mouth.open, state.mouth.width, *self._mouth_at(head))
                region[...] = (
                    pixels.round_().clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
                )
            return img
        m00, m01, m10, m11, b0, b1 = head
        base = self._base
        gx, gy = base[..., 0], base[..., 1]
        grid = torch.empty_like(base)
        grid[..., 0] = gx + self._hw * (m00 * gx + m01 * gy + b0)
        grid[..., 1] = gy + self._hw * (m10 * gx + m11 * gy + b1)
        for key, sy, sx, field in self._local:
            k = coef[key]
            if k:
                grid[0, sy, sx] += k * field
        out = F.grid_sample(
            self._src, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        if state.mouth.open > 0.02:
            region = out[0, :, self._cav_y, self._cav_x]
            self._cavity(region, state.mouth.open, state.mouth.width, *self._mouth_at(head))
        img = out[0].clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)
        return img.cpu().numpy() if img.device.type != "cpu" else img.numpy().copy()

    def _cavity(
        self, region: torch.Tensor, amount: float, width: float, mx: float, my: float
    ) -> None:
        """Blend the open mouth's interior into ``region`` (the cavity box, ``3×h×w`` float)."""
        yy, xx = self._cav_grid
        top = my - self._lift * amount
        bottom = my + self._jaw * amount
        cy, hh = (top + bottom) / 2, max(0.5, 0.46 * (bottom - top))
        hw = 0.5 * self._mouth_w * (0.72 + 0.12 * width) * (0.75 + 0.25 * min(1.0, amount * 1.5))
        r = torch.sqrt(((xx - mx) / hw) ** 2 + ((yy - cy) / hh) ** 2)
        edge = min(0.6, 2.5 / max(hh, 1.0))
        alpha = ((1 - r) / edge).clamp_(0, 1) * min(0.92, amount * 3)
        v = ((yy - (cy - hh)) / (2 * hh)).clamp_(0, 1)  # 0 at the top of the cavity, 1 at bottom
        dark = torch.stack([48 - 18 * v, 18 - 6 * v, 20 - 6 * v])
        teeth = ((0.16 - v) / 0.06).clamp_(0, 1) * min(1.0, amount * 2.5) * 0.45
        shade = 200 - 40 * ((xx - mx).abs() / hw).clamp_(0, 1)
        color = dark * (1 - teeth) + torch.stack([shade, shade * 0.95, shade * 0.9]) * teeth
        region.mul_(1 - alpha).add_(color * alpha)


class _PixelGrid:
    """The warp's sampling grid in pixel units, for OpenCV's ``remap`` on CPU.

    ``grid_sample``'s grid unit g (align_corners=False) is pixel ``((g + 1)·size - 1) / 2``, so
    every term of the grid is scaled once here, and a frame's map is three ``scaleAdd`` passes per
    axis plus the local bases' boxes.
    """

    def __init__(self, src: torch.Tensor, base: torch.Tensor, hw: torch.Tensor, local: list):
        _, _, h, w = src.shape
        self.image = src[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy().copy()
        gx, gy, weight = base[0, ..., 0].numpy(), base[0, ..., 1].numpy(), hw.numpy()

        def px(a: np.ndarray, half: float) -> np.ndarray:
            return np.ascontiguousarray(a * half, dtype=np.float32)

        self.x0 = px(gx + 1, w / 2) - np.float32(0.5)
        self.y0 = px(gy + 1, h / 2) - np.float32(0.5)
        self.x_terms = (px(weight * gx, w / 2), px(weight * gy, w / 2), px(weight, w / 2))
        self.y_terms = (px(weight * gx, h / 2), px(weight * gy, h / 2), px(weight, h / 2))
        self.local = [
            (key, sy, sx, px(field[..., 0].numpy(), w / 2), px(field[..., 1].numpy(), h / 2))
            for key, sy, sx, field in local
        ]

    def sample(self, head: tuple[float, ...], coef: dict[str, float]) -> np.ndarray:
        """The warped portrait (``h×w×3`` uint8) for a head transform and local coefficients."""
        m00, m01, m10, m11, b0, b1 = head
        map_x, map_y = self.x0, self.y0
        for scale, term in zip((m00, m01, b0), self.x_terms, strict=True):
            map_x = cv2.scaleAdd(term, scale, map_x)
        for scale, term in zip((m10, m11, b1), self.y_terms, strict=True):
            map_y = cv2.scaleAdd(term, scale, map_y)
        for key, sy, sx, fx, fy in self.local:
            k = coef[key]
            if k:
                map_x[sy, sx] += k * fx
                map_y[sy, sx] += k * fy
        return cv2.remap(
            self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
