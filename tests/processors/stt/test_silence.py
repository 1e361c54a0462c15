import numpy as np

from presence.processors.stt.engines.silence import SilenceWatch


def chunks(audio: np.ndarray, size: int = 320):
    for i in range(0, len(audio), size):
        yield audio[i : i + size].tobytes()


def tone(seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def test_silence_is_reported_once_after_the_quiet_lasts_and_voice_when_it_returns():
    watch = SilenceWatch(after_s=0.1)
    events = [e for c in chunks(tone(0.5)) if (e := watch.feed(c))]
    assert events == []
    quiet = [watch.feed(c) for c in chunks(np.zeros(3200, np.int16))]
    assert quiet.count("silence") == 1 and quiet.index("silence") == 4  # 5 x 20 ms = 100 ms
    assert watch.feed(tone(0.02).tobytes()) == "voice"


def test_a_quiet_voice_is_judged_against_its_own_peak_and_silence_alone_reports_nothing():
    watch = SilenceWatch(after_s=0.1)
    assert [watch.feed(c) for c in chunks(np.zeros(8000, np.int16))] == [None] * 25
    soft = tone(0.3, amplitude=600.0)
    assert not any(watch.feed(c) for c in chunks(soft))
    tail = [watch.feed(c) for c in chunks(tone(0.2, amplitude=30.0))]
    assert "silence" in tail


def room(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    """Steady noise (a fan, a street) at ``rms``."""
    from presence.benchmarks.conversation.rooms import Noise, make_noise

    noise = make_noise(Noise("pink", 0.0), int(seconds * 16000), 16000, rms / 32768, seed)
    return noise * 32768


def speech_in(noise_rms: float) -> np.ndarray:
    """0.5 s of the room, a 1.5 s voice in it (syllables with short dips), 0.4 s of the room."""
    t = np.arange(int(1.5 * 16000)) / 16000
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    voice = 6000 * syllables * np.sin(2 * np.pi * 180 * t)
    clean = np.concatenate([np.zeros(8000), voice, np.zeros(6400)])
    return np.clip(clean + room(len(clean) / 16000, noise_rms), -32768, 32767).astype(np.int16)


def events_of(watch: SilenceWatch, audio: np.ndarray, reset_at_s: float = 0.7) -> list:
    """(time of the chunk's end, event) for each event after the turn starts (the VAD's start)."""
    out = []
    for k, chunk in enumerate(chunks(audio)):
        if k * 320 == int(reset_at_s * 16000):
            watch.reset()
        event = watch.feed(chunk)
        if event and k * 320 >= int(reset_at_s * 16000):
            out.append(((k + 1) * 320 / 16000, event))
    return out


def test_in_a_noisy_room_the_end_of_the_voice_is_still_seen_soon_after_it():
    """A fan 13 dB under the voice: the level rule alone never calls it quiet; the room's own
    floor, learned before the user spoke, does, one ``after_s`` after the voice ends."""
    audio = speech_in(noise_rms=600.0)  # the voice's RMS is about 2,700
    learned = events_of(SilenceWatch(after_s=0.1), audio)
    assert [e for _, e in learned] == ["silence"], learned
    assert 2.0 + 0.1 <= learned[0][0] <= 2.0 + 0.16  # the voice ends at 2.0 s
    assert events_of(SilenceWatch(after_s=0.1, noise_margin=0.0), audio) == []


def test_a_room_nearly_as_loud_as_the_voice_never_makes_the_voice_quiet():
    audio = speech_in(noise_rms=3000.0)
    assert [e for t, e in events_of(SilenceWatch(after_s=0.1), audio) if t < 2.0] == []


def test_the_noise_floor_is_the_room_s_and_outlives_each_utterance():
    watch = SilenceWatch(after_s=0.1, noise_window_s=3.0)
    assert watch.noise_rms is None
    for c in chunks(room(1.0, 500.0).astype(np.int16)):
        watch.feed(c)
    floor = watch.noise_rms
    assert 300.0 < floor < 500.0  # the quietest 20 ms of a steady room: a little under its RMS
    watch.reset()
    assert watch.noise_rms == floor
    for c in chunks(room(3.2, 2000.0, seed=1).astype(np.int16)):  # the room got louder
        watch.feed(c)
    assert watch.noise_rms > 4 * floor  # the old floor has left the window
