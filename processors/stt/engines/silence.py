"""Where silence begins inside an utterance, before a VAD would call it the end of speech.

Pure numpy. A VAD ends speech only after ``stop_secs`` of silence (0.2 s here), so a recogniser
that waits for it starts that late. ``SilenceWatch`` looks at the same audio and says, much
earlier, "the voice has been quiet for ``after_s``" — a guess that the user has finished, good
enough to start decoding speculatively. The VAD's decision still rules: a decode started on this
guess is used only if the VAD then ends speech without the voice coming back in between.

Quiet means an RMS below ``ratio`` of the utterance's loudest 20 ms so far and below ``ceiling``
(so a loud room is never quiet), or below ``floor`` (digital silence and faint noise), or — in a
noisy room — within ``noise_margin`` of the room's noise floor: the quietest chunk of the last
``noise_window_s`` (speech always has gaps between words that fall back to the floor), as long as
that is well under the utterance's peak (``noise_peak_ratio``). The noise rule reads the audio
twice: as it is (broadband noise: a fan, rain), and pre-emphasised (``PRE_EMPHASIS``, +6 dB an
octave), where a rumble or a hum, which a 20 ms chunk samples unevenly, weighs little against the
voice's harmonics and consonants; quiet in either reading is quiet. Once a silence is reported,
a chunk must rise ``noise_hysteresis`` times higher to count as the voice again, so the room's own
flutter does not withdraw the decode the silence started. Without this rule a fan or a street 15 dB under the voice is never "quiet" and every decode
waits for the VAD.
The noise floor is kept across utterances: feed the watch all the audio, also before speech.
"""

from __future__ import annotations

from collections import deque

import numpy as np

PRE_EMPHASIS = 0.97


class SilenceWatch:
    """Tracks voiced and quiet audio of one utterance.

    Args:
        sample_rate: Rate of the int16 PCM fed in.
        after_s: Quiet needed before ``feed`` reports the silence.
        ratio: Quiet is below this share of the utterance's peak RMS.
        floor: RMS always counted as quiet.
        ceiling: RMS never counted as quiet by ``ratio`` (the noise floor's rule still applies).
        noise_margin: Quiet is below this factor of the room's noise floor; 0 turns it off.
        noise_window_s: How far back the noise floor (the quietest chunk) is looked for.
        noise_peak_ratio: The noise rule applies only while ``noise_margin`` times the noise
            floor is below this share of the utterance's peak (a very loud room, or a floor
            measured inside speech, never makes speech quiet).
        noise_hysteresis: Once a silence is reported, the noise rule's limit is this many times
            higher (the voice coming back is louder than the room's flutter).
    """

    def __init__(self, sample_rate: int = 16000, *, after_s: float = 0.1, ratio: float = 0.08,
                 floor: float = 120.0, ceiling: float = 2500.0, noise_margin: float = 1.5,
                 noise_window_s: float = 3.0, noise_peak_ratio: float = 0.3,
                 noise_hysteresis: float = 1.6):  # fmt: skip
        self.sample_rate = sample_rate
        self.after = int(after_s * sample_rate)
        self.ratio, self.floor, self.ceiling = ratio, floor, ceiling
        self.noise_margin, self.noise_peak_ratio = noise_margin, noise_peak_ratio
        self.noise_hysteresis = noise_hysteresis
        self._noise_window = int(noise_window_s * sample_rate)
        self._recent: deque[tuple[float, float, int]] = deque()  # (rms, emphasised rms, samples)
        self._recent_samples = 0
        self._last_sample = 0.0  # for the pre-emphasis across chunks
        self.reset()

    def reset(self) -> None:
        """Start a new utterance."""
        self._peak = self._peak_hp = 0.0
        self._quiet = 0
        self._reported = False

    @property
    def noise_rms(self) -> float | None:
        """The room's noise floor: the quietest chunk RMS of the last ``noise_window_s``."""
        return min(r for r, _, _ in self._recent) if self._recent else None

    def _track(self, rms: float, rms_hp: float, n: int) -> None:
        self._recent.append((rms, rms_hp, n))
        self._recent_samples += n
        while self._recent_samples - self._recent[0][2] >= self._noise_window:
            self._recent_samples -= self._recent.popleft()[2]

    def _is_quiet(self, rms: float, rms_hp: float) -> bool:
        if rms < self.floor or (rms < self.ceiling and rms < self.ratio * self._peak):
            return True
        if not self.noise_margin or not self._recent:
            return False
        margin = self.noise_margin * (self.noise_hysteresis if self._reported else 1.0)
        for level, floor, peak in ((rms, self.noise_rms, self._peak),
                                   (rms_hp, min(r for _, r, _ in self._recent), self._peak_hp)):  # fmt: skip
            if level < margin * floor and self.noise_margin * floor < self.noise_peak_ratio * peak:
                return True
        return False

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
        x = samples.astype(np.float32)
        rms = float(np.sqrt(np.mean(x**2)))
        emphasised = x - PRE_EMPHASIS * np.concatenate(([self._last_sample], x[:-1]))
        self._last_sample = float(x[-1])
        rms_hp = float(np.sqrt(np.mean(emphasised**2)))
        self._track(rms, rms_hp, samples.size)
        self._peak = max(self._peak, rms)
        self._peak_hp = max(self._peak_hp, rms_hp)
        if self._is_quiet(rms, rms_hp):
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
