"""Where silence begins inside an utterance, before a VAD would call it the end of speech.

Pure numpy. A VAD ends speech only after ``stop_secs`` of silence (0.2 s here), so a recogniser
that waits for it starts that late. ``SilenceWatch`` looks at the same audio and says, much
earlier, "the voice has been quiet for ``after_s``" — a guess that the user has finished, good
enough to start decoding speculatively. The VAD's decision still rules: a decode started on this
guess is used only if the VAD then ends speech without the voice coming back in between.

Quiet means an RMS below ``ratio`` of the utterance's loudest 20 ms so far and below ``ceiling``
(so a loud room is never quiet), or below ``floor`` (digital silence and faint noise).
"""

from __future__ import annotations

import numpy as np


class SilenceWatch:
    """Tracks voiced and quiet audio of one utterance.

    Args:
        sample_rate: Rate of the int16 PCM fed in.
        after_s: Quiet needed before ``feed`` reports the silence.
        ratio: Quiet is below this share of the utterance's peak RMS.
        floor: RMS always counted as quiet.
        ceiling: RMS never counted as quiet.
    """

    def __init__(self, sample_rate: int = 16000, *, after_s: float = 0.1, ratio: float = 0.08,
                 floor: float = 120.0, ceiling: float = 2500.0):  # fmt: skip
        self.sample_rate = sample_rate
        self.after = int(after_s * sample_rate)
        self.ratio, self.floor, self.ceiling = ratio, floor, ceiling
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self._peak = 0.0
        self._quiet = 0
        self._reported = False

    @property
    def quiet_samples(self) -> int:
        """Samples of quiet since the voice was last heard."""
        return self._quiet

    def feed(self, pcm: bytes) -> str | None:
        """Take the next chunk of int16 PCM.

        Returns:
            ``"silence"`` once per quiet stretch, when it reaches ``after_s``; ``"voice"`` when the
            voice comes back after a reported silence; otherwise None.
        """
        samples = np.frombuffer(pcm, dtype=np.int16)
        if samples.size == 0:
            return None
        rms = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))
        self._peak = max(self._peak, rms)
        quiet = rms < self.floor or (rms < self.ceiling and rms < self.ratio * self._peak)
        if quiet:
            self._quiet += samples.size
            if not self._reported and self._peak > self.floor and self._quiet >= self.after:
                self._reported = True
                return "silence"
            return None
        self._quiet = 0
        if self._reported:
            self._reported = False
            return "voice"
        return None
