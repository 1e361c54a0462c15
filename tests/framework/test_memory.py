"""Capping glibc's malloc arenas: threads that allocate at once share a few arenas."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from presence.framework.memory import limit_malloc_arenas

# Six threads allocate while all alive (glibc gives such threads arenas of their own, up to
# 8 per core); glibc's malloc_info then lists one <heap> per arena.
PROBE = textwrap.dedent(
    """
    import ctypes, os, sys, threading
    from presence.framework.memory import limit_malloc_arenas
    capped = sys.argv[1] == "cap" and limit_malloc_arenas(2)
    barrier, keep = threading.Barrier(6), []
    def work():
        keep.append(bytearray(4000))
        barrier.wait()
    threads = [threading.Thread(target=work) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    libc = ctypes.CDLL("libc.so.6")
    libc.fdopen.restype = ctypes.c_void_p
    out = ctypes.c_void_p(libc.fdopen(os.dup(1), b"w"))
    libc.malloc_info(0, out)
    libc.fflush(out)
    print("capped", capped, os.environ.get("MALLOC_ARENA_MAX"))
    """
)


def arenas(mode: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.count("<heap nr="), done.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_capped_threads_share_two_arenas_and_child_processes_inherit_the_cap():
    free, _ = arenas("free")
    capped, line = arenas("cap")
    assert free >= 4, free  # the probe does make arenas of its own without the cap
    assert capped <= 2, capped
    assert line == "capped True 2"  # processes started from here are capped from their start


def test_the_operators_setting_wins_and_a_bad_count_is_refused(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "8")
    assert limit_malloc_arenas() is False
    assert os.environ["MALLOC_ARENA_MAX"] == "8"
    with pytest.raises(ValueError, match="at least 1"):
        limit_malloc_arenas(0)


FREEZE = textwrap.dedent(
    """
    import gc, time
    from presence.framework.memory import freeze_loaded_objects

    models = [[i, str(i)] for i in range(300_000)]  # what a session's load leaves alive
    def full_ms():
        t = time.perf_counter(); gc.collect(); return (time.perf_counter() - t) * 1000
    before = min(full_ms() for _ in range(3))
    assert freeze_loaded_objects() is True
    frozen = gc.get_freeze_count()
    assert freeze_loaded_objects() is False and gc.get_freeze_count() == frozen
    after = min(full_ms() for _ in range(3))
    import weakref
    class Node: pass
    node = Node(); node.me = node; alive = weakref.ref(node); del node  # a cycle made later
    gc.collect()
    print(frozen, before, after, alive() is None)
    """
)


def test_loaded_objects_leave_full_collections_once_and_later_garbage_is_still_collected():
    out = subprocess.run(
        [sys.executable, "-c", FREEZE], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    frozen, before, after, later_collected = int(out[0]), float(out[1]), float(out[2]), out[3]
    assert frozen > 300_000
    assert after < before / 5  # a full collection no longer walks the loaded objects
    assert later_collected == "True"  # garbage made after the freeze is still collected
