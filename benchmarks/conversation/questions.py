"""The evaluation set: questions from ``questions.yaml``, rendered as the WAV files a user hands in.

Each question is spoken by its voice (see ``voices.py``), phrase by phrase: a ``|`` in ``say`` is
a pause inside the sentence (``pause_ms`` of silence). The file then gets what a recording has:
a short lead-in of silence (0.5–0.9 s, fixed per question), a faint noise floor (about −66 dBFS,
seeded per question), the voice's level (``gain``) and the question's format — ``16k-mono`` or
``44k-stereo`` (the right channel a little quieter than the left). A question may add a room's
noise (``noise: {kind: pink, snr_db: 15}``, see ``rooms.py``), mixed over the whole file.

Constraints:
    * Deterministic: the audio depends only on the question, its voice and ``RENDER_VERSION``; it
      is cached under ``<cache>/conversation/<id>-<digest>.wav`` with a ``.json`` sidecar holding
      the voiced span (see ``RenderedQuestion``). The cache folder is ``$PRESENCE_CACHE_DIR`` or
      ``.presence-cache`` in the working directory.
    * The user's speech span is measured on the clean speech before noise: the first and last
      samples at or above ``VOICED_FRACTION`` of the question's peak.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import wave
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from loguru import logger

from presence.benchmarks.conversation.rooms import Noise, make_noise, noise_from
from presence.benchmarks.conversation.voices import (
    Voice,
    resample,
    synthesize_fresh,
    voice_from_dict,
)
from presence.framework.errors import ConfigError

QUESTIONS_FILE = Path(__file__).with_name("questions.yaml")
RENDER_VERSION = 2
VOICED_FRACTION = 0.02
NOISE_RMS = 0.0005  # ≈ −66 dBFS
TAIL_S = 0.4
FORMATS = {"16k-mono": (16000, 1), "44k-stereo": (44100, 2)}
PAUSE_RANGE_MS = (400, 800)
HESITATIONS = frozenset({"um", "uh", "er", "erm", "hmm", "mm"})


@dataclass(frozen=True)
class Question:
    """One spoken question.

    Attributes:
        id: Stable identifier (``q01``).
        say: What is said; ``|`` marks a pause inside the sentence.
        voice: Who says it.
        format: ``16k-mono`` or ``44k-stereo``.
        expect: Passages that answer it, ``"<file stem>#<heading>"``.
        pause_ms: Silence at each ``|``.
        noise: The room's noise under the question; None for a quiet room.
    """

    id: str
    say: str
    voice: Voice
    format: str
    expect: tuple[str, ...]
    pause_ms: float = 0.0
    noise: Noise | None = None

    @property
    def room(self) -> str:
        """The noise's label (``pink 15 dB``) or ``quiet``."""
        return self.noise.label if self.noise else "quiet"

    @property
    def phrases(self) -> list[str]:
        """The phrases between pauses."""
        return [p.strip() for p in self.say.split("|") if p.strip()]

    @property
    def reference(self) -> str:
        """What the user said, for word error (pauses removed, hesitations kept)."""
        return " ".join(self.phrases)

    @property
    def has_pause(self) -> bool:
        """Whether the sentence has a pause inside it."""
        return len(self.phrases) > 1

    @property
    def has_hesitation(self) -> bool:
        """Whether the user says "um", "uh" or the like."""
        return bool(set(re.findall(r"[a-z]+", self.say.lower())) & HESITATIONS)

    def digest(self, *, room: bool = True) -> str:
        """A short hash of everything that changes the audio (without the noise: ``room=False``)."""
        key = {"v": RENDER_VERSION, "say": self.say, "pause": self.pause_ms, "format": self.format,
               "voice": self.voice.key()}  # fmt: skip
        if room and self.noise is not None:  # (a quiet question keeps its cached audio)
            key["noise"] = [self.noise.kind, self.noise.snr_db]
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


@dataclass
class RenderedQuestion:
    """A question as a WAV file on disk.

    Attributes:
        question: The question.
        path: The WAV.
        sample_rate: Its rate.
        channels: Its channel count.
        speech_start_s: First voiced sample, seconds from the start of the file.
        speech_end_s: Last voiced sample (the end of the user's speech), seconds.
        duration_s: Length of the file.
    """

    question: Question
    path: Path
    sample_rate: int
    channels: int
    speech_start_s: float
    speech_end_s: float
    duration_s: float
    meta: dict = field(default_factory=dict)

    def mono_16k(self) -> np.ndarray:
        """The file's first channel at 16 kHz (linear interpolation), float32 in [-1, 1]."""
        with wave.open(str(self.path)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        x = pcm.astype(np.float32).reshape(-1, self.channels)[:, 0] / 32768
        if self.sample_rate != 16000:
            step = self.sample_rate / 16000
            x = np.interp(np.arange(0, len(x), step), np.arange(len(x)), x).astype(np.float32)
        return x


def load_questions(
    path: str | Path = QUESTIONS_FILE, *, noise: str | None = None
) -> list[Question]:
    """Read and check a questions file.

    Args:
        path: The questions file.
        noise: ``KIND:SNR`` (``pink:15``) put under every question instead of its own noise.

    Raises:
        ConfigError: The file is missing, not YAML or has no questions; a field is missing or
            wrong (unknown voice or format, a pause outside 400–800 ms, a duplicate id, a noise
            of unknown kind or level); the message names the file and the question.
    """
    room = noise_from(noise, "--noise") if noise else None
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such questions file; give a YAML file in the schema of "
                          f"{QUESTIONS_FILE.name}")  # fmt: skip
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not data.get("questions"):
        raise ConfigError(f"{path}: needs a 'questions' list (and the 'voices' they name)")
    voices = {
        name: voice_from_dict(name, spec) for name, spec in (data.get("voices") or {}).items()
    }
    out: list[Question] = []
    seen: set[str] = set()
    for i, item in enumerate(data.get("questions") or []):
        qid = str(item.get("id", f"#{i}"))
        where = f"{path}: question {qid}"
        if qid in seen:
            raise ConfigError(f"{where}: duplicate id")
        seen.add(qid)
        if item.get("voice") not in voices:
            raise ConfigError(
                f"{where}: unknown voice {item.get('voice')!r}; have {sorted(voices)}"
            )
        if item.get("format") not in FORMATS:
            raise ConfigError(f"{where}: format must be one of {sorted(FORMATS)}")
        expect = tuple(item.get("expect") or ())
        if not expect or not all("#" in e for e in expect):
            raise ConfigError(f"{where}: expect needs at least one '<file stem>#<heading>'")
        q = Question(qid, str(item["say"]), voices[item["voice"]], item["format"], expect,
                     float(item.get("pause_ms", 0)),
                     room or noise_from(item.get("noise"), where))  # fmt: skip
        if q.has_pause and not PAUSE_RANGE_MS[0] <= q.pause_ms <= PAUSE_RANGE_MS[1]:
            raise ConfigError(f"{where}: pause_ms must be within {PAUSE_RANGE_MS} ms")
        out.append(q)
    return out


def cache_dir() -> Path:
    """Where rendered questions go: ``$PRESENCE_CACHE_DIR/conversation`` or ``.presence-cache/...``."""
    root = os.environ.get("PRESENCE_CACHE_DIR")
    return (Path(root) if root else Path(".presence-cache")) / "conversation"


def _seed(question: Question) -> int:
    """The question's seed: the same with or without a room's noise, so their voices align."""
    return zlib.crc32(f"{question.id}:{question.digest(room=False)}".encode())


def speech_track(question: Question, rate: int) -> np.ndarray:
    """The question's clean speech at ``rate``, phrases joined by pauses, peak at the voice's gain."""
    parts: list[np.ndarray] = []
    for k, (audio, native) in enumerate(synthesize_fresh(question.voice, question.phrases)):
        if k:
            parts.append(np.zeros(round(rate * question.pause_ms / 1000), np.float32))
        parts.append(resample(audio, native, rate))
    speech = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    peak = float(np.abs(speech).max()) if speech.size else 0.0
    return speech * (question.voice.gain / peak) if peak > 0 else speech


def render(question: Question, folder: Path | None = None) -> RenderedQuestion:
    """Render ``question`` to a WAV (or reuse the cached one) and return where its speech is."""
    folder = Path(folder) if folder is not None else cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    wav_path = folder / f"{question.id}-{question.digest()}.wav"
    meta_path = wav_path.with_suffix(".json")
    if wav_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        return _rendered(question, wav_path, meta)
    rate, channels = FORMATS[question.format]
    rng = np.random.default_rng(_seed(question))
    lead = 0.5 + 0.1 * (_seed(question) % 5)
    speech = speech_track(question, rate)
    voiced = np.flatnonzero(np.abs(speech) >= VOICED_FRACTION * question.voice.gain)
    n_lead, n_tail = round(lead * rate), round(TAIL_S * rate)
    clean = np.concatenate([np.zeros(n_lead, np.float32), speech, np.zeros(n_tail, np.float32)])
    noisy = clean + rng.normal(0.0, NOISE_RMS, clean.size).astype(np.float32)
    if question.noise is not None and voiced.size:
        speech_rms = float(np.sqrt(np.mean(speech[voiced[0] : voiced[-1] + 1] ** 2)))
        noisy += make_noise(question.noise, clean.size, rate, speech_rms, _seed(question), folder)
    pcm = np.clip(np.round(noisy * 32767), -32768, 32767).astype(np.int16)
    if channels == 2:
        right = np.clip(np.round(noisy * 0.85 * 32767), -32768, 32767).astype(np.int16)
        pcm = np.stack([pcm, right], axis=1).reshape(-1)
    tmp = wav_path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    meta = {
        "id": question.id,
        "reference": question.reference,
        "voice": question.voice.name,
        "noise": question.room,
        "sample_rate": rate,
        "channels": channels,
        "speech_start_s": round((n_lead + int(voiced[0])) / rate, 5) if voiced.size else None,
        "speech_end_s": round((n_lead + int(voiced[-1]) + 1) / rate, 5) if voiced.size else None,
        "duration_s": round(clean.size / rate, 5),
        "render_version": RENDER_VERSION,
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    tmp.replace(wav_path)
    logger.debug(f"rendered {question.id} ({question.voice.name}, {question.format})")
    return _rendered(question, wav_path, meta)


def _rendered(question: Question, path: Path, meta: dict) -> RenderedQuestion:
    return RenderedQuestion(question, path, meta["sample_rate"], meta["channels"],
                            meta["speech_start_s"], meta["speech_end_s"], meta["duration_s"], meta)  # fmt: skip


def render_all(questions: list[Question], folder: Path | None = None) -> list[RenderedQuestion]:
    """Render (or reuse) every question, in order."""
    return [render(q, folder) for q in questions]


def select(
    questions: list[Question], *, limit: int | None = None, voices: list[str] | None = None,
    ids: list[str] | None = None,
) -> list[Question]:  # fmt: skip
    """Questions filtered by voice names and ids, then the first ``limit``.

    Raises:
        ConfigError: A voice or id names nothing in the set.
    """
    if voices:
        known = {q.voice.name for q in questions}
        unknown = sorted(set(voices) - known)
        if unknown:
            raise ConfigError(
                f"unknown voice(s) {unknown}; the set has {sorted(known)}", field="--voices"
            )
        questions = [q for q in questions if q.voice.name in voices]
    if ids:
        unknown = sorted(set(ids) - {q.id for q in questions})
        if unknown:
            raise ConfigError(f"unknown question id(s) {unknown}", field="--ids")
        questions = [q for q in questions if q.id in ids]
    return questions[:limit] if limit else questions
