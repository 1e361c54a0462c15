"""Synthetic test speech from espeak-ng, self-contained (no project code).

``synthesize(text)`` returns espeak-ng's native 22050 Hz mono int16 PCM; ``synthesize_16k(text)``
the same resampled to 16 kHz (what STT stages take). Results are cached per text and settings.

The library from the ``espeakng-loader`` wheel is loaded from a private copy, so this helper's
global espeak state (callback, voice, rate) never disturbs a project engine that loads the same
library in the same test process.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1
POS_CHARACTER = 1

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)

_lock = threading.Lock()
_state: dict[str, object] = {}


def _lib() -> tuple[ctypes.CDLL, int]:
    """Load (once) a private copy of libespeak-ng and initialize it; returns (lib, sample rate)."""
    if "lib" in _state:
        return _state["lib"], _state["rate"]  # type: ignore[return-value]
    import espeakng_loader

    private = Path(tempfile.mkdtemp(prefix="speech-helper-")) / "libespeak-ng-tests.so"
    shutil.copyfile(espeakng_loader.get_library_path(), private)
    lib = ctypes.CDLL(str(private), mode=ctypes.RTLD_LOCAL)
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    rate = lib.espeak_Initialize(
        AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0
    )
    if rate <= 0:
        raise RuntimeError("espeak_Initialize failed")
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    chunks: list[np.ndarray] = []

    def on_audio(wav, n, _events):
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).astype(np.int16).copy())
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    _state.update(lib=lib, rate=rate, chunks=chunks, callback=callback)  # keep callback alive
    return lib, rate


@functools.lru_cache(maxsize=256)
def synthesize(text: str, voice: str = "en-us", wpm: int = 165) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng.

    Args:
        text: What to say (plain text, UTF-8).
        voice: espeak-ng voice name.
        wpm: Speaking rate in words per minute.

    Returns:
        ``(samples, sample_rate)``: mono int16 PCM (read-only, shared by the cache) and its rate
        (22050 Hz for the bundled voices).
    """
    with _lock:
        lib, rate = _lib()
        chunks: list[np.ndarray] = _state["chunks"]  # type: ignore[assignment]
        chunks.clear()
        lib.espeak_SetVoiceByName(voice.encode())
        lib.espeak_SetParameter(ESPEAK_RATE, wpm, 0)
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data)
        err = lib.espeak_Synth(buf, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with code {err}")
        lib.espeak_Synchronize()
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        chunks.clear()
    audio.setflags(write=False)
    return audio, rate


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Resample int16 mono PCM (polyphase with scipy when installed, else linear interpolation)."""
    if src_rate == dst_rate:
        return audio.copy()
    x = audio.astype(np.float32)
    try:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(src_rate, dst_rate)
        y = resample_poly(x, dst_rate // g, src_rate // g)
    except ImportError:
        n_out = int(round(len(x) * dst_rate / src_rate))
        y = np.interp(np.arange(n_out) * (src_rate / dst_rate), np.arange(len(x)), x)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


@functools.lru_cache(maxsize=256)
def synthesize_16k(text: str, voice: str = "en-us", wpm: int = 165) -> np.ndarray:
    """Speak ``text`` and return 16 kHz mono int16 PCM (read-only, shared by the cache)."""
    audio, rate = synthesize(text, voice, wpm)
    out = resample(audio, rate, 16000)
    out.setflags(write=False)
    return out
