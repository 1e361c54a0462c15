"""Wav2Lip tier: the public architecture, strict checkpoint loading, mel front end, engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers.renderer_signals import speech_like

from presence.framework.errors import ConfigError
from presence.processors.renderer.engines.wav2lip import Wav2Lip, Wav2LipEngine, load_wav2lip

pytestmark = pytest.mark.background


def save_checkpoint(path, width=0.125, seed=0, mutate=None):
    torch.manual_seed(seed)
    state = {f"module.{k}": v for k, v in Wav2Lip(width).state_dict().items()}
    if mutate:
        mutate(state)
    torch.save({"state_dict": state, "global_step": 7}, path)
    return path


def test_full_size_generator_is_the_published_one():
    model = Wav2Lip()
    assert sum(p.numel() for p in model.parameters()) == 36_298_035
    keys = model.state_dict()
    for key in (
        "audio_encoder.0.conv_block.0.weight",
        "face_encoder_blocks.6.1.conv_block.1.running_var",
        "face_decoder_blocks.6.2.conv_block.0.weight",
        "output_block.1.weight",
    ):
        assert key in keys


def test_loads_a_dataparallel_checkpoint_strictly(tmp_path):
    path = save_checkpoint(tmp_path / "tiny.pth")
    model = load_wav2lip(path)
    torch.manual_seed(0)
    expected = Wav2Lip(0.125).state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    out = model(torch.zeros(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96) and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.pop("module.output_block.1.weight"), "1 missing keys"),
        (lambda s: s.__setitem__("module.extra.weight", torch.zeros(1)), "1 unexpected"),
        (lambda s: s.__setitem__("module.output_block.1.bias", torch.zeros(5)), "1 wrong shapes"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_mismatched_checkpoint_is_a_clear_error(tmp_path, mutate, message):
    path = save_checkpoint(tmp_path / "bad.pth", mutate=mutate)
    with pytest.raises(ConfigError, match=message):
        load_wav2lip(path)


def test_missing_or_garbage_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no such checkpoint"):
        load_wav2lip(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable torch checkpoint"):
        load_wav2lip(tmp_path / "junk.pth")


def test_engine_contract_with_a_tiny_model(tmp_path, replica):
    path = save_checkpoint(tmp_path / "tiny.pth")
    frames = []
    for _ in range(2):
        engine = Wav2LipEngine(64, 25, 24000, seed=1, checkpoint=path)
        engine.prepare(replica)
        audio = speech_like(0.6, 24000)
        engine.push_audio(audio, 24000)
        out = engine.next_frames(20)
        assert np.array_equal(np.concatenate([f.audio for f in out])[: audio.size], audio)
        assert all(f.image.shape == (64, 64, 3) and f.image.dtype == np.uint8 for f in out)
        frames.append(out)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(*frames, strict=True))
    # the generated mouth differs from the still portrait while speaking, not when idle
    speaking, idle = frames[0][5], frames[0][-1]
    assert speaking.speaking and not idle.speaking
    engine.interrupt()
    assert engine.buffered_samples == 0


def test_mel_front_end_shape_and_range(tmp_path):
    engine = Wav2LipEngine(32, 25, 24000, model=Wav2Lip(0.125))
    mel = engine.mel(speech_like(0.2, 24000).astype(np.float32) / 32768)
    assert mel.shape == (80, 16)
    assert -4 <= float(mel.min()) and float(mel.max()) <= 4 and float(mel.std()) > 0.1
