"""A Deepgram ``/v1/listen`` fake that hears real (synthetic) speech, for whole-pipeline tests.

``FakeDeepgram`` decodes a sample code that VAD does not take for speech. This subclass speaks the
same protocol but hears sound: a *word* is a burst of sound (10 ms frames whose peak reaches
``threshold``) that ends after ``word_gap_ms`` of quiet; an utterance ends (``speech_final``)
after ``endpoint_ms`` of quiet or on ``Finalize``. Words are named from ``script`` in order: the
n-th word of a result is ``script[finalized + n]``, where ``finalized`` counts the words already
sent in final results on any connection (``"?"`` past the end of the script). So audio lost on
the way shows up as a transcript that stops short, and audio sent twice as a shifted one.

``spoken_words(words)`` builds matching 16 kHz speech: espeak-ng says each word, the silence
around it is trimmed, and ``gap_ms`` of zeros go between words (short enough that VAD hears one
utterance, long enough that this fake hears separate words).
"""

from __future__ import annotations

import numpy as np
from fakes.deepgram import FakeDeepgram, _Result

FRAME_S = 0.01


class FakeSpokenDeepgram(FakeDeepgram):
    """Scripted Deepgram server that transcribes bursts of sound as the script's words.

    Args:
        script: Every word the user says in the session, in order.
        threshold: Peak sample value (int16) of a frame that counts as sound.
        word_gap_ms: Quiet that ends a word.
        endpoint_ms: Quiet that ends an utterance (``speech_final``).
        drop_after_ms, malformed_on, stall_on: Faults, as in ``FakeDeepgram``.
    """

    def __init__(
        self,
        script: list[str],
        *,
        threshold: int = 300,
        word_gap_ms: int = 70,
        endpoint_ms: int = 300,
        drop_after_ms: dict[int, int] | None = None,
        malformed_on: set[int] | None = None,
        stall_on: set[int] | None = None,
    ):
        super().__init__(
            list(script),
            endpoint_ms=endpoint_ms,
            drop_after_ms=drop_after_ms,
            malformed_on=malformed_on,
            stall_on=stall_on,
        )
        self.script = list(script)
        self.finalized_words = 0  # counted as finals are made: several may come from one chunk
        self.threshold = threshold
        self.word_gap_ms = word_gap_ms

    @property
    def finals(self) -> list[str]:
        """Every final transcript sent, over all connections, in order."""
        return [text for log in self.connections for text in log.finals]

    def names(self, count: int) -> list[str]:
        """Names of the next ``count`` words after those already finalized."""
        done = self.finalized_words
        return [self.script[i] if i < len(self.script) else "?" for i in range(done, done + count)]

    def _decoder(self, rate: int) -> _SpeechDecoder:
        return _SpeechDecoder(rate, self)


class _SpeechDecoder:
    """Per-connection word segmentation on 10 ms frames (same interface as ``_Decoder``)."""

    def __init__(self, rate: int, fake: FakeSpokenDeepgram):
        self.rate = rate
        self.fake = fake
        self.frame = int(rate * FRAME_S)
        self.gap_frames = max(1, fake.word_gap_ms // 10)
        self.endpoint_frames = max(self.gap_frames + 1, fake.endpoint_ms // 10)
        self.samples = 0
        self.count = 0  # words heard and not yet finalized
        self.in_word = False
        self.quiet = 0
        self.segment_start = 0.0
        self._tail = np.zeros(0, dtype=np.int16)

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def feed(self, data: bytes) -> list[_Result]:
        usable = len(data) - len(data) % 2
        pcm = np.concatenate([self._tail, np.frombuffer(data[:usable], dtype=np.int16)])
        whole = len(pcm) - len(pcm) % self.frame
        self._tail = pcm[whole:]
        results: list[_Result] = []
        peaks = np.abs(pcm[:whole].astype(np.int32)).reshape(-1, self.frame).max(axis=1)
        for peak in peaks.tolist():
            self.samples += self.frame
            if peak >= self.fake.threshold:
                if not self.in_word and self.count == 0:
                    self.segment_start = (self.samples - self.frame) / self.rate
                self.in_word, self.quiet = True, 0
                continue
            self.quiet += 1
            if self.in_word and self.quiet == self.gap_frames:
                self.in_word = False
                self.count += 1
                names = self.fake.names(self.count)
                results.append(_Result(names, self.segment_start, self.seconds, False))
            if self.quiet == self.endpoint_frames and self.count:
                results.append(self._final(speech_final=True))
        return results

    def _final(self, *, speech_final: bool, from_finalize: bool = False) -> _Result:
        names = self.fake.names(self.count)
        result = _Result(names, self.segment_start, self.seconds, True, speech_final, from_finalize)
        self.fake.finalized_words += self.count
        self.count = 0
        self.segment_start = self.seconds
        return result

    def finalize(self, from_finalize: bool = True) -> _Result:
        if self.in_word:  # a word still sounding counts as spoken
            self.in_word = False
            self.count += 1
        return self._final(speech_final=True, from_finalize=from_finalize)


def spoken_words(
    words: list[str], *, gap_ms: int = 110, threshold: int = 300, wpm: int = 165
) -> np.ndarray:
    """16 kHz int16 speech of ``words``: one espeak-ng word each, ``gap_ms`` of zeros between.

    The silence espeak puts around a word (quieter than ``threshold``) is trimmed, so the gaps
    are exactly ``gap_ms``.
    """
    from helpers.speech import synthesize_16k

    parts = []
    for word in words:
        audio = np.asarray(synthesize_16k(word, wpm=wpm))
        loud = np.flatnonzero(np.abs(audio.astype(np.int32)) >= threshold)
        parts.append(audio[loud[0] : loud[-1] + 1] if len(loud) else audio)
        parts.append(np.zeros(16000 * gap_ms // 1000, dtype=np.int16))
    return np.concatenate(parts[:-1])
