"""Fixtures for renderer tests: a portrait on disk and its registered replica."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def portrait_path(tmp_path_factory) -> Path:
    """The default persona's portrait, or the public-domain astronaut cropped to her face."""
    guide = ROOT / "pipelines" / "personas" / "guide" / "replica.png"
    if guide.is_file():
        return guide
    from skimage import data

    face = data.astronaut()[0:300, 100:400]
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    cv2.imwrite(str(path), np.ascontiguousarray(face[:, :, ::-1]))
    return path


@pytest.fixture(scope="session")
def replica(portrait_path, tmp_path_factory):
    from presence.processors.renderer.replica import register_replica

    return register_replica(portrait_path, "test", tmp_path_factory.mktemp("replicas"))
