"""Scripted users: what the benchmark says, as 16 kHz speech segments with pauses between them.

A ``ScriptedTurn`` is one user turn made of ``segments`` (each the audio of a phrase) separated by
``pauses_ms`` of silence — pauses *inside* a sentence, which a turn detector must not take for the
end of the turn. Segments are trimmed to their voiced samples so that "end of user speech" is
exact. Speech comes from the offline TTS (espeak-ng) or from WAV files.
"""

from __future__ import annotations

import functools
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 16000
VOICED_ABS = 400  # int16 amplitude counted as voice when trimming


@dataclass
class Segment:
    """One phrase of a turn.

    Attributes:
        text: What is said (handed to scripted STTs as the transcript).
        audio: 16 kHz mono int16 PCM, trimmed to its voiced samples.
    """

    text: str
    audio: np.ndarray

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return len(self.audio) / RATE


@dataclass
class ScriptedTurn:
    """One user turn: segments with pauses inside the sentence.

    Attributes:
        segments: The phrases in order.
        pauses_ms: Silence between consecutive segments (``len(segments) - 1`` values).
    """

    segments: list[Segment]
    pauses_ms: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The whole turn's text."""
        return " ".join(s.text for s in self.segments)


# A question set about the default persona's knowledge base; "|" marks a pause inside the sentence.
DEFAULT_QUESTIONS = (
    "what is presence",
    "how do I swap | a provider",
    "which transports | does presence support",
    "how does the renderer | move the face",
    "how do I run | the latency benchmark",
    "what does the knowledge base do",
    "can I use | my own replica",
    "how do I write | a processor",
)
DEFAULT_PAUSES_MS = (400.0, 600.0, 500.0, 700.0)


def trim(audio: np.ndarray, threshold: int = VOICED_ABS) -> np.ndarray:
    """Cut leading and trailing samples quieter than ``threshold``."""
    voiced = np.flatnonzero(np.abs(audio.astype(np.int32)) >= threshold)
    if voiced.size == 0:
        return audio[:0]
    return audio[voiced[0] : voiced[-1] + 1]


def resample(audio: np.ndarray, src: int, dst: int = RATE) -> np.ndarray:
    """Polyphase resampling of int16 mono PCM."""
    if src == dst:
        return audio.astype(np.int16)
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(src, dst)
    out = resample_poly(audio.astype(np.float32), dst // g, src // g)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


@functools.lru_cache(maxsize=128)
def speak(text: str, voice: str = "en-us", rate: int = 165) -> np.ndarray:
    """``text`` spoken by espeak-ng, as trimmed 16 kHz int16 PCM (cached)."""
    from presence.processors.tts.engines.espeak import EspeakEngine

    utterance = EspeakEngine(voice=voice, rate=rate, end_pause=False).render(text)
    out = trim(resample(np.asarray(utterance.audio, dtype=np.int16), utterance.sample_rate))
    out.setflags(write=False)
    return out


def read_wav(path: str | Path) -> np.ndarray:
    """A mono 16-bit PCM WAV as trimmed 16 kHz int16 PCM (stereo is averaged)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * wav.getsampwidth()}-bit")
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        if wav.getnchannels() > 1:
            data = data.reshape(-1, wav.getnchannels()).mean(axis=1).astype(np.int16)
        return trim(resample(data, wav.getframerate()))


def turn_from_text(
    spec: str, pauses_ms: float | list[float] = 500.0, voice: str = "en-us"
) -> ScriptedTurn:
    """A turn from ``"phrase one | phrase two"``: one segment per phrase, pauses between them."""
    parts = [p.strip() for p in spec.split("|") if p.strip()]
    if isinstance(pauses_ms, (int, float)):
        pauses = [float(pauses_ms)] * (len(parts) - 1)
    else:
        pauses = list(pauses_ms)[: len(parts) - 1]
    return ScriptedTurn([Segment(p, speak(p, voice)) for p in parts], pauses)


def default_script(
    turns: int, questions: tuple[str, ...] = DEFAULT_QUESTIONS
) -> list[ScriptedTurn]:
    """``turns`` turns cycling through ``questions``, inner pauses cycling through 400–700 ms."""
    out = []
    for i in range(turns):
        pause = DEFAULT_PAUSES_MS[i % len(DEFAULT_PAUSES_MS)]
        out.append(turn_from_text(questions[i % len(questions)], pause))
    return out
