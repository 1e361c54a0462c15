"""The recorder's audio timeline: tracks are summed in place, gaps are silence, nothing is lost."""

from __future__ import annotations

import numpy as np

from presence.service.recording import AudioMix


def test_tracks_overlap_by_sum_and_gaps_are_silence():
    mix = AudioMix(1000)
    mix.add(np.full(100, 1000, np.int16), start=50)  # persona
    mix.add(np.full(100, 500, np.int16), start=100)  # user, overlapping its second half
    start, first = mix.take(120)
    assert start == 0 and first.size == 120
    assert not first[:50].any() and (first[50:100] == 1000).all() and (first[100:] == 1500).all()
    start, rest = mix.take(mix.end)
    assert start == 120 and rest.size == mix.end - 120 == 80
    assert (rest[:30] == 1500).all() and (rest[30:] == 500).all()


def test_loud_overlap_clips_instead_of_wrapping_and_late_audio_is_trimmed():
    mix = AudioMix(1000)
    mix.add(np.full(10, 30000, np.int16), start=0)
    mix.add(np.full(10, 30000, np.int16), start=0)
    _, out = mix.take(10)
    assert (out == 32767).all()
    mix.add(np.full(10, 7, np.int16), start=5)  # half of it is already handed out
    start, out = mix.take(20)
    assert start == 10 and (out[:5] == 7).all() and not out[5:].any()
