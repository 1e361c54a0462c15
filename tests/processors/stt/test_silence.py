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
