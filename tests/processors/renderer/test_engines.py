"""Contract every renderer engine passes: frame count, shapes, dtype, determinism, interrupt."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.renderer_signals import speech_like

from presence.processors.renderer.engines.still import StillEngine
from presence.processors.renderer.engines.warp import WarpEngine

SIZE = 64
ENGINES = {
    "still": lambda fps, sr, seed: StillEngine(SIZE, fps, sr, seed),
    "warp": lambda fps, sr, seed: WarpEngine(SIZE, fps, sr, seed, device="cpu"),
}


@pytest.fixture(params=sorted(ENGINES))
def make(request, replica):
    def build(fps=25, sr=24000, seed=0):
        engine = ENGINES[request.param](fps, sr, seed)
        engine.prepare(replica)
        return engine

    return build


@pytest.mark.parametrize(("fps", "sr"), [(25, 24000), (30, 16000), (24, 22050)])
def test_frames_carry_exactly_the_audio(make, fps, sr):
    engine = make(fps, sr)
    audio = speech_like(1.37, sr)
    engine.push_audio(audio, sr)
    frames = engine.next_frames(int(np.ceil(audio.size * fps / sr)))
    out = np.concatenate([f.audio for f in frames])
    assert np.array_equal(out[: audio.size], audio)  # same samples, same order
    assert not out[audio.size :].any()  # the last frame is padded with silence
    assert out.size == sum(engine.samples_in_frame(k) for k in range(len(frames)))
    assert engine.buffered_samples == 0


def test_shapes_dtype_and_times(make):
    engine = make()
    engine.push_audio(speech_like(0.5, 24000), 24000)
    frames = engine.next_frames(20)
    for k, frame in enumerate(frames):
        assert frame.image.shape == (SIZE, SIZE, 3) and frame.image.dtype == np.uint8
        assert frame.audio.dtype == np.int16
        assert frame.pts == pytest.approx(k / 25)
    assert [f.speaking for f in frames] == [True] * 13 + [False] * 7


def test_same_seed_same_frames(make):
    a, b = make(seed=3), make(seed=3)
    audio = speech_like(1.0, 24000)
    a.push_audio(audio, 24000)
    b.push_audio(audio, 24000)
    fa, fb = a.next_frames(200), b.next_frames(200)  # 8 s: speech then idle (blinks, sway)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(fa, fb, strict=True))


def test_interrupt_drops_queued_speech(make):
    engine = make()
    engine.push_audio(speech_like(2.0, 24000), 24000)
    engine.next_frames(3)
    engine.interrupt()
    assert engine.buffered_samples == 0
    frames = engine.next_frames(10)
    assert not any(f.speaking for f in frames)
    assert not any(f.audio.any() for f in frames)
    assert frames[-1].mouth_open == 0.0  # the mouth has closed again


def test_skipped_frames_keep_the_clock(make):
    engine = make()
    audio = speech_like(1.0, 24000)
    engine.push_audio(audio, 24000)
    skipped = engine.next_frames(10, render=False)
    drawn = engine.next_frames(15)
    assert all(f.image is None for f in skipped) and all(f.image is not None for f in drawn)
    assert np.array_equal(np.concatenate([f.audio for f in skipped + drawn]), audio)


def test_resamples_other_rates(make):
    engine = make(25, 24000)
    engine.push_audio(speech_like(1.0, 16000), 16000)
    assert engine.buffered_samples == 24000


def test_warp_mouth_moves_with_speech_not_silence(replica):
    engine = WarpEngine(128, 25, 24000, seed=0)
    engine.prepare(replica)
    engine.push_audio(speech_like(3.0, 24000), 24000)
    speech = engine.next_frames(75)
    silence = engine.next_frames(75)
    g = replica.geometry
    mx, my, mw = g["mouth"][0] * 128, g["mouth"][1] * 128, g["mouth_width"] * 128
    box = (
        slice(int(my - 0.3 * mw), int(my + 0.6 * mw)),
        slice(int(mx - 0.6 * mw), int(mx + 0.6 * mw)),
    )

    def motion(frames):
        crops = np.stack([f.image[box].astype(np.float32) for f in frames])
        return float(np.abs(np.diff(crops, axis=0)).mean())

    assert motion(speech) > 3 * motion(silence)


def test_visemes_shape_the_mouth(replica):
    engine = WarpEngine(64, 25, 24000)
    engine.prepare(replica)
    tone = (np.sin(np.arange(24000) * 2 * np.pi * 150 / 24000) * 8000).astype(np.int16)
    engine.push_audio(tone, 24000, visemes=[(0.0, "open", "a"), (0.5, "closed", "m")])
    frames = engine.next_frames(25)
    assert frames[10].mouth_open > 0.5  # open vowel
    assert frames[-1].mouth_open < 0.3  # lips together for "m" although the voice is as loud


def test_warp_on_cpu_draws_what_grid_sample_draws(replica):
    """The CPU path (OpenCV remap) shows the same face as torch's grid_sample, the CUDA path."""
    engine = WarpEngine(256, 25, 24000, seed=3)
    engine.prepare(replica)
    assert engine._cpu is not None
    engine.push_audio(speech_like(2.0, 24000), 24000)
    engine.set_listening(True)
    fast = engine.next_frames(50)
    reference = WarpEngine(256, 25, 24000, seed=3)
    reference.prepare(replica)
    reference._cpu = None  # grid_sample on the CPU: what CUDA runs
    reference.push_audio(speech_like(2.0, 24000), 24000)
    reference.set_listening(True)
    slow = reference.next_frames(50)
    assert sum(f.mouth_open > 0.1 for f in fast) > 10  # the comparison covers an open mouth
    for a, b in zip(fast, slow, strict=True):
        diff = np.abs(a.image.astype(np.int16) - b.image.astype(np.int16))
        assert diff.mean() < 1.0
        assert np.percentile(diff, 99.9) <= 3
    moved = np.abs(fast[0].image.astype(np.int16) - fast[30].image.astype(np.int16)).mean()
    assert moved > 1.0  # the frames differ from each other far more than the two paths do
