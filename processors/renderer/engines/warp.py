"""The warp engine: weightless lip sync by torch ``grid_sample`` displacement of the portrait.

Per frame, one sampling grid is built from the replica's displacement bases (see
``replica.compute_bases``) weighted by the motion model's controls — mouth opening and width,
blink — plus a head transform (sway, breathing, nods) weighted by ``head_weight``; one
``grid_sample`` warps the portrait, and a soft mouth cavity (dark interior, a hint of teeth) is
blended into the gap between the lips. Local bases only touch their bounding boxes, so a frame costs
one full-frame sample plus small region updates. Runs unchanged on CUDA; on CPU the engine uses one
torch thread (``torch.set_num_threads(1)``) so several renderers do not stall each other.
"""

from __future__ import annotations

import math

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

    @torch.inference_mode()
    def _draw(self, state: FrameState) -> np.ndarray:
        w, h = self.width, self.height
        dx, dy, roll, scale = state.head
        # head: output p samples source c + R(-roll)(p - c - t)/scale, as d = M·p + b in grid units
        px, py = self._pivot
        c = (2 * px / w - 1, 2 * py / h - 1)
        t = (2 * dx, 2 * dy)
        cos, sin = math.cos(-roll) / scale, math.sin(-roll) / scale
        asp = w / h  # rotate in pixel space: x_pix ∝ x*w, y_pix ∝ y*h
        m00, m01, m10, m11 = cos - 1, -sin / asp, sin * asp, cos - 1
        b0 = -(m00 * c[0] + m01 * c[1]) - cos * t[0] + sin / asp * t[1]
        b1 = -(m10 * c[0] + m11 * c[1]) - sin * asp * t[0] - cos * t[1]
        base = self._base
        gx, gy = base[..., 0], base[..., 1]
        grid = torch.empty_like(base)
        grid[..., 0] = gx + self._hw * (m00 * gx + m01 * gy + b0)
        grid[..., 1] = gy + self._hw * (m10 * gx + m11 * gy + b1)
        coef = {"open": state.mouth.open, "width": state.mouth.width, "blink": state.blink}
        for key, sy, sx, field in self._local:
            k = coef[key]
            if k:
                grid[0, sy, sx] += k * field
        out = F.grid_sample(
            self._src, grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        if state.mouth.open > 0.02:
            # where the mouth went: invert the head displacement at the mouth centre
            mx, my = self._mouth
            gmx, gmy = 2 * mx / w - 1, 2 * my / h - 1
            mx -= (m00 * gmx + m01 * gmy + b0) * w / 2
            my -= (m10 * gmx + m11 * gmy + b1) * h / 2
            self._cavity(out, state.mouth.open, state.mouth.width, mx, my)
        img = out[0].clamp_(0, 255).to(torch.uint8).permute(1, 2, 0)
        return img.cpu().numpy() if img.device.type != "cpu" else img.numpy().copy()

    def _cavity(self, out: torch.Tensor, amount: float, width: float, mx: float, my: float) -> None:
        """Blend the open mouth's interior into the gap the lip displacement opened."""
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
        region = out[0, :, self._cav_y, self._cav_x]
        region.mul_(1 - alpha).add_(color * alpha)
