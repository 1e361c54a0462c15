"""The soak call: a pipeline served over WebRTC, a Python WebRTC user asking questions in a loop.

``arun_soak`` serves the pipeline on a loopback port exactly as ``presence run`` does (one session
per connection, greeting on connect), joins it with ``presence.transports.webrtc.client.WebRTCUser``
and, for ``minutes``, speaks the conversation benchmark's questions in turn, each in real time,
waiting until the persona has answered (as many RTVI ``bot-stopped-speaking`` as
``bot-started-speaking`` since the question began) and stayed quiet ``gap_s`` before the next.
Every ``sample_s`` a ``Sampler`` reads memory, fds, threads, tasks, the renderer's lateness and
drift, and what the user received. The first sample is taken at time zero plus one second (the
warm-up second of the frame verdict).

Each later sample is taken at the first quiet moment at or after its due time (the persona has
answered and ``QUIET_S`` of silence passed; the next question not yet begun), at most
``QUIET_WAIT_S`` late: memory, threads and tasks are then compared at the same point of the
conversation, so a turn's buffers, decoder threads and tasks in flight are not read as growth or
loss. ``Sample.quiet`` says whether a sample found that moment. One sample per quiet moment: a
sample due while the moment its predecessor used still lasts waits for the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.transports.smallwebrtc.transport import SmallWebRTCOutputTransport

from presence.benchmarks.conversation.questions import load_questions, render, select
from presence.benchmarks.soak.sampler import Sample, Sampler
from presence.framework.config import LoadedPipeline, load_pipeline
from presence.framework.errors import PresenceError
from presence.framework.observers.idle_trim import IdleMemoryTrim

ANSWER_TIMEOUT_S = 45.0
QUIET_S = 1.0  # silence after an answer that makes a quiet moment to sample in
QUIET_WAIT_S = 30.0  # a sample waits at most this long after its due time for a quiet moment
CONNECT_TIMEOUT_S = 90.0


class SoakError(PresenceError):
    """The soak cannot run as asked (a transport other than WebRTC, a bound not positive)."""


async def _ask(call: Any, pcm: Any, gap_s: float, quiet: asyncio.Event) -> dict[str, Any]:
    """Say one question, wait until the persona's answer ends and ``gap_s`` passes in silence.

    ``quiet`` is cleared while the question and its answer run, and set once the persona has
    been silent ``QUIET_S`` (or ``gap_s``, if shorter) after answering.
    """
    quiet.clear()
    mark = len(call.user.received.messages)
    started = time.monotonic()
    spoke = call.user.say(pcm)
    await asyncio.sleep(spoke)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        began = len(call.messages("bot-started-speaking", mark))
        ended = len(call.messages("bot-stopped-speaking", mark))
        if began and ended >= began:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= min(QUIET_S, gap_s):
                quiet.set()
            if time.monotonic() - quiet_since >= gap_s:
                break
        else:
            quiet_since = None
        await asyncio.sleep(0.1)
    said = " ".join(m.get("data", {}).get("text", "") for m in call.messages("bot-output", mark))
    return {
        "t": round(started, 2),
        "spoke_s": round(spoke, 2),
        "answered": bool(said.strip()),
        "seconds": round(time.monotonic() - started, 2),
        "replies": len(call.messages("bot-started-speaking", mark)),
        "errors": len(call.messages("error", mark)),
    }


async def arun_soak(
    loaded: LoadedPipeline,
    *,
    minutes: float,
    sample_s: float = 60.0,
    gap_s: float = 2.0,
    questions: int = 6,
    on_sample: Callable[[Sample], None] | None = None,
) -> dict[str, Any]:
    """Hold one call for ``minutes`` and sample it every ``sample_s`` (see module doc).

    Returns:
        ``{"samples": [...], "asked": [...], "seconds": ..., "fps": ..., "size": ...}``.

    Raises:
        CallError: The call did not start (no session or no video within 90 s).
    """
    from presence.transports.webrtc.client import read_wav
    from presence.transports.webrtc.loopback import local_call

    chosen = select(load_questions(), limit=questions)
    speech = [read_wav(render(q).path) for q in chosen]
    async with local_call(loaded, connect_timeout_s=CONNECT_TIMEOUT_S) as call:
        result = await _hold(call, chosen, speech, minutes, sample_s, gap_s, on_sample)
    logger.info("soak call ended")
    return result


async def _hold(call, chosen, speech, minutes, sample_s, gap_s, on_sample) -> dict[str, Any]:
    """The question loop and the sampling, inside a started call."""
    samples: list[Sample] = []
    asked: list[dict[str, Any]] = []
    user, start = call.user, call.started
    user.received.keep_audio = False  # the user shares the process: keep its memory bounded
    end = start + minutes * 60.0
    renderer = call.session.stages["renderer"]
    await asyncio.sleep(1.0)  # the warm-up second
    trim = next((o for o in call.session.observers if isinstance(o, IdleMemoryTrim)), None)
    output = next(
        (
            p
            for p in call.session.pipeline.processors
            if isinstance(p, SmallWebRTCOutputTransport)  # pipecat's, or presence's windowed
        ),
        None,
    )
    sampler = Sampler(renderer, user.received, start, trim, output)
    quiet = asyncio.Event()

    async def sample_loop() -> None:
        samples.append(sampler.sample())  # the warm-up second: whatever the call is doing
        slot = 0
        while True:
            if on_sample:
                on_sample(samples[-1])
            # the next due time not yet passed (a sample that waited for quiet skips slots)
            slot = max(slot + 1, int((time.monotonic() - start - 1.0) // sample_s) + 1)
            await asyncio.sleep(max(0.0, start + 1.0 + slot * sample_s - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(quiet.wait(), QUIET_WAIT_S)
            samples.append(sampler.sample(quiet=quiet.is_set()))
            while quiet.is_set():  # one sample per quiet moment: the next waits for a new one
                await asyncio.sleep(0.05)

    sampling = asyncio.create_task(sample_loop())
    with contextlib.suppress(TimeoutError):  # wait out the greeting
        await call.wait_for("bot-stopped-speaking", timeout=20.0)
    k = 0
    try:
        while time.monotonic() < end - 1.0:
            remaining = end - time.monotonic()
            ask = _ask(call, speech[k % len(speech)], gap_s, quiet)
            try:
                row = await asyncio.wait_for(ask, remaining)
            except TimeoutError:
                break
            sampler.questions += 1
            sampler.answers += row["answered"]
            row.update(id=chosen[k % len(chosen)].id, t=round(row["t"] - start, 2))
            asked.append(row)
            user.received.forget(time.monotonic() - 5.0)
            k += 1
        await asyncio.sleep(max(0.0, end - time.monotonic()))
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    samples.append(sampler.sample(quiet=quiet.is_set()))
    sampler.close()
    if on_sample:
        on_sample(samples[-1])
    engine = renderer.engine
    return {
        "samples": [s.as_dict() for s in samples],
        "asked": asked,
        "repeats": [
            {"t": round(t - start, 2), "speaking": speaking}
            for t, speaking in renderer.stats.repeats
            if t - start >= 1.0
        ],
        "seconds": round(time.monotonic() - start, 1),
        "fps": engine.fps,
        "size": [engine.width, engine.height],
        "sample_rate": engine.sample_rate,
    }


def run_soak(
    pipeline_path: str | Path,
    overrides: list[str] | None = None,
    *,
    minutes: float,
    sample_s: float = 60.0,
    gap_s: float = 2.0,
    questions: int = 6,
    on_sample: Callable[[Sample], None] | None = None,
) -> tuple[LoadedPipeline, dict[str, Any]]:
    """Load the pipeline and run ``arun_soak`` in a fresh event loop."""
    loaded = load_pipeline(pipeline_path, overrides or [])
    kind = getattr(loaded.transport, "kind", None)
    if kind != "webrtc":
        raise SoakError(
            f"the soak call runs over WebRTC; this pipeline's transport is {kind!r}: "
            "add --set transport.kind=webrtc"
        )
    coro = arun_soak(
        loaded,
        minutes=minutes,
        sample_s=sample_s,
        gap_s=gap_s,
        questions=questions,
        on_sample=on_sample,
    )
    return loaded, asyncio.run(coro)


def run_soak_benchmark(
    pipeline_path: str | Path,
    overrides: list[str] | None = None,
    *,
    minutes: float = 30.0,
    sample_s: float = 60.0,
    warmup_s: float = 60.0,
    gap_s: float = 2.0,
    questions: int = 6,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    command: str | None = None,
    on_sample: Callable[[Sample], None] | None = None,
) -> dict[str, Any]:
    """Run the soak call, judge it against the targets, write the JSON and PNG.

    Args:
        pipeline_path: A pipeline whose transport is ``webrtc``.
        overrides: ``PATH=VALUE`` overrides.
        minutes: How long the call is held (fractions allowed).
        sample_s: Seconds between samples.
        warmup_s: Samples before this (seconds into the call) are left out of the flatness verdict.
        gap_s: Silence after each answer before the next question.
        questions: How many of the conversation benchmark's questions are looped.
        json_path: Write the report here.
        plot_path: Write the PNG here.
        command: The command line, recorded in the report.
        on_sample: Called with each sample as it is taken.

    Returns:
        The report: ``samples``, ``asked``, ``verdicts``, the pipeline's providers, the machine.
    """
    from presence.benchmarks.conversation.runner import providers
    from presence.benchmarks.soak import report

    if minutes <= 0 or sample_s <= 0:
        raise SoakError("--minutes and --sample-s must be positive")
    loaded, result = run_soak(
        pipeline_path,
        overrides,
        minutes=minutes,
        sample_s=sample_s,
        gap_s=gap_s,
        questions=questions,
        on_sample=on_sample,
    )
    result = {
        "pipeline": loaded.spec.name,
        "overrides": overrides or [],
        "command": command,
        "minutes": minutes,
        "sample_s": sample_s,
        "providers": providers(loaded),
        "machine": report.machine(),
        "method": report.METHOD,
        **result,
    }
    result["verdicts"] = report.verdicts(result, warmup_s)
    if json_path:
        report.write_json(result, json_path)
    if plot_path:
        report.plot(result, plot_path)
    return result
