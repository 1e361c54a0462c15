"""Room noise for the evaluation set: what a microphone hears besides the user.

A question may name a ``noise`` (``{kind: pink, snr_db: 15}``); it is mixed over the whole file —
lead-in, speech, pauses and tail — at ``snr_db`` below the RMS of the question's voiced speech.

Kinds:
    * ``pink``: broadband 1/f noise (ventilation, rain, a busy street through a window);
    * ``brown``: 1/f² rumble (traffic, a fan, a car), high-passed at 40 Hz as microphones are;
    * ``hum``: mains hum (50 Hz and its harmonics) over a faint hiss (a cheap headset or cable);
    * ``babble``: several voices talking at once, played backwards so no word can be understood
      (a café or an open office). It is speech-like, the hardest case for a voice detector.

Constraints:
    * Deterministic: pink, brown and hum depend only on the kind, the seed and the length. Babble
      also depends on espeak-ng's rendering of its sentences, which may differ by a few samples
      between runs, so its voices are rendered once per cache folder (``babble-<rate>.npy``).
    * ``snr_db`` is within ``SNR_RANGE_DB``; lower is noisier.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presence.framework.errors import ConfigError

KINDS = ("pink", "brown", "hum", "babble")
SNR_RANGE_DB = (0.0, 40.0)
BABBLE_VOICES = (("en-us+m3", 165), ("en-gb+f3", 150), ("en-029+m1", 175), ("en-us+f4", 158))
BABBLE_TEXT = (
    "I told them we would be there by six, but the traffic was terrible again tonight.",
    "Did you see the match on Saturday? They played much better in the second half.",
    "The new menu has three kinds of soup, and the bread is baked every morning.",
    "My sister is moving to the coast next month, so we are packing boxes every weekend.",
)


@dataclass(frozen=True)
class Noise:
    """A room's noise under a question.

    Attributes:
        kind: One of ``KINDS``.
        snr_db: Speech RMS over noise RMS, in dB.
    """

    kind: str
    snr_db: float

    @property
    def label(self) -> str:
        """``pink 15 dB``."""
        return f"{self.kind} {self.snr_db:g} dB"


def noise_from(value: object, where: str) -> Noise | None:
    """Parse a questions-file ``noise`` value (a mapping) or a ``KIND:SNR`` string.

    Raises:
        ConfigError: Unknown kind, missing or out-of-range ``snr_db``; names ``where``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        kind, _, snr = value.partition(":")
        value = {"kind": kind.strip(), "snr_db": snr.strip() or None}
    if not isinstance(value, dict) or set(value) - {"kind", "snr_db"}:
        raise ConfigError(
            f"{where}: noise must be {{kind: K, snr_db: S}} (or 'K:S'), got {value!r}"
        )
    kind = value.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: noise kind must be one of {list(KINDS)}, got {kind!r}")
    try:
        snr = float(value.get("snr_db"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: noise needs a number snr_db (dB), e.g. 15") from None
    if not SNR_RANGE_DB[0] <= snr <= SNR_RANGE_DB[1]:
        raise ConfigError(f"{where}: noise snr_db must be within {SNR_RANGE_DB} dB, got {snr:g}")
    return Noise(str(kind), snr)


def _spectral(n: int, rate: int, rng: np.random.Generator, power: float) -> np.ndarray:
    """Gaussian noise shaped to 1/f**power, high-passed at 40 Hz, unit RMS."""
    spectrum = np.fft.rfft(rng.normal(size=n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    shape = np.zeros_like(freqs)
    keep = freqs >= 40.0
    shape[keep] = freqs[keep] ** (-power / 2.0)
    out = np.fft.irfft(spectrum * shape, n)
    return out / (np.sqrt(np.mean(out**2)) or 1.0)


def _hum(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / rate
    phases = rng.uniform(0, 2 * np.pi, 8)
    tone = sum(np.sin(2 * np.pi * 50.0 * k * t + phases[k]) / k for k in range(1, 8))
    out = tone + 0.15 * rng.normal(size=n)
    return out / np.sqrt(np.mean(out**2))


@functools.lru_cache(maxsize=4)
def _babble_bed(rate: int, folder: Path | None = None) -> np.ndarray:
    """Four voices reading unrelated sentences, each reversed, summed; unit RMS at ``rate``.

    Kept as ``folder/babble-<rate>.npy`` when a folder is given, and read from there after.
    """
    from presence.benchmarks.conversation.voices import Voice, resample, synthesize_fresh

    cached = folder / f"babble-{rate}.npy" if folder is not None else None
    if cached is not None and cached.is_file():
        return np.load(cached)

    streams = []
    for k, (voice_id, wpm) in enumerate(BABBLE_VOICES):
        voice = Voice(name=f"babble{k}", engine="espeak", voice=voice_id, rate=wpm, gain=1.0)
        order = BABBLE_TEXT[k:] + BABBLE_TEXT[:k]
        parts = [resample(a, native, rate) for a, native in synthesize_fresh(voice, list(order))]
        speech = np.concatenate(parts)[::-1]
        streams.append(speech / (np.sqrt(np.mean(speech**2)) or 1.0))
    length = max(s.size for s in streams)
    bed = np.zeros(length, np.float64)
    for k, s in enumerate(streams):  # each voice starts elsewhere, looping, so none pauses alone
        bed += np.roll(np.resize(s, length), k * length // len(streams))
    bed /= np.sqrt(np.mean(bed**2))
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, bed)
    return bed


def _babble(n: int, rate: int, rng: np.random.Generator, folder: Path | None) -> np.ndarray:
    bed = _babble_bed(rate, folder)
    start = int(rng.integers(0, bed.size))
    cut = np.resize(np.roll(bed, -start), n)
    return cut / (np.sqrt(np.mean(cut**2)) or 1.0)


def make_noise(noise: Noise, n: int, rate: int, speech_rms: float, seed: int,
               folder: Path | None = None) -> np.ndarray:  # fmt: skip
    """``n`` samples of ``noise`` at ``rate``, scaled ``snr_db`` below ``speech_rms`` (float32).

    ``folder``: where babble's voices are kept once rendered (the questions' cache folder).
    """
    rng = np.random.default_rng(seed)
    if noise.kind == "pink":
        unit = _spectral(n, rate, rng, 1.0)
    elif noise.kind == "brown":
        unit = _spectral(n, rate, rng, 2.0)
    elif noise.kind == "hum":
        unit = _hum(n, rate, rng)
    else:
        unit = _babble(n, rate, rng, folder)
    return (unit * speech_rms * 10.0 ** (-noise.snr_db / 20.0)).astype(np.float32)
