"""``engines/stall.py``: a blocking decode with a time limit, and model reloads at most so often."""

from __future__ import annotations

import threading
import time

import pytest

from presence.processors.stt.engines.stall import Every, within


async def test_a_decode_within_the_limit_gives_its_result():
    assert await within(lambda: "words", 5.0) == (True, "words")


async def test_a_hung_decode_is_given_up_at_the_limit_and_still_gives_its_result_late():
    release = threading.Event()

    def slow():
        release.wait(10)
        return "late words"

    started = time.monotonic()
    finished, late = await within(slow, 0.2)
    assert not finished and not late.done() and time.monotonic() - started < 2.0
    release.set()
    assert await late == "late words"


async def test_a_given_up_decode_that_fails_raises_nothing_unless_awaited(caplog):
    release = threading.Event()

    def broken():
        release.wait(10)
        raise RuntimeError("came back broken")

    finished, late = await within(broken, 0.1)
    release.set()
    with pytest.raises(RuntimeError):
        await late  # the caller that asks for it gets the error; nobody else hears of it
    assert not finished and "never retrieved" not in caplog.text


async def test_without_a_limit_a_slow_decode_is_waited_for():
    assert await within(lambda: time.sleep(0.3) or "late words", 0) == (True, "late words")


async def test_an_engine_error_reaches_the_caller():
    def broken():
        raise ValueError("bad audio")

    with pytest.raises(ValueError, match="bad audio"):
        await within(broken, 5.0)


def test_reloads_happen_at_most_once_per_period():
    every = Every(0.3)
    assert every.ready() and not every.ready()
    time.sleep(0.35)
    assert every.ready()
