"""Phoneme to viseme mapping and the placement of onsets on output frames."""

from __future__ import annotations

import pytest

from presence.processors.tts.visemes import VISEMES, VisemeAligner, viseme_for


@pytest.mark.parametrize(
    ("phoneme", "viseme"),
    [
        ("m", "closed"), ("p", "closed"), ("b", "closed"),
        ("f", "fv"), ("v", "fv"), ("θ", "th"), ("ð", "th"),
        ("ˈɑː", "open"), ("ˈaɪ", "open"), ("ˈæ", "open"),
        ("iː", "spread"), ("ˈeɪ", "spread"), ("j", "spread"),
        ("ˈoʊ", "round"), ("uː", "round"), ("w", "round"),
        ("tʃ", "ch"), ("dʒ", "ch"), ("ʃ", "ch"),
        ("t", "td"), ("n", "td"), ("s", "sz"), ("l", "l"), ("ɹ", "r"), ("ɚ", "r"),
        ("k", "kg"), ("ɡ", "kg"), ("ə", "mid"),
        ("", "rest"), ("_:", "rest"),
    ],
)  # fmt: skip
def test_viseme_for(phoneme, viseme):
    assert viseme_for(phoneme) == viseme


def test_every_mapped_viseme_is_declared():
    phonemes = "m f θ t s ʃ k l ɹ a ə i o ɛ ʊ ŋ ʒ ɾ ɐ x ʔ".split() + ["", "¿"]
    assert {viseme_for(p) for p in phonemes} <= set(VISEMES)


def test_aligner_places_onsets_in_the_frame_that_contains_them():
    aligner = VisemeAligner(in_rate=22050, out_rate=24000)
    aligner.add(0, "")
    aligner.add(2205, "m")  # 0.1 s
    aligner.add(6615, "ɑː")  # 0.3 s
    assert aligner.take(1200) == [(0.0, "rest", "")]  # 0.00-0.05 s
    assert aligner.take(0) == []
    second = aligner.take(2400)  # 0.05-0.15 s
    assert [(v, p) for _, v, p in second] == [("closed", "m")]
    assert second[0][0] == pytest.approx(0.05)
    assert aligner.take(2400) == []  # 0.15-0.25 s
    third = aligner.take(2400)  # 0.25-0.35 s
    assert third[0][1:] == ("open", "ɑː") and third[0][0] == pytest.approx(0.05)
    assert aligner.pending == 0


def test_aligner_holds_onsets_not_yet_covered_by_audio():
    aligner = VisemeAligner(in_rate=16000, out_rate=16000)
    aligner.add(1000, "p")
    assert aligner.take(500) == []
    assert aligner.pending == 1
    assert aligner.take(600) == [(500 / 16000, "closed", "p")]
