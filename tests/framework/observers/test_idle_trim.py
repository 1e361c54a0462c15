import asyncio
from pathlib import Path

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection

from presence.framework.memory import can_release_freed_memory, release_freed_memory
from presence.framework.observers.idle_trim import IdleMemoryTrim


def pushed(frame) -> FramePushed:
    return FramePushed(source=None, destination=None, frame=frame,
                       direction=FrameDirection.DOWNSTREAM, timestamp=0)  # fmt: skip


async def test_a_quiet_spell_after_the_answer_trims_once_and_speech_calls_it_off():
    calls = []
    trim = IdleMemoryTrim(delay_s=0.05, trim=lambda: calls.append(1))
    await trim.on_push_frame(pushed(BotStoppedSpeakingFrame()))
    await asyncio.sleep(0.15)
    assert calls == [1] and trim.trims == 1
    # the user starts again before the delay: no trim in the middle of their turn
    await trim.on_push_frame(pushed(BotStoppedSpeakingFrame()))
    await trim.on_push_frame(pushed(VADUserStartedSpeakingFrame()))
    await asyncio.sleep(0.15)
    # the persona starts a second sentence right away: none either
    await trim.on_push_frame(pushed(BotStoppedSpeakingFrame()))
    await trim.on_push_frame(pushed(BotStartedSpeakingFrame()))
    await asyncio.sleep(0.15)
    assert calls == [1]


async def test_a_failing_trim_is_only_logged():
    def boom():
        raise OSError("no")

    trim = IdleMemoryTrim(delay_s=0.01, trim=boom)
    await trim.on_push_frame(pushed(BotStoppedSpeakingFrame()))
    await asyncio.sleep(0.1)
    assert trim.trims == 0


def _anonymous_mib() -> float:
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("RssAnon")).split()[1]) / 1024


@pytest.mark.skipif(not can_release_freed_memory(), reason="glibc only")
def test_freed_heap_memory_goes_back_to_the_system():
    # many small blocks (under the mmap threshold: from the heap), most freed, a few kept
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~190 MiB, touched (zeroed)
    kept = blocks[::100]
    del blocks
    before = _anonymous_mib()
    release_freed_memory()
    assert before - _anonymous_mib() > 100
    assert len(kept) == 30
