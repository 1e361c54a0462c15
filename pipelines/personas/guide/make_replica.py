"""Make ``replica.png``, the guide persona's portrait (run once; the PNG is committed).

The photo is ``skimage.data.astronaut()``: astronaut Eileen Collins, a NASA photograph in the
public domain, as shipped with scikit-image. This script finds the face with OpenCV's Haar
frontal-face cascade, takes a square around it with enough margin for the whole head and some
shoulders, resizes it to 512x512 and writes ``replica.png`` next to this file.

Usage::

    python make_replica.py [OUTPUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
from skimage import data

SIZE = 512
MARGIN = 1.25  # crop side = face width * (1 + 2 * MARGIN), clipped to the photo
DROP = 0.25  # move the crop centre down by this fraction of the face width (shoulders)


def find_face(gray: np.ndarray) -> tuple[int, int, int, int]:
    """Return the largest frontal face ``(x, y, w, h)`` in a grayscale image."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(60, 60))
    if len(faces) == 0:
        raise SystemExit("no face found in the photo")
    x, y, w, h = max(faces, key=lambda f: f[2] * f[3])
    return int(x), int(y), int(w), int(h)


def square_crop(shape: tuple[int, int], face: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """Top-left corner and side of a square around ``face`` that stays inside the photo."""
    height, width = shape
    x, y, w, h = face
    side = min(int(w * (1 + 2 * MARGIN)), height, width)
    cx, cy = x + w / 2, y + h / 2 + DROP * w
    left = int(np.clip(cx - side / 2, 0, width - side))
    top = int(np.clip(cy - side / 2, 0, height - side))
    return left, top, side


def main(out: Path) -> None:
    """Write the cropped, resized portrait to ``out``."""
    rgb = data.astronaut()
    face = find_face(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    left, top, side = square_crop(rgb.shape[:2], face)
    crop = rgb[top : top + side, left : left + side]
    image = cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(out), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    print(f"face {face}, crop {side}px at ({left}, {top}) -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("replica.png"))
