"""Fewer glibc malloc arenas, so a long call's native memory levels off.

glibc gives each thread that allocates under contention an arena of its own, up to 8 per core,
and an arena's freed memory mostly stays mapped. A call's native runtimes (CTranslate2 for
Whisper, onnxruntime for Piper, Silero and smart-turn, libvpx, torch) allocate from many short-
lived threads at once, so a process's resident memory keeps growing in steps as new arenas fill.
``limit_malloc_arenas`` caps their number for the calling process with ``mallopt(M_ARENA_MAX)``,
which is what ``MALLOC_ARENA_MAX`` does when set before the process starts.

``release_freed_memory`` hands the heap's free pages back to the system (``malloc_trim``). The
runtimes' buffers of one turn (a decode, a sentence's synthesis: tens of MiB) are freed when the
turn ends, but glibc keeps most of them mapped, so an idle session held whatever its last turns
happened to leave; ``IdleMemoryTrim`` (``framework/observers/idle_trim.py``) calls it once a
session has gone quiet after an answer.

``freeze_loaded_objects`` takes the objects alive once a session's models are loaded (hundreds of
thousands: torch, pipecat, the runtimes' Python wrappers) out of Python's cyclic garbage
collector, so its full collections walk only what the call itself creates. A full collection
holds the GIL, so neither the event loop nor the render thread runs meanwhile; over a loaded
pipeline it can outlast a 40 ms video frame, which is then repeated.

It also sets ``MALLOC_ARENA_MAX`` in the environment, so the processes this one starts (session
processes, Ray nodes) are capped from their start. It is a no-op where the C library is not
glibc, and when ``MALLOC_ARENA_MAX`` is already set (the operator's setting wins, and glibc read
it when this process started). No pipecat here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

from loguru import logger

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
DEFAULT_ARENAS = 2
_frozen = False


def _libc():
    """The C library through ctypes when it is glibc on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return libc


def can_release_freed_memory() -> bool:
    """Whether ``release_freed_memory`` does anything here (glibc on Linux)."""
    return _libc() is not None


def release_freed_memory() -> bool:
    """Return the heap's free pages to the system (blocking, a few ms); True when any were.

    Memory still in use is untouched; the next allocations map fresh pages (a page fault each).
    """
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0))


def limit_malloc_arenas(count: int = DEFAULT_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process at ``count``; True when the cap was set.

    Call it early, before the process starts its threads: arenas made before stay.

    Raises:
        ValueError: ``count`` is not positive.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if "MALLOC_ARENA_MAX" in os.environ or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if mallopt(M_ARENA_MAX, count) != 1:
        logger.debug("mallopt(M_ARENA_MAX) was refused; malloc arenas are not capped")
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(count)
    return True


def freeze_loaded_objects() -> bool:
    """Move every object alive now to the collector's permanent generation, once per process.

    Call it when a session's stages are loaded: what is frozen is never walked (nor collected)
    again, so it should be what lives as long as the process — the models and their wrappers.
    Later calls do nothing, so the objects of sessions that come and go stay collectable. The
    garbage the loading left is collected first. True when this call froze.
    """
    global _frozen
    if _frozen:
        return False
    _frozen = True
    gc.collect()
    gc.freeze()
    logger.debug(f"{gc.get_freeze_count()} loaded objects left out of garbage collection")
    return True
