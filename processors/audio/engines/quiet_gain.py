"""Gain for a user who is heard too quietly: a far or low-gain microphone, a quiet recording.

Silero VAD and Whisper were trained on speech at ordinary levels. Measured through
``presence run pipelines/local.yaml`` on a question whose speech peaks at −3.6 dBFS (heard
word for word): scaled to peak at −30 dBFS, only its first half was heard and the answer was
the fallback; at −40 dBFS no turn was made at all.

``QuietGain`` raises such speech towards ``target_dbfs`` and leaves ordinary speech alone:

* it keeps the levels (RMS, dBFS) of the last ``window_s`` of 10 ms blocks. Voiced blocks are
  those ``min_range_db`` above the window's floor (its ``FLOOR_PERCENTILE``th percentile, digital
  silence left out) and above ``VOICE_DBFS`` (a file's dither or a muted microphone's zeros are
  never raised); the speech level is the ``SPEECH_PERCENTILE``th percentile of the voiced
  blocks, judged once there are ``MIN_VOICED_S`` of them (a word, not the onset of one);
* the wanted gain is ``target_dbfs`` minus the speech level when that is below ``quiet_dbfs``,
  else 0 dB, at most ``max_gain_db``. Without enough voice in the window it is kept, so the next
  sentence starts as loud as the last;
* the applied gain rises towards the wanted one by at most ``STEP_DB`` per block and falls at
  once; no block is raised above ``PEAK_DBFS``, so a user who suddenly speaks up is not clipped.

Over the conversation benchmark's cached questions (18 voices, quiet and noisy rooms) the speech
level is −22.9 dBFS at the lowest, and ``quiet_dbfs`` (−32) leaves them all untouched, byte for
byte (``tests/processors/audio/test_quiet_gain.py`` checks the same of its own renderings).
"""

from __future__ import annotations

from collections import deque

import numpy as np

BLOCK_S = 0.01
SPEECH_PERCENTILE = 90
FLOOR_PERCENTILE = 10
VOICE_DBFS = -60.0  # quieter blocks are silence, dither or hiss, never the voice being raised
DIGITAL_SILENCE_DBFS = -100.0  # a muted microphone or padding: not the room's floor
MIN_VOICED_S = 0.15
ESTIMATE_BLOCKS = 5  # the speech level is estimated again every 50 ms
STEP_DB = 3.0  # per 10 ms block: 0 → 30 dB in 0.1 s
PEAK_DBFS = -1.0
SILENT_DBFS = -120.0


class QuietGain:
    """Raises quiet speech in a mono int16 stream (see the module docstring).

    Args:
        sample_rate: Rate of the audio given to ``process``.
        max_gain_db: The most gain ever applied; 0 turns the gain off.
        quiet_dbfs: Speech level below which the gain is raised.
        target_dbfs: The speech level a quiet voice is raised to.
        min_range_db: How far the speech level must stand above the floor to count as a voice.
        window_s: Seconds of levels the estimate looks at.

    Raises:
        ValueError: A negative ``max_gain_db``, or ``target_dbfs`` not above ``quiet_dbfs``.
    """

    def __init__(self, sample_rate: int, *, max_gain_db: float = 30.0, quiet_dbfs: float = -32.0,
                 target_dbfs: float = -20.0, min_range_db: float = 15.0, window_s: float = 4.0):  # fmt: skip
        if max_gain_db < 0:
            raise ValueError(f"max_gain_db must be 0 or more, got {max_gain_db}")
        if target_dbfs <= quiet_dbfs:
            raise ValueError("target_dbfs must be above quiet_dbfs")
        self.block = max(1, round(sample_rate * BLOCK_S))
        self.max_gain_db = max_gain_db
        self.quiet_dbfs = quiet_dbfs
        self.target_dbfs = target_dbfs
        self.min_range_db = min_range_db
        self._levels: deque[float] = deque(maxlen=max(1, round(window_s / BLOCK_S)))
        self._carry = np.zeros(0, np.float32)
        self._fresh = 0  # blocks measured since the last estimate
        self.wanted_db = 0.0
        self.gain_db = 0.0

    def process(self, pcm: bytes) -> bytes:
        """``pcm`` (int16 mono) with the gain applied; unchanged while the gain is 0 dB."""
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        self._measure(samples)
        if self.gain_db == 0.0 and self.wanted_db == 0.0:
            return pcm
        out = np.empty_like(samples)
        for start in range(0, len(samples), self.block):
            piece = samples[start : start + self.block]
            peak = float(np.max(np.abs(piece))) if len(piece) else 0.0
            headroom = PEAK_DBFS - 20.0 * np.log10(max(peak, 1e-9))
            rise = min(self.gain_db + STEP_DB, self.wanted_db)
            self.gain_db = float(max(0.0, min(rise, headroom)))
            out[start : start + len(piece)] = piece * (10.0 ** (self.gain_db / 20.0))
        return np.clip(np.round(out * 32768.0), -32768, 32767).astype("<i2").tobytes()

    def _measure(self, samples: np.ndarray) -> None:
        audio = np.concatenate([self._carry, samples]) if len(self._carry) else samples
        whole = len(audio) // self.block * self.block
        if whole:
            blocks = audio[:whole].reshape(-1, self.block)
            rms = np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=1))
            levels = 20.0 * np.log10(np.maximum(rms, 10 ** (SILENT_DBFS / 20.0)))
            self._levels.extend(levels.tolist())
            self._fresh += len(levels)
        self._carry = audio[whole:].copy()
        if self.max_gain_db == 0 or self._fresh < ESTIMATE_BLOCKS:
            return
        self._fresh = 0
        levels = np.fromiter(self._levels, dtype=np.float64)
        heard = levels[levels > DIGITAL_SILENCE_DBFS]
        if len(heard) * BLOCK_S < MIN_VOICED_S:
            return
        floor = float(np.percentile(heard, FLOOR_PERCENTILE))
        voiced = heard[heard >= max(floor + self.min_range_db, VOICE_DBFS)]
        if len(voiced) * BLOCK_S < MIN_VOICED_S:
            return  # not enough voice in the window: keep the gain as it is
        speech = float(np.percentile(voiced, SPEECH_PERCENTILE))
        wanted = self.target_dbfs - speech if speech < self.quiet_dbfs else 0.0
        self.wanted_db = float(np.clip(wanted, 0.0, self.max_gain_db))
