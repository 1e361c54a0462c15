"""The process-wide espeak-ng library, bound through ctypes, and its voice catalogue.

The library and its voice data come from the ``espeakng-loader`` wheel (no system package).
espeak-ng is licensed GPL-3.0-or-later; it is loaded at run time, on first use.

Constraints:
    * espeak-ng keeps all its state in process-wide globals and is not thread-safe, so there is one
      ``_Library`` per process (``_lib``) and every call into the library runs under its lock.
    * Synthesis uses ``AUDIO_OUTPUT_SYNCHRONOUS``: espeak hands over audio in small chunks through a
      callback while it synthesizes, so the first chunk arrives within a few milliseconds however
      long the text is. Returning ``False`` from a chunk handler aborts the rest of the text.
    * Audio is mono int16 at ``sample_rate`` (22050 Hz for the bundled voices).
    * Phoneme events (``espeakINITIALIZE_PHONEME_EVENTS`` with IPA names) carry the sample index of
      each phoneme's onset, counted from the start of the utterance; a pause has the name ``""``.
    * An exception raised by a chunk handler never unwinds through C: it aborts synthesis and is
      re-raised by ``synthesize``.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from presence.framework.errors import ProviderError
from presence.framework.optional import require

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 0x0001
_ENDPAUSE = 0x1000
_POS_CHARACTER = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_BUFFER_MS = 40  # audio per callback: small enough for a fast first chunk


_c = ctypes


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", _c.c_int), ("unique_identifier", _c.c_uint), ("text_position", _c.c_int),
        ("length", _c.c_int), ("audio_position", _c.c_int), ("sample", _c.c_int),
        ("user_data", _c.c_void_p), ("id", _EventId),
    ]  # fmt: skip


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", _c.c_char_p),
        ("languages", _c.c_void_p),  # (priority byte, name, NUL) pairs, then a 0 byte
        ("identifier", _c.c_char_p), ("gender", _c.c_ubyte), ("age", _c.c_ubyte),
        ("variant", _c.c_ubyte), ("xx1", _c.c_ubyte), ("score", _c.c_int), ("spare", _c.c_void_p),
    ]  # fmt: skip


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


_SIGNATURES = {
    "espeak_Initialize": ([_c.c_int, _c.c_int, _c.c_char_p, _c.c_int], _c.c_int),
    "espeak_SetSynthCallback": ([_Callback], None),
    "espeak_SetVoiceByName": ([_c.c_char_p], _c.c_int),
    "espeak_SetParameter": ([_c.c_int, _c.c_int, _c.c_int], _c.c_int),
    "espeak_ListVoices": ([_c.POINTER(_Voice)], _c.POINTER(_c.POINTER(_Voice))),
    "espeak_Synth": (
        [_c.c_char_p, _c.c_size_t, _c.c_uint, _c.c_int, _c.c_uint, _c.c_uint, _c.c_void_p,
         _c.c_void_p],
        _c.c_int,
    ),
}  # fmt: skip


@dataclass(frozen=True)
class PhonemeEvent:
    """One phoneme's onset.

    Attributes:
        sample: Onset in samples at the engine's rate, from the start of the utterance.
        phoneme: IPA name as espeak reports it (stress marks included); ``""`` for a pause.
    """

    sample: int
    phoneme: str


@dataclass(frozen=True)
class SpeechChunk:
    """One piece of synthesized audio as espeak hands it over.

    Attributes:
        pcm: Mono int16 little-endian PCM at the engine's rate (may be empty).
        start_sample: Index of the chunk's first sample within the utterance.
        phonemes: Phonemes espeak reported with this chunk; their onsets lie at or before the
            chunk's end.
    """

    pcm: bytes
    start_sample: int
    phonemes: tuple[PhonemeEvent, ...]

    @property
    def num_samples(self) -> int:
        """Number of samples in ``pcm``."""
        return len(self.pcm) // 2


ChunkHandler = Callable[[SpeechChunk], "bool | None"]


class _Library:
    """The process-wide espeak-ng handle; every method takes the lock."""

    def __init__(self) -> None:
        loader = require("espeakng_loader", extra="offline", package="espeakng-loader")
        self.lock = threading.Lock()
        lib = ctypes.CDLL(loader.get_library_path())
        for name, (argtypes, restype) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.argtypes, function.restype = argtypes, restype
        flags = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, loader.get_data_path().encode(), flags
        )
        if rate <= 0:
            raise ProviderError(
                f"espeak-ng failed to initialize (code {rate}); reinstall espeakng-loader",
                provider="espeak",
                stage="tts",
            )
        self.lib = lib
        self.sample_rate = rate
        self._callback = _Callback(self._on_audio)  # kept alive as long as the library
        lib.espeak_SetSynthCallback(self._callback)
        self._handler: ChunkHandler | None = None
        self._position = 0
        self._error: BaseException | None = None
        self._voice: str | None = None
        self._data = Path(loader.get_data_path())
        # language name -> (priority, voice file identifier); lower priority wins
        best: dict[str, tuple[int, str]] = {}
        for identifier, languages in self._list(None):
            if not self._has_dictionary(identifier):
                continue  # listed, but its dictionary is not shipped: it would not speak
            for priority, language in languages:
                if priority < best.get(language, (99, ""))[0]:
                    best[language] = (priority, identifier)
        self.voices = {language: ident for language, (_, ident) in sorted(best.items())}
        variant = ctypes.create_string_buffer(b"variant")
        spec = _Voice(languages=ctypes.cast(variant, ctypes.c_void_p))
        self.variants = sorted({ident.split("/")[-1] for ident, _ in self._list(spec)})
        logger.debug(f"espeak-ng ready: {rate} Hz, {len(self.voices)} voices")

    def _list(self, spec: _Voice | None) -> list[tuple[str, list[tuple[int, str]]]]:
        """List ``(identifier, [(priority, language), ...])`` for each voice matching ``spec``."""
        found = []
        array = self.lib.espeak_ListVoices(ctypes.byref(spec) if spec is not None else None)
        i = 0
        while array[i]:
            voice = array[i].contents
            languages = []
            address = voice.languages  # (priority byte, name, NUL) pairs, then a 0 byte
            while address and (priority := ctypes.string_at(address, 1)[0]) != 0:
                name = ctypes.string_at(address + 1)
                languages.append((priority, name.decode(errors="ignore")))
                address += len(name) + 2
            found.append((voice.identifier.decode(), languages))
            i += 1
        return found

    def _has_dictionary(self, identifier: str) -> bool:
        """Whether the voice file's dictionary (``dictionary X`` or its language) is shipped."""
        try:
            lines = (self._data / "lang" / identifier).read_text(errors="ignore").splitlines()
        except OSError:
            return True  # not a plain language file: let espeak decide
        words = [line.split() for line in lines if line.split()]
        named = [w[1] for w in words if w[0] == "dictionary" and len(w) > 1]
        language = [w[1].split("-")[0] for w in words if w[0] == "language" and len(w) > 1]
        dictionary = (named or language or [identifier.split("/")[-1]])[0]
        return (self._data / f"{dictionary}_dict").exists()

    def _on_audio(self, wav, num_samples, events) -> int:
        try:
            phonemes = []
            j = 0
            while events and events[j].type != _EVENT_LIST_TERMINATED:
                event = events[j]
                if event.type == _EVENT_PHONEME:
                    name = event.id.string.decode("utf-8", errors="ignore")
                    phonemes.append(PhonemeEvent(int(event.sample), name))
                j += 1
            pcm = ctypes.string_at(wav, num_samples * 2) if wav and num_samples > 0 else b""
            if not pcm and not phonemes:
                return 0
            chunk = SpeechChunk(pcm, self._position, tuple(phonemes))
            self._position += len(pcm) // 2
            handler = self._handler
            if handler is not None and handler(chunk) is False:
                return 1  # abort the rest of the text
            return 0
        except BaseException as exc:  # never let an exception unwind through C
            self._error = exc
            return 1

    def synthesize(
        self, text: str, *, voice: str, rate: int, pitch: int, end_pause: bool,
        on_chunk: ChunkHandler,
    ) -> int:  # fmt: skip
        with self.lock:
            if voice != self._voice:
                base, _, variant = voice.partition("+")
                name = self.voices[base] + (f"+{variant}" if variant else "")
                if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                    raise ProviderError(
                        f"cannot load voice {voice!r}", provider="espeak", stage="tts"
                    )
                self._voice = voice
            self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self.lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            data = text.encode("utf-8")
            flags = _CHARS_UTF8 | (_ENDPAUSE if end_pause else 0)
            self._handler, self._position, self._error = on_chunk, 0, None
            try:
                code = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, flags,
                                             None, None)  # fmt: skip
            finally:
                self._handler = None
            if self._error is not None:
                raise self._error
            if code != 0:
                raise ProviderError(f"espeak_Synth failed (code {code})", provider="espeak",
                                    stage="tts")  # fmt: skip
            return self._position


_library: _Library | None = None
_library_lock = threading.Lock()


def _lib() -> _Library:
    global _library
    with _library_lock:
        if _library is None:
            _library = _Library()
        return _library


def available_voices() -> list[str]:
    """Language names espeak-ng accepts as a voice, e.g. ``en-us``, ``en-gb``, ``fr-fr``."""
    return list(_lib().voices)


def available_variants() -> list[str]:
    """Voice variants that may follow a voice after ``+``, e.g. ``en-us+f3``."""
    return list(_lib().variants)


def voice_problem(voice: str) -> str | None:
    """Say what is wrong with ``voice``, or return ``None`` when espeak-ng has it.

    A voice is a language name from ``available_voices`` optionally followed by ``+VARIANT``
    with a variant from ``available_variants``.
    """
    lib = _lib()
    base, _, variant = voice.partition("+")
    if base not in lib.voices:
        return (
            f"unknown espeak voice {base!r}; allowed voices: {', '.join(lib.voices)} "
            f"(optionally with '+VARIANT', variants: {', '.join(lib.variants)})"
        )
    if variant and variant not in lib.variants:
        return f"unknown espeak voice variant {variant!r}; allowed: {', '.join(lib.variants)}"
    return None
