"""load_wav: what users feed it, what comes out, and how bad files are refused."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from presence.framework.errors import InputError
from presence.transports.file import load_wav
from presence.transports.file.media import CameraReader


def wav(path: Path, data: bytes, *, rate=16000, channels=1, width=2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (10000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_freq(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / rate)[np.argmax(spectrum)])


def test_mono_16k_passes_through_unchanged(tmp_path):
    pcm = tone(16000, 0.5)
    out, rate = load_wav(wav(tmp_path / "a.wav", pcm.tobytes()))
    assert rate == 16000 and out.dtype == np.int16
    np.testing.assert_array_equal(out, pcm)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    left, right = tone(44100, 1.0, 440), np.zeros(44100, np.int16)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    out, rate = load_wav(wav(tmp_path / "s.wav", stereo.tobytes(), rate=44100, channels=2))
    assert rate == 16000
    assert len(out) == pytest.approx(16000, abs=2)
    assert dominant_freq(out, 16000) == pytest.approx(440, abs=2)
    # Mono is the mean of the channels: half the left channel's amplitude.
    assert np.abs(out[1000:-1000]).max() == pytest.approx(5000, rel=0.05)


def test_24_bit_pcm_is_reduced_to_16_bit(tmp_path):
    pcm = tone(16000, 0.2)
    as24 = b"".join(struct.pack("<i", int(v) << 8)[:3] for v in pcm)
    out, _ = load_wav(wav(tmp_path / "w24.wav", as24, width=3))
    np.testing.assert_array_equal(out, pcm)


def test_8_bit_pcm_is_widened_to_16_bit(tmp_path):
    pcm8 = np.array([0, 64, 128, 192, 255], np.uint8)  # 8-bit WAV samples are unsigned
    out, _ = load_wav(wav(tmp_path / "b.wav", pcm8.tobytes(), width=1))
    np.testing.assert_array_equal(out, (pcm8.astype(np.int16) - 128) << 8)


def test_empty_wav_is_refused(tmp_path):
    with pytest.raises(InputError, match="contains no audio"):
        load_wav(wav(tmp_path / "e.wav", b""))


def test_not_audio_is_refused_with_what_to_use(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(b"ID3\x03 this is an mp3, honest" * 10)
    with pytest.raises(InputError, match="is not audio presence can read .*use WAV, FLAC"):
        load_wav(path)
    truncated = tmp_path / "t.wav"
    truncated.write_bytes(wav(tmp_path / "ok.wav", tone(16000, 0.1).tobytes()).read_bytes()[:30])
    with pytest.raises(InputError, match="is not audio presence can read"):
        load_wav(truncated)


def test_float_wav_is_read_and_clipped_at_full_scale(tmp_path):
    samples = np.array([0.0, 0.5, -0.5, 1.5, -2.0], "<f4")  # Audacity exports float by default
    data = samples.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 3, 1, 16000, 64000, 4, 32)
    path = tmp_path / "f.wav"
    path.write_bytes(header + fmt + b"data" + struct.pack("<I", len(data)) + data)
    out, rate = load_wav(path)
    assert rate == 16000
    np.testing.assert_array_equal(out, [0, 16384, -16384, 32767, -32768])


@pytest.mark.parametrize(
    ("fmt", "subtype", "suffix"),
    [("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")],
)
def test_compressed_audio_is_read_like_a_wav(tmp_path, fmt, subtype, suffix):
    import soundfile as sf

    path = tmp_path / f"q.{suffix}"
    signal = tone(44100, 1.0, 440).astype(np.float32) / 32768
    sf.write(path, signal, 44100, format=fmt, subtype=subtype)
    out, rate = load_wav(path)
    assert rate == 16000
    assert len(out) == pytest.approx(16000, abs=1200)  # lossy codecs pad a frame or two
    assert dominant_freq(out, 16000) == pytest.approx(440, abs=2)
    assert np.abs(out).max() == pytest.approx(10000, rel=0.1)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_wav(tmp_path / "nope.wav")


def test_camera_clip_without_video_is_refused(tmp_path):
    path = wav(tmp_path / "audio_only.wav", tone(16000, 0.1).tobytes())
    with pytest.raises(InputError, match="no video stream"):
        CameraReader(path)
