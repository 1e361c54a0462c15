"""Mp4Writer: media-time placement of audio and images, and equal track lengths at close."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest

from presence.framework.errors import ConfigError
from presence.transports.file import Mp4Writer


def decode(path):
    with av.open(str(path)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    with av.open(str(path)) as c:
        levels = [f.to_ndarray(format="rgb24").mean() for f in c.decode(video=0)]
    return audio, np.array(levels)


def gray(level: int) -> np.ndarray:
    return np.full((16, 16, 3), level, np.uint8)


def test_images_one_period_apart_land_one_per_frame_despite_jitter(tmp_path):
    fps = 30
    w = Mp4Writer(tmp_path / "j.mp4", width=32, height=32, fps=fps)
    rng = np.random.default_rng(0)
    start = 0.517
    for k in range(30):
        t = start + k / fps + rng.uniform(0, 0.010)  # 10 ms audio chunks: up to 10 ms early/late
        w.add_image(gray(20 + 7 * k), t)
        w.advance_video(t)
    w.close(2.0)
    _, levels = decode(tmp_path / "j.mp4")
    first = int(np.argmax(levels > 10))
    shown = np.round((levels[first : first + 30] - 20) / 7).astype(int)
    assert list(shown) == list(range(30)), "every image shown once, in order, none dropped"
    assert abs(first / fps - start) <= 1 / fps


def test_audio_gaps_are_silence_and_tracks_end_equal(tmp_path):
    w = Mp4Writer(tmp_path / "a.mp4", width=32, height=32, fps=25, sample_rate=24000)
    tone = (8000 * np.sin(np.arange(12000) * 2 * np.pi * 440 / 24000)).astype(np.int16)
    w.write_audio(tone, start=24000)  # at 1.0 s, after a second of nothing
    w.write_audio(tone, start=100)  # earlier than the end: goes right after, never overlaps
    summary = w.close(end_s=3.3)
    audio, levels = decode(tmp_path / "a.mp4")
    assert len(levels) == summary["video_frames"] == math.ceil(3.3 * 25)
    assert len(audio) / 24000 == pytest.approx(len(levels) / 25, abs=1024 / 24000)
    rms = np.sqrt((audio[: 24000 * 3].reshape(-1, 240).astype(float) ** 2).mean(axis=1))
    loud = rms > 0.05  # decoded AAC is float in [-1, 1]; the tone is ~0.17 RMS
    assert not loud[:98].any() and loud[102:198].all() and not loud[202:].any()
    assert levels.max() < 5, "no image: black video"


def test_odd_sizes_are_refused():
    with pytest.raises(ConfigError, match="even"):
        Mp4Writer("x.mp4", width=33, height=32, fps=25)
