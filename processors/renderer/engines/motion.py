"""Motion model shared by all engines: mouth from audio/visemes, blinks, breathing, sway, nods.

Pure numpy and deterministic: every random choice comes from the seed, and state advances one call
per frame, so the same seed and input give the same motion.

Mouth: the audio envelope of the frame's own period (RMS in dB against a slowly decaying running
peak, so loud and quiet voices both use the full range) sets how far the mouth opens; visemes, when
the TTS sends them, shape it (``round`` narrows, ``spread`` widens, ``closed`` — p/b/m — shuts it).
Opening is fast and closing a little slower, so the mouth lands on syllables and closes in pauses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# viseme name -> (opening scale, width: -1 round … +1 spread). Names are matched loosely.
VISEME_SHAPES: dict[str, tuple[float, float]] = {
    "rest": (0.0, 0.0),
    "sil": (0.0, 0.0),
    "closed": (0.05, 0.0),
    "pp": (0.05, 0.0),
    "open": (1.0, 0.15),
    "aa": (1.0, 0.15),
    "round": (0.6, -0.7),
    "oo": (0.6, -0.7),
    "ou": (0.6, -0.7),
    "spread": (0.5, 0.7),
    "ee": (0.5, 0.7),
    "ih": (0.55, 0.4),
    "fv": (0.18, 0.25),
    "ff": (0.18, 0.25),
    "th": (0.35, 0.2),
    "l": (0.5, 0.1),
    "dd": (0.45, 0.15),
    "kk": (0.5, 0.1),
    "ss": (0.3, 0.5),
    "sh": (0.35, -0.3),
    "ch": (0.35, -0.3),
    "rr": (0.4, -0.3),
    "nn": (0.35, 0.1),
    "td": (0.45, 0.15),
    "sz": (0.3, 0.5),
    "kg": (0.5, 0.1),
    "r": (0.4, -0.3),
    "mid": (0.7, 0.0),
}


def viseme_shape(name: str) -> tuple[float, float]:
    """Opening scale and width of a viseme name; unknown names keep the envelope as is."""
    key = name.lower().strip()
    if key in VISEME_SHAPES:
        return VISEME_SHAPES[key]
    for prefix, shape in VISEME_SHAPES.items():
        if key.startswith(prefix):
            return shape
    return (1.0, 0.0)


@dataclass(frozen=True)
class MouthShape:
    """Mouth opening (0 closed … 1 wide open) and width (-1 round … +1 spread)."""

    open: float = 0.0
    width: float = 0.0


class MotionModel:
    """Per-frame mouth, blink and head motion.

    Args:
        fps: Frames per second (motion is defined in seconds, sampled per frame).
        sample_rate: Audio sample rate (for the envelope).
        seed: Seed for blink timing and sway phases.

    Attributes:
        listening: While True, the head nods slowly now and then (the user is speaking).
    """

    def __init__(self, fps: int, sample_rate: int, seed: int = 0):
        self.fps = fps
        self.sample_rate = sample_rate
        self.listening = False
        self._rng = np.random.default_rng(seed)
        self._open = 0.0
        self._width = 0.0
        self._peak_db = 66.0
        self._listen_level = 0.0
        self._listen_time = 0.0
        self._blinks: list[float] = []
        self._next_blink = float(self._rng.uniform(0.8, 2.5))
        r = self._rng.uniform(0, 2 * math.pi, 6)
        f = self._rng.uniform(0.6, 1.4, 3)
        self._sway = [(0.07 * f[0], r[0]), (0.13 * f[1], r[1]), (0.05 * f[2], r[2])]
        self._phase = r[3:]

    def mouth(self, audio: np.ndarray, visemes: list[str], speaking: bool) -> MouthShape:
        """Advance the mouth by one frame and return its shape.

        Args:
            audio: The frame's speech samples (int16), empty when idle.
            visemes: Viseme names active during the frame (first: the one in force at its start).
            speaking: Whether the frame carries speech.
        """
        target_open, target_width = 0.0, 0.0
        if speaking and audio.size:
            # vowels open the mouth: weight the envelope toward the band below ~1 kHz
            taps = max(1, self.sample_rate // 1000)
            low = np.convolve(audio.astype(np.float32), np.full(taps, 1.0 / taps), "same")
            rms = float(np.sqrt(np.mean(low**2)))
            db = 20.0 * math.log10(rms + 1.0)
            self._peak_db = max(db, self._peak_db - 0.03)
            env = min(1.0, max(0.0, (db - (self._peak_db - 24.0)) / 22.0)) ** 1.4
            if visemes:
                shapes = [viseme_shape(v) for v in visemes]
                scale = float(np.mean([s[0] for s in shapes]))
                target_width = float(np.mean([s[1] for s in shapes]))
                # a closure (p/b/m) in the frame wins: the lips must meet
                closure = any(sh[0] <= 0.06 for sh in shapes) and len(shapes) <= 2
                target_open = env * (0.08 if closure else 0.35 + 0.65 * scale)
            else:
                target_open = env
                target_width = 0.25 * math.sin(self._open * 3.0)
        rate = 0.75 if target_open > self._open else 0.45
        self._open += (target_open - self._open) * rate
        self._width += (target_width - self._width) * 0.4
        if self._open < 0.01:
            self._open = 0.0
        return MouthShape(float(self._open), float(self._width))

    def idle(self, k: int) -> tuple[float, tuple[float, float, float, float]]:
        """Blink closure and head motion ``(dx, dy, roll, scale)`` of frame ``k``.

        ``dx``/``dy`` are fractions of the frame size; ``roll`` is in radians.
        """
        t = k / self.fps
        blink = self._blink(t)
        dx = sum(0.006 * math.sin(2 * math.pi * fr * t + ph) for fr, ph in self._sway[:2])
        dy = 0.003 * math.sin(2 * math.pi * self._sway[2][0] * t + self._sway[2][1])
        roll = 0.010 * math.sin(2 * math.pi * 0.09 * t + self._phase[0])
        roll += 0.005 * math.sin(2 * math.pi * 0.21 * t + self._phase[1])
        breath = math.sin(2 * math.pi * 0.23 * t + self._phase[2])
        dy += 0.0025 * breath
        scale = 1.0 + 0.003 * breath
        # listening: nods fade in while the user speaks, out when they stop
        goal = 1.0 if self.listening else 0.0
        self._listen_level += (goal - self._listen_level) * (0.08 if goal else 0.04)
        if self._listen_level > 0.01:
            self._listen_time += 1.0 / self.fps
            nod = max(0.0, math.sin(2 * math.pi * self._listen_time / 2.6)) ** 2
            dy += 0.012 * self._listen_level * nod
            roll += 0.015 * self._listen_level
        else:
            self._listen_time = 0.0
        # speaking: a small bob with the voice
        dy += 0.004 * self._open
        return blink, (dx, dy, roll, scale)

    def _blink(self, t: float) -> float:
        while t >= self._next_blink:
            self._blinks.append(self._next_blink)
            if self._rng.random() < 0.12:  # a double blink now and then
                self._blinks.append(self._next_blink + 0.32)
            self._next_blink += float(self._rng.uniform(2.2, 5.5))
        self._blinks = [b for b in self._blinks if t - b < 0.4]
        value = 0.0
        for start in self._blinks:
            dt = t - start
            if dt < 0:
                continue
            if dt < 0.07:
                v = dt / 0.07
            elif dt < 0.11:
                v = 1.0
            elif dt < 0.27:
                v = 1.0 - (dt - 0.11) / 0.16
            else:
                v = 0.0
            value = max(value, v)
        return value
