"""QuietGain: a quiet user is raised to ordinary levels; ordinary speech is never touched."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.speech import synthesize_16k

from presence.processors.audio.engines.quiet_gain import QuietGain

RATE = 16000
CHUNK = 320  # 20 ms, as transports deliver it


def question(*sentences: str, gap_s: float = 0.0) -> np.ndarray:
    parts = []
    for text in sentences:
        parts += [np.zeros(int(RATE * (gap_s or 0.5)), np.int16), synthesize_16k(text)]
    return np.concatenate([*parts, np.zeros(RATE // 2, np.int16)])


def at_peak(pcm: np.ndarray, dbfs: float) -> np.ndarray:
    scale = 10 ** (dbfs / 20) * 32767 / np.abs(pcm.astype(np.float64)).max()
    return np.round(pcm * scale).astype(np.int16)


def run(gain: QuietGain, pcm: np.ndarray) -> np.ndarray:
    out = b"".join(gain.process(pcm[i : i + CHUNK].tobytes()) for i in range(0, len(pcm), CHUNK))
    return np.frombuffer(out, np.int16)


def peak_dbfs(pcm: np.ndarray) -> float:
    return 20 * np.log10(max(1, int(np.abs(pcm.astype(np.int32)).max())) / 32768)


def pink_noise(n: int, seed: int = 3) -> np.ndarray:
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / np.sqrt(np.mean(noise**2))


@pytest.mark.parametrize("peak", [-1.0, -6.0, -12.0])
def test_speech_at_ordinary_levels_passes_byte_for_byte(peak):
    pcm = at_peak(question("What is presence?", "Can I run it on my own server?"), peak)
    gain = QuietGain(RATE)
    assert run(gain, pcm).tobytes() == pcm.tobytes()
    assert gain.gain_db == 0.0


def test_speech_in_a_noisy_room_at_ordinary_levels_is_untouched():
    speech = question("Does it need an internet connection?").astype(np.float64)
    rms = np.sqrt(np.mean(speech[np.abs(speech) > 300] ** 2))
    noisy = speech + pink_noise(len(speech)) * rms / 10 ** (10 / 20)  # 10 dB SNR
    pcm = at_peak(noisy, -3.0)
    assert run(QuietGain(RATE), pcm).tobytes() == pcm.tobytes()


@pytest.mark.parametrize("peak", [-30.0, -40.0, -46.0])
def test_a_quiet_voice_is_raised_to_ordinary_levels(peak):
    pcm = at_peak(question("How do I change the voice of the persona?"), peak)
    gain = QuietGain(RATE, max_gain_db=30.0)
    out = run(gain, pcm)
    assert 0 < gain.gain_db <= 30.0
    speech = slice(RATE, len(pcm) - RATE // 2)  # from half a second into the speech
    assert peak_dbfs(out[speech]) > peak + 15  # now heard like ordinary speech
    assert peak_dbfs(out) <= -0.9  # never clipped


def test_the_gain_holds_over_a_silence_so_the_next_sentence_starts_raised():
    pcm = at_peak(question("What is a replica?", "And how do I make one?", gap_s=6.0), -40.0)
    gain = QuietGain(RATE)
    second = len(pcm) - RATE // 2 - len(synthesize_16k("And how do I make one?"))
    first_out = run(gain, pcm[:second])
    held = gain.gain_db
    out = run(gain, pcm[second : second + RATE // 5])  # the first 200 ms of the next sentence
    assert held > 20 and gain.gain_db == pytest.approx(held, abs=1.5)
    assert peak_dbfs(out) > peak_dbfs(pcm[second : second + RATE // 5]) + 20
    assert len(first_out) == second


def test_silence_and_faint_hiss_are_never_raised():
    hiss = np.round(np.random.default_rng(1).standard_normal(RATE * 6) * 5).astype(np.int16)
    gain = QuietGain(RATE)  # about -76 dBFS of hiss: no voice to raise
    assert run(gain, hiss).tobytes() == hiss.tobytes()
    assert (
        run(gain, np.zeros(RATE * 3, np.int16)).tobytes() == np.zeros(RATE * 3, np.int16).tobytes()
    )


def test_a_quiet_user_who_suddenly_speaks_up_is_not_clipped():
    quiet = at_peak(question("Is it free to use?"), -40.0)
    loud = at_peak(question("Sorry, I said is it free to use?"), -1.0)
    gain = QuietGain(RATE)
    run(gain, quiet)
    assert gain.gain_db > 20
    out = run(gain, loud)
    assert peak_dbfs(out) <= -0.9
    clipped = np.mean(np.abs(out.astype(np.int32)) >= 32767)
    assert clipped == 0.0


def test_no_gain_allowed_passes_everything_and_bad_settings_are_refused():
    pcm = at_peak(question("What is presence?"), -40.0)
    assert run(QuietGain(RATE, max_gain_db=0.0), pcm).tobytes() == pcm.tobytes()
    with pytest.raises(ValueError, match="max_gain_db"):
        QuietGain(RATE, max_gain_db=-3.0)
    with pytest.raises(ValueError, match="target_dbfs"):
        QuietGain(RATE, quiet_dbfs=-20.0, target_dbfs=-30.0)


def test_a_recordings_dither_is_not_raised_when_digital_silence_follows():
    # a session goes on after the user's file ends: its faint dither (about -67 dBFS), then
    # zeros; neither is a voice, and the user's next sentence must come as it is
    rng = np.random.default_rng(2)
    speech = at_peak(question("Where do my documents go?"), -3.0)
    dithered = speech + np.round(rng.standard_normal(len(speech)) * 14).astype(np.int16)
    again = at_peak(question("And can I use PDF files?"), -3.0)
    pcm = np.concatenate([dithered, np.zeros(RATE * 8, np.int16), again])
    gain = QuietGain(RATE)
    assert run(gain, pcm).tobytes() == pcm.tobytes()
    assert gain.gain_db == 0.0 and gain.wanted_db == 0.0
