"""read_wav: the Python WebRTC user's microphone takes what the file transport takes, at 48 kHz."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from presence.framework.errors import InputError
from presence.transports.webrtc.received import RATE, read_wav


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "FLOAT"), ("WAV", "PCM_16"), ("FLAC", "PCM_24")]
)
def test_speech_files_become_48k_mono_int16(tmp_path, fmt, subtype):
    t = np.arange(16000) / 16000
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / f"mic.{fmt.lower()}"
    sf.write(path, np.stack([tone, tone], axis=1), 16000, format=fmt, subtype=subtype)
    pcm = read_wav(path)
    assert RATE == 48000 and pcm.dtype == np.int16 and pcm.ndim == 1
    assert len(pcm) == pytest.approx(48000, abs=2)
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    assert np.fft.rfftfreq(len(pcm), 1 / RATE)[np.argmax(spectrum)] == pytest.approx(440, abs=2)
    assert np.abs(pcm).max() == pytest.approx(0.3 * 32768, rel=0.03)


def test_a_file_that_is_not_audio_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "mic.wav"
    path.write_text("not audio")
    with pytest.raises(InputError, match="is not audio presence can read"):
        read_wav(path)
