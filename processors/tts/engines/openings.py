"""Audio of the sentences a persona opens its answers with, made once and kept on disk.

An LLM stage whose answers come from a fixed set of sentences (the knowledge-base responder: each
passage's first sentence, its "I think you're asking about …" guess, the fallback and small-talk
replies) knows every way an answer can start. Synthesising those openings once, ahead of the
call, takes Piper's synthesis of the first piece (~150–500 ms on a two-core CPU, most of the time
between the turn's decision and the first audio) off the turn; later sentences are made while the
first plays, as before.

Pure Python and numpy (no pipecat). ``OpeningAudio`` keeps the pieces in memory and writes each one
to ``<folder>/<sha1 of the text>.npz`` atomically, so sessions (and session processes) of the same
voice and settings share the work; a file that cannot be read is made again. The folder name
carries the voice file's identity (path, size, modification time) and the synthesis settings, so
a changed voice or speed never plays stale audio.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger


@dataclass(frozen=True)
class Alignment:
    """One phoneme's duration, as Piper's ``PhonemeAlignment`` reports it."""

    phoneme: str
    num_samples: int


@dataclass(frozen=True)
class Chunk:
    """What the TTS stage reads of a Piper ``AudioChunk``: its audio and phoneme durations."""

    audio_int16_bytes: bytes
    phoneme_alignments: list[Alignment]


def folder_for(root: Path, model: Path, settings: Sequence[Any]) -> Path:
    """The cache folder of one voice file with one set of synthesis settings."""
    stat = model.stat()
    ident = repr((str(model.resolve()), stat.st_size, stat.st_mtime_ns, *settings))
    return root / hashlib.sha256(ident.encode()).hexdigest()[:16]


def _file(folder: Path, text: str) -> Path:
    return folder / f"{hashlib.sha1(text.encode()).hexdigest()}.npz"


def _save(path: Path, chunks: Sequence[Any]) -> None:
    audio = [np.frombuffer(c.audio_int16_bytes, np.int16) for c in chunks]
    aligned = [(i, str(a.phoneme), int(a.num_samples))
               for i, c in enumerate(chunks) for a in (c.phoneme_alignments or [])]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as tmp:
        np.savez(
            tmp,
            audio=np.concatenate(audio) if audio else np.zeros(0, np.int16),
            ends=np.cumsum([a.size for a in audio]).astype(np.int64),
            align_chunk=np.array([a[0] for a in aligned], np.int64),
            align_phoneme=np.array([a[1] for a in aligned], dtype=str),
            align_samples=np.array([a[2] for a in aligned], np.int64),
        )
    os.replace(tmp.name, path)


def _load(path: Path) -> list[Chunk]:
    with np.load(path, allow_pickle=False) as data:
        audio, ends = data["audio"], data["ends"]
        which, phonemes, samples = data["align_chunk"], data["align_phoneme"], data["align_samples"]
        if audio.dtype != np.int16 or (ends.size and ends[-1] != audio.size):
            raise ValueError("audio and chunk ends disagree")
        starts = np.concatenate([[0], ends[:-1]]) if ends.size else ends
        return [
            Chunk(
                audio[s:e].tobytes(),
                [
                    Alignment(str(p), int(n))
                    for c, p, n in zip(which, phonemes, samples, strict=True)
                    if c == i
                ],  # fmt: skip
            )
            for i, (s, e) in enumerate(zip(starts, ends, strict=True))
        ]


class OpeningAudio:
    """Synthesised opening pieces by text, in memory and (when ``folder`` is set) on disk.

    Args:
        folder: Where the pieces are kept across sessions; None keeps them in memory only.
    """

    def __init__(self, folder: Path | None):
        self.folder = folder
        self._audio: dict[str, list[Any]] = {}
        self.spoken = 0  # pieces answered from here

    def __len__(self) -> int:
        return len(self._audio)

    def __contains__(self, text: object) -> bool:
        return text in self._audio

    def take(self, text: str) -> list[Any] | None:
        """The piece's chunks when it was prepared (counted in ``spoken``), else None."""
        chunks = self._audio.get(text)
        if chunks is not None:
            self.spoken += 1
        return chunks

    def fill(self, pieces: Iterable[str], synthesize: Callable[[str], list[Any]], *,
             budget_s: float, stop: threading.Event | None = None) -> tuple[int, int]:  # fmt: skip
        """Load or make every piece; making new ones stops at ``budget_s`` or once ``stop`` is set.

        Returns:
            ``(loaded from disk, made now)``. Pieces left unmade are synthesised when spoken.
        """
        loaded = made = 0
        started = time.monotonic()
        for text in dict.fromkeys(pieces):
            if not text or text in self._audio:
                continue
            path = _file(self.folder, text) if self.folder is not None else None
            if path is not None and path.is_file():
                try:
                    self._audio[text] = _load(path)
                    loaded += 1
                    continue
                except (OSError, ValueError, KeyError) as exc:
                    logger.warning(f"openings: {path.name} is unreadable ({exc}); making it again")
            if time.monotonic() - started > budget_s or (stop is not None and stop.is_set()):
                continue
            chunks = synthesize(text)
            self._audio[text] = chunks
            made += 1
            if path is not None:
                try:
                    _save(path, chunks)
                except OSError as exc:
                    logger.warning(f"openings: cannot keep {path.name} on disk: {exc}")
        return loaded, made
