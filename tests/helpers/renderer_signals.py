"""Renderer test signals: speech-shaped audio that needs no TTS engine."""

from __future__ import annotations

import numpy as np


def speech_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """Syllable-rate amplitude-modulated voiced noise with pauses: speech-shaped, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    carrier = np.sin(2 * np.pi * 140 * t) + 0.5 * np.sin(2 * np.pi * 420 * t)
    carrier += 0.2 * rng.standard_normal(t.size)
    syllables = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
    pauses = (np.sin(2 * np.pi * 0.4 * t) > -0.6).astype(float)
    return (carrier * syllables * pauses * 6000).astype(np.int16)
