"""Streaming offline speech recognition with pocketsphinx (CMU Sphinx), no pipecat import.

``build_recognizer`` makes a ``StreamingRecognizer`` with either the generic en-us language model
shipped with pocketsphinx or a small domain model built from a persona's documents (see
``domain_lm``). The recognizer takes 16 kHz mono int16 PCM a chunk at a time:

    rec = build_recognizer(knowledge_files=persona.knowledge_files())
    rec.start()
    for chunk in chunks:          # e.g. 20 ms each
        rec.feed(chunk)
        text = rec.partial()      # interim hypothesis, may change
    final = rec.finish()          # final hypothesis of the utterance

Constraints: pocketsphinx holds the GIL while it decodes, so feed audio in small chunks as it
arrives (a few milliseconds each) instead of decoding a whole utterance at once, which stalls an
event loop for a second or more. One recognizer serves one audio stream; it is not thread-safe.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from presence.framework.errors import ConfigError, DependencyError
from presence.processors.stt.engines.domain_lm import (
    Lexicon,
    build_arpa,
    domain_sentences,
    generic_unigrams,
    model_dir,
    split_known,
)

SAMPLE_RATE = 16000
LANGUAGE_MODELS = ("domain", "generic")
# Starting cepstral mean. pocketsphinx's live CMN moves the mean only every few seconds of audio
# and at the end of an utterance, so a session's FIRST short question is decoded with this value.
# pocketsphinx's own (40,3,-1) is far from 16 kHz speech at ordinary levels (cold, about half the
# keywords of synthetic questions are lost). This is the mean pocketsphinx adapts to over many
# synthetic questions, with c0 (log energy) a little lower because the adapted mean also counts
# pauses. Measured cold on the guide persona's questions: 91% of keywords with it, 82% with the
# previous start (61.7,5.1,...), 51% with pocketsphinx's.
SPEECH_CMN = "52.0,2.7,-7.8,22.7,-15.3,1.1,-4.1,-21.4,2.4,-10.1,11.1,-8.0,-6.1"


@dataclass
class RecognizerInfo:
    """What a recognizer was built with (for logs and reports).

    Attributes:
        language_model: ``domain`` or ``generic``.
        vocabulary: Number of words the decoder can output.
        sentences: Number of word sequences the domain model was estimated from (0 if generic).
        dropped_words: Domain words left out because no pronunciation could be found.
        build_secs: Wall time spent building the model and loading the decoder.

    """

    language_model: str
    vocabulary: int
    sentences: int = 0
    dropped_words: tuple[str, ...] = ()
    build_secs: float = 0.0


class StreamingRecognizer:
    """One pocketsphinx decoder fed utterance by utterance.

    Args:
        decoder: A configured ``pocketsphinx.Decoder``.
        info: Description of the model it was built with.

    """

    def __init__(self, decoder, info: RecognizerInfo):
        self._decoder = decoder
        self.info = info
        self._active = False
        self._samples = 0
        self._cmn_init = decoder.get_cmn()

    @property
    def in_utterance(self) -> bool:
        """True between ``start`` and ``finish``/``cancel``."""
        return self._active

    @property
    def utterance_secs(self) -> float:
        """Seconds of audio fed into the current (or last) utterance."""
        return self._samples / SAMPLE_RATE

    def start(self) -> None:
        """Begin an utterance; a running one is abandoned first."""
        if self._active:
            self.cancel()
        self._decoder.start_utt()
        self._active = True
        self._samples = 0

    def feed(self, pcm: bytes) -> None:
        """Decode a chunk of 16 kHz mono int16 PCM (starts an utterance if none is running)."""
        if not self._active:
            self.start()
        if pcm:
            self._decoder.process_raw(pcm, False, False)
            self._samples += len(pcm) // 2

    def partial(self) -> str:
        """Return the running utterance's current best hypothesis ("" when there is none)."""
        if not self._active:
            return ""
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def finish(self) -> str:
        """End the utterance and return its final hypothesis ("" if nothing was recognized)."""
        if not self._active:
            return ""
        self._decoder.end_utt()
        self._active = False
        hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def reset_adaptation(self) -> None:
        """Forget what live normalization learned about the channel (as for a new speaker).

        The next utterance starts from the built-in cepstral mean again, as the first utterance
        of a new recognizer does. Call it between utterances, not during one.
        """
        self._decoder.set_cmn(self._cmn_init)

    def cancel(self) -> None:
        """Drop the running utterance without a result."""
        if self._active:
            self._decoder.end_utt()
            self._active = False


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError as exc:  # pragma: no cover - pocketsphinx is a core dependency
        raise DependencyError(
            "'pocketsphinx' is not installed: run `pip install presence`"
        ) from exc
    return pocketsphinx


def build_recognizer(
    *,
    language_model: str = "domain",
    knowledge_files: Iterable[Path] = (),
    extra_phrases: Iterable[str] = (),
    lm_weight: float | None = None,
    generic_words: int = 2000,
    generic_weight: float = 0.05,
    second_pass: bool = False,
    cmn_init: str | None = SPEECH_CMN,
) -> StreamingRecognizer:
    """Build a streaming recognizer with the generic or a domain language model.

    Args:
        language_model: ``domain`` (a model over the persona's phrases; recognizes questions
            about the knowledge base far better) or ``generic`` (the shipped en-us model).
        knowledge_files: Markdown documents to build the domain model from.
        extra_phrases: Phrases added to the domain model (e.g. names, commands).
        lm_weight: Language-model weight against the acoustic model; ``None`` keeps the
            decoder's default (6.5). Higher trusts the language model more.
        generic_words: How many of the most frequent generic English words the domain model
            also knows, so out-of-domain speech still partially recognizes (0 for none).
        generic_weight: Share of unigram probability those generic words get (0..1).
        second_pass: Run pocketsphinx's flat-lexicon second pass at the end of an utterance
            (slightly more accurate, but it adds its time to end-of-speech latency).
        cmn_init: Starting cepstral mean, comma-separated (``None`` keeps pocketsphinx's
            ``40,3,-1``); live CMN adapts it to the channel over the first utterances.

    Returns:
        A ready recognizer; building a domain model takes a fraction of a second.

    Raises:
        ConfigError: An unknown ``language_model`` or an out-of-range weight.

    """
    if language_model not in LANGUAGE_MODELS:
        raise ConfigError(
            f"unknown language_model {language_model!r}; use one of {', '.join(LANGUAGE_MODELS)}"
        )
    if not 0.0 <= generic_weight < 1.0:
        raise ConfigError(f"generic_weight must be in [0, 1), got {generic_weight}")
    ps = _pocketsphinx()
    began = time.perf_counter()
    models = model_dir()
    options: dict[str, object] = {
        "hmm": str(models / "en-us"),
        "samprate": SAMPLE_RATE,
        "fwdflat": second_pass,
        "loglevel": "ERROR",
    }
    if lm_weight is not None:
        options["lw"] = float(lm_weight)
    if cmn_init:
        options["cmninit"] = cmn_init

    if language_model == "generic":
        options.update(lm=str(models / "en-us.lm.bin"), dict=str(models / "cmudict-en-us.dict"))
        decoder = ps.Decoder(**options)
        info = RecognizerInfo("generic", vocabulary=-1)
    else:
        lexicon = Lexicon()
        raw = domain_sentences(knowledge_files, extra_phrases)
        dropped = sorted({w for s in raw for w in s if not lexicon.pronunciations(w)})
        sentences = split_known(raw, lexicon)
        generic = {w: p for w, p in generic_unigrams(generic_words).items()}
        arpa = build_arpa(sentences, generic=generic, generic_weight=generic_weight)
        vocab = {w for s in sentences for w in s} | set(generic)
        with tempfile.TemporaryDirectory(prefix="presence-stt-") as tmp:
            lm_path, dict_path = Path(tmp) / "domain.arpa", Path(tmp) / "domain.dict"
            lm_path.write_text(arpa, encoding="utf-8")
            lexicon.write_dict(vocab, dict_path)
            options.update(lm=str(lm_path), dict=str(dict_path))
            decoder = ps.Decoder(**options)  # reads both files now; they may go afterwards
        info = RecognizerInfo("domain", len(vocab), len(sentences), tuple(dropped))
        if dropped:
            logger.debug(f"pocketsphinx: {len(dropped)} domain words have no pronunciation")
    info.build_secs = time.perf_counter() - began
    logger.info(
        f"pocketsphinx: {info.language_model} language model ready "
        f"({info.vocabulary} words, {info.build_secs:.2f}s)"
    )
    return StreamingRecognizer(decoder, info)
