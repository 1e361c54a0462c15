"""Phonemes to visemes (mouth shapes), and their placement on audio frames.

The TTS stage attaches ``frame.metadata["visemes"]`` to each audio frame it pushes: a list of
``(offset_seconds, viseme, phoneme)`` for the phonemes whose onset falls inside that frame, with
``offset_seconds`` measured from the frame's first sample. A viseme holds until the next one; after
the last frame of an utterance the mouth returns to ``rest``. Pure: no pipecat, no engine.

The viseme set (``VISEMES``) is small on purpose: a renderer needs one mouth pose per name.
"""

from __future__ import annotations

VISEMES: dict[str, str] = {
    "rest": "silence: lips relaxed and closed",
    "closed": "p b m: lips pressed together",
    "fv": "f v: lower lip under the upper teeth",
    "th": "θ ð: tongue tip between the teeth",
    "td": "t d n: tongue on the ridge, jaw slightly open",
    "sz": "s z: teeth close, lips slightly spread",
    "ch": "ʃ ʒ tʃ dʒ: lips pushed forward",
    "kg": "k g ŋ h: back of the tongue, jaw half open",
    "l": "l: tongue tip up, mouth half open",
    "r": "ɹ ɚ: lips slightly rounded",
    "open": "a ɑ æ ʌ: jaw wide open",
    "mid": "ə ɛ ɜ: jaw half open, lips neutral",
    "spread": "i ɪ e j: lips spread",
    "round": "o ɔ u ʊ w: lips rounded",
}

_BY_SYMBOL: dict[str, str] = {}
for _viseme, _symbols in {
    "closed": "p b m ɱ",
    "fv": "f v ʋ",
    "th": "θ ð",
    "td": "t d n ɾ ɗ ʈ ɖ ɳ",
    "sz": "s z ts dz",
    "ch": "ʃ ʒ tʃ dʒ ɕ ʑ tɕ dʑ",
    "kg": "k ɡ g ŋ h x ɣ ʔ q ɢ χ ɦ c ɟ ɲ",
    "l": "l ɫ ɬ ɭ ʎ",
    "r": "ɹ r ɻ ɚ ɝ ʁ ʀ",
    "open": "a ɑ æ ʌ ɐ ä",
    "mid": "ə ɛ ɜ ɞ œ",
    "spread": "i ɪ e j ɨ ɯ",
    "round": "o ɔ u ʊ w ɒ ɵ ø y ʉ ʏ ɥ",
}.items():
    for _symbol in _symbols.split():
        _BY_SYMBOL[_symbol] = _viseme

_MARKS = str.maketrans("", "", "ˈˌːˑ'̩̯̪̃ʲʷ")


def viseme_for(phoneme: str) -> str:
    """Return the viseme for one IPA phoneme as espeak-ng names it.

    Stress and length marks are ignored; a diphthong takes the shape of its first vowel; an empty
    name (espeak's pause) or ``_`` is ``rest``; an unknown symbol is ``mid``.
    """
    core = phoneme.translate(_MARKS).strip()
    if not core or core.startswith("_"):
        return "rest"
    for prefix in (core, core[:2], core[:1]):
        if prefix in _BY_SYMBOL:
            return _BY_SYMBOL[prefix]
    return "mid"


class VisemeAligner:
    """Places phoneme onsets, timed at the synthesis rate, on consecutive output frames.

    Feed onsets with ``add`` as the engine reports them (in order), and call ``take`` once per
    output frame, in order, with that frame's sample count. An onset is assigned to the frame
    whose time span contains it; onsets not yet covered by audio wait for a later frame.

    Args:
        in_rate: Rate at which onsets are counted (the engine's native rate).
        out_rate: Rate of the frames handed to ``take``.
    """

    def __init__(self, in_rate: int, out_rate: int):
        self._scale = out_rate / in_rate
        self._out_rate = out_rate
        self._emitted = 0  # output samples handed out so far
        self._pending: list[tuple[float, str]] = []  # (onset in output samples, phoneme)

    @property
    def pending(self) -> int:
        """Onsets not yet placed on a frame."""
        return len(self._pending)

    def add(self, sample: int, phoneme: str) -> None:
        """Queue one onset at ``sample`` (input rate, from the start of the utterance)."""
        self._pending.append((sample * self._scale, phoneme))

    def take(self, num_samples: int) -> list[tuple[float, str, str]]:
        """Visemes for the next frame of ``num_samples`` output samples.

        Returns:
            ``(offset_seconds, viseme, phoneme)`` per onset inside the frame, offsets in
            ``[0, num_samples / out_rate)`` and non-decreasing.
        """
        end = self._emitted + num_samples
        placed: list[tuple[float, str, str]] = []
        while self._pending and self._pending[0][0] < end:
            onset, phoneme = self._pending.pop(0)
            offset = max(0.0, onset - self._emitted) / self._out_rate
            placed.append((offset, viseme_for(phoneme), phoneme))
        self._emitted = end
        return placed
