"""Replica registration: a portrait (or a video's first frame) becomes what the renderer animates.

``register_replica(path, name, cache_dir)`` detects the one face (OpenCV Haar), finds the eyes
(Haar eye cascade, falling back to face proportions), the mouth line (darkest row in the lower face)
and its width (lip redness), the chin and jaw, crops a square portrait around the face at
``CANONICAL_SIZE``, and precomputes the displacement bases the warp engine drives:

- ``open``: lower lip and jaw drop, upper lip lifts (per unit of mouth opening);
- ``width``: lip corners move out (spread) or in (round);
- ``blink``: upper lids slide down over the eyes;
- ``head_weight``: how much each pixel follows head motion (face 1, background less).

Bases are in ``grid_sample`` units (the frame spans -1…1), so they resize to any output size
unchanged. The result is cached on disk as ``<sha256 of content>.npz``: a later registration of the
same bytes loads in milliseconds. Bad input raises ``ReplicaError`` saying what to change.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from loguru import logger

from presence.framework.errors import ReplicaError

CANONICAL_SIZE = 512
MIN_SIDE = 128
MIN_FACE = 64
CACHE_VERSION = "r4"
Progress = Callable[[float, str], None]


@dataclass
class Replica:
    """A registered replica.

    Attributes:
        name: Display name.
        content_hash: sha256 of the source bytes (the cache key).
        neutral: The square portrait, ``CANONICAL_SIZE²×3`` uint8 RGB.
        geometry: Landmarks in fractions of the portrait side (x right, y down): ``face``
            ``[x, y, w, h]``, ``eyes`` ``[[x, y], [x, y]]``, ``eye_width``, ``eye_height``,
            ``mouth`` ``[x, y]``, ``mouth_width``, ``jaw_drop``, ``lip_lift``, ``chin``.
        bases: ``open``, ``width``, ``blink`` (``S×S×2`` float32, grid units) and
            ``head_weight`` (``S×S`` float32).
        source: The file it was registered from.
    """

    name: str
    content_hash: str
    neutral: np.ndarray
    geometry: dict
    bases: dict[str, np.ndarray] = field(default_factory=dict)
    source: Path | None = None

    @property
    def size(self) -> int:
        """Side of the canonical portrait in pixels."""
        return int(self.neutral.shape[0])


def default_cache_dir() -> Path:
    """``$PRESENCE_CACHE_DIR/replicas`` or ``~/.cache/presence/replicas``."""
    root = os.environ.get("PRESENCE_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "presence"
    return base / "replicas"


def register_replica(
    path: str | Path,
    name: str | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Replica:
    """Register (or load from the cache) the replica in ``path``.

    Args:
        path: A portrait image (PNG/JPEG/…) or a video (its first frame is used).
        name: Display name; defaults to the file's stem.
        cache_dir: Where registrations are cached; ``default_cache_dir()`` when ``None``.
        progress: Called as ``progress(fraction, message)`` while registering.

    Returns:
        The replica.

    Raises:
        ReplicaError: The file is missing or unreadable, or has no face, several faces, or a
            face or image too small to animate.
    """
    report = progress or (lambda fraction, message: None)
    path = Path(path)
    if not path.is_file():
        raise ReplicaError(f"{path}: no such file; give the path of a portrait image or video")
    data = path.read_bytes()
    digest = hashlib.sha256(data + CACHE_VERSION.encode()).hexdigest()
    name = name or path.stem
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / f"{digest}.npz"
    report(0.05, "checking the cache")
    if cached.is_file():
        try:
            replica = _load_cached(cached, name, path)
            report(1.0, "loaded from cache")
            return replica
        except (OSError, ValueError, KeyError) as exc:
            logger.warning(f"replica cache {cached.name} unreadable ({exc}); registering again")
    report(0.1, "reading the image")
    image = _decode(path, data)
    report(0.25, "finding the face")
    box = _detect_face(image, path)
    report(0.45, "cropping the portrait")
    portrait, face = _crop(image, box)
    report(0.6, "finding eyes and mouth")
    geometry = _landmarks(portrait, face)
    report(0.8, "computing displacement bases")
    bases = compute_bases(geometry, CANONICAL_SIZE)
    replica = Replica(name, digest, portrait, geometry, bases, path)
    report(0.95, "saving to the cache")
    _save(cached, replica)
    report(1.0, "registered")
    return replica


def create_replica_cli(
    path: str | Path, name: str | None = None, cache_dir: str | Path | None = None
) -> Replica:
    """``presence replica create``: register with a rich progress bar and print a summary.

    Raises:
        ReplicaError: As ``register_replica``.
    """
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("registering", total=1.0)

        def update(fraction: float, message: str) -> None:
            bar.update(task, completed=fraction, description=message)

        replica = register_replica(path, name, cache_dir, progress=update)
    g = replica.geometry
    console.print(
        f"replica [bold]{replica.name}[/bold] ready: face at {g['face']}, "
        f"mouth at {[round(v, 3) for v in g['mouth']]}, cache key {replica.content_hash[:12]}"
    )
    return replica


# ------------------------------------------------------------------ reading


def _decode(path: Path, data: bytes) -> np.ndarray:
    buf = np.frombuffer(data, np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        cap = cv2.VideoCapture(str(path))
        ok, bgr = cap.read() if cap.isOpened() else (False, None)
        cap.release()
        if not ok or bgr is None:
            raise ReplicaError(
                f"{path}: not a readable image or video; use a PNG or JPEG portrait (or an MP4)"
            )
    h, w = bgr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ReplicaError(
            f"{path}: the image is {w}×{h} px; use a portrait at least {MIN_SIDE} px on its "
            "short side (512 px or more looks best)"
        )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _detect_face(image: np.ndarray, path: Path) -> tuple[int, int, int, int]:
    h, w = image.shape[:2]
    scale = min(1.0, 640.0 / max(h, w))
    small = cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    min_side = max(24, int(0.1 * min(small.shape[:2])))
    found = cascade.detectMultiScale(gray, 1.1, 6, minSize=(min_side, min_side))
    faces = sorted((tuple(int(v / scale) for v in f) for f in found), key=lambda f: -f[2] * f[3])
    if not faces:
        raise ReplicaError(
            f"{path}: no face found; use a well-lit, frontal portrait where the face fills at "
            "least a quarter of the frame"
        )
    big = [f for f in faces if f[2] * f[3] > 0.35 * faces[0][2] * faces[0][3]]
    if len(big) > 1:
        raise ReplicaError(
            f"{path}: {len(big)} faces found; crop the image to the one person to animate"
        )
    face = faces[0]
    if face[2] < MIN_FACE:
        raise ReplicaError(
            f"{path}: the face is only {face[2]} px wide; use a closer or larger portrait "
            f"(face at least {MIN_FACE} px, ideally 200 px or more)"
        )
    return face


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, list[float]]:
    """Square crop around the face, resized to the canonical size; face box in fractions."""
    h, w = image.shape[:2]
    fx, fy, fw, fh = box
    side = int(min(2.0 * fw, h, w))
    cx, cy = fx + fw / 2, fy + fh * 0.58
    x0 = int(round(min(max(cx - side / 2, 0), w - side)))
    y0 = int(round(min(max(cy - side / 2, 0), h - side)))
    crop = image[y0 : y0 + side, x0 : x0 + side]
    portrait = cv2.resize(crop, (CANONICAL_SIZE, CANONICAL_SIZE), interpolation=cv2.INTER_AREA)
    face = [(fx - x0) / side, (fy - y0) / side, fw / side, fh / side]
    return np.ascontiguousarray(portrait), face


# ---------------------------------------------------------------- landmarks


def _landmarks(portrait: np.ndarray, face: list[float]) -> dict:
    s = portrait.shape[0]
    fx, fy, fw, fh = face
    eyes = _find_eyes(portrait, face)
    # mouth: the largest blob of lip redness in the lower face, near the face's vertical axis
    cx = (eyes[0][0] + eyes[1][0]) / 2
    mouth_x, mouth_y, mouth_w = cx, fy + 0.82 * fh, 0.4 * fw
    y_lo, y_hi = int((fy + 0.68 * fh) * s), int(min(fy + 1.0 * fh, 0.99) * s)
    x_lo, x_hi = int(max(cx - 0.25 * fw, 0) * s), int(min(cx + 0.25 * fw, 1) * s)
    rgb = cv2.GaussianBlur(portrait.astype(np.float32), (0, 0), 1.5)[y_lo:y_hi, x_lo:x_hi]
    if rgb.size:
        redness = rgb[..., 0] - 0.5 * (rgb[..., 1] + rgb[..., 2])
        mask = (redness > np.percentile(redness, 85)).astype(np.uint8)
        k = max(3, int(0.05 * fw * s) | 1)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((k // 2 | 1, k), np.uint8))
        n, labels, stats, cents = cv2.connectedComponentsWithStats(mask)
        if n > 1:
            best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            bx, by, bw, bh = stats[best, :4]
            if bw > 0.2 * fw * s:
                mouth_x = (x_lo + bx + bw / 2) / s
                mouth_y = (y_lo + by + bh / 2) / s
                mouth_w = float(np.clip(bw / s, 0.3 * fw, 0.5 * fw))
    return {
        "face": [round(v, 4) for v in face],
        "eyes": [[float(x), float(y)] for x, y in eyes],
        "eye_width": 0.2 * fw,
        "eye_height": 0.065 * fw,
        "mouth": [float(mouth_x), float(mouth_y)],
        "mouth_width": float(mouth_w),
        "jaw_drop": 0.075 * fw,
        "lip_lift": 0.02 * fw,
        "chin": float(min(fy + 1.15 * fh, 0.98)),
    }


def _find_eyes(portrait: np.ndarray, face: list[float]) -> list[tuple[float, float]]:
    s = portrait.shape[0]
    fx, fy, fw, fh = face
    guess = [(fx + 0.31 * fw, fy + 0.40 * fh), (fx + 0.69 * fw, fy + 0.40 * fh)]
    x0, y0 = int(fx * s), int((fy + 0.15 * fh) * s)
    x1, y1 = int((fx + fw) * s), int((fy + 0.58 * fh) * s)
    gray = cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)[max(0, y0) : y1, max(0, x0) : x1]
    if gray.size == 0:
        return guess
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")
    min_eye = max(8, int(0.12 * fw * s))
    found = cascade.detectMultiScale(cv2.equalizeHist(gray), 1.1, 4, minSize=(min_eye, min_eye))
    centers = [((x0 + ex + ew / 2) / s, (y0 + ey + eh / 2) / s) for ex, ey, ew, eh in found]
    eyes = []
    for gx, gy in guess:  # nearest detection to each expected eye, if close enough
        near = [c for c in centers if abs(c[0] - gx) < 0.12 * fw and abs(c[1] - gy) < 0.12 * fh]
        near.sort(key=lambda c: (c[0] - gx) ** 2 + (c[1] - gy) ** 2)
        eyes.append(near[0] if near else (gx, gy))
    return eyes


# -------------------------------------------------------------------- bases


def _smooth(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def compute_bases(g: dict, size: int) -> dict[str, np.ndarray]:
    """Displacement bases for ``size²`` frames from ``geometry`` (grid units; see module doc)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (xx + 0.5) / size, (yy + 0.5) / size  # fractions of the side
    fx, fy, fw, fh = g["face"]
    mx, my = g["mouth"]
    mw, jaw, lift, chin = g["mouth_width"], g["jaw_drop"], g["lip_lift"], g["chin"]
    to_grid = 2.0  # fractions of the side -> grid units

    # open: lower lip + jaw drop (sample from above), upper lip lifts (sample from below)
    # the lips' own profile near the mouth line (corners stay put), the jaw's broader one below
    wx_jaw = np.clip(1 - ((x - mx) / (0.48 * fw)) ** 2, 0, 1) ** 1.5
    wx_lip = np.clip(1 - ((x - mx) / (0.56 * mw)) ** 2, 0, 1)
    blend = _smooth((y - my) / (0.16 * fw))
    rise = _smooth((y - (my - 0.004)) / (0.03 * fw))
    fall = 1 - _smooth((y - chin) / (0.3 * fw))
    lower = rise * fall * (wx_lip * (1 - blend) + wx_jaw * blend)
    up = (1 - _smooth((my - y) / (0.1 * fw))) * (y < my)
    open_y = -jaw * lower + lift * wx_lip * up
    open_b = np.stack([np.zeros_like(open_y), open_y * to_grid], axis=-1)

    # width: corners out (+1) or in (-1)
    gx = np.exp(-(((x - mx) / (0.75 * mw)) ** 2)) * np.exp(-(((y - my) / (0.1 * fw)) ** 2))
    width_x = -((x - mx) / (0.5 * mw)) * 0.09 * mw * gx
    width_b = np.stack([width_x * to_grid, np.zeros_like(width_x)], axis=-1)

    # blink: the strip [lid top - L, eye bottom] samples the lid skin [lid top - L, lid top]
    blink_y = np.zeros_like(x)
    ew, eh = g["eye_width"], g["eye_height"]
    for ex, ey in g["eyes"]:
        top, bot, lid = ey - 0.55 * eh, ey + 0.5 * eh, 0.9 * eh
        src = (top - lid) + (y - (top - lid)) * lid / (lid + (bot - top))
        inside = (y >= top - lid) & (y <= bot)
        tail = (y > bot) * (1 - _smooth((y - bot) / (0.15 * eh)))
        d = np.where(inside, src - y, (top - bot) * tail)
        wx = np.clip(1 - ((x - ex) / (0.62 * ew)) ** 2, 0, 1) ** 0.6
        blink_y += d * wx
    blink_b = np.stack([np.zeros_like(blink_y), blink_y * to_grid], axis=-1)

    # head weight: the head follows head motion fully; background and shoulders partly
    hx, hy = fx + fw / 2, fy + fh * 0.55
    r = np.sqrt(((x - hx) / (0.62 * fw)) ** 2 + ((y - hy) / (0.82 * fh)) ** 2)
    head = 0.3 + 0.7 * (1 - _smooth((r - 1.0) / 0.6))
    return {
        "open": open_b.astype(np.float32),
        "width": width_b.astype(np.float32),
        "blink": blink_b.astype(np.float32),
        "head_weight": head.astype(np.float32),
    }


# -------------------------------------------------------------------- cache


def _save(path: Path, replica: Replica) -> None:
    """Write ``replica`` to ``path`` whole.

    Processes registering the same face at once (a call per process) each write a file of their
    own and move it into place.
    """
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp.npz")
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle,
                neutral=replica.neutral,
                geometry=np.frombuffer(json.dumps(replica.geometry).encode(), np.uint8),
                **{f"basis_{k}": v for k, v in replica.bases.items()},
            )
        os.replace(tmp, path)
    except OSError as exc:  # a read-only cache only costs the next start its warm load
        logger.warning(f"could not cache replica in {path.parent}: {exc}")
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _load_cached(path: Path, name: str, source: Path) -> Replica:
    with np.load(path) as z:
        geometry = json.loads(bytes(z["geometry"]).decode())
        bases = {k[6:]: z[k] for k in z.files if k.startswith("basis_")}
        neutral = z["neutral"]
    return Replica(name, path.stem, neutral, geometry, bases, source)
