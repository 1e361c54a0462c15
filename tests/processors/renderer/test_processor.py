"""The renderer processor under pipecat's run_test: pairing, idle flow, interruption, drift."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from helpers.renderer_signals import speech_like
from pipecat.frames.frames import (
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStartedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework.frames import SpeechPauseFrame
from presence.processors.renderer.engines.still import StillEngine
from presence.processors.renderer.engines.warp import WarpEngine
from presence.processors.renderer.processor import RendererProcessor


def tts_frames(audio: np.ndarray, rate: int, chunk_s: float = 0.1, rng=None) -> list:
    frames, i = [], 0
    while i < audio.size:
        n = int(chunk_s * rate) if rng is None else int(rng.integers(50, int(chunk_s * rate)))
        frames.append(TTSAudioRawFrame(audio[i : i + n].tobytes(), rate, 1, context_id="c1"))
        i += n
    return frames


def audio_of(frames, cls=OutputAudioRawFrame) -> np.ndarray:
    parts = [np.frombuffer(f.audio, np.int16) for f in frames if isinstance(f, cls)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def periods(down) -> list[tuple[OutputImageRawFrame, list[OutputAudioRawFrame]]]:
    """Each pushed image with the audio frames that follow it (its period's audio)."""
    out = []
    for f in down:
        if isinstance(f, OutputImageRawFrame):
            out.append((f, []))
        elif isinstance(f, OutputAudioRawFrame) and out:
            out[-1][1].append(f)
    return out


def speaks(audio: list[OutputAudioRawFrame]) -> bool:
    return any(isinstance(a, TTSAudioRawFrame) for a in audio)


def assert_paired(down, engine, stats=None) -> None:
    """Every image carries exactly the samples of its period (none before the first image).

    A period is ``samples_in_frame(k)``, except where speech started inside an idle period: that
    idle frame is cut short (silence only, the next frame speaks) and the next idle frame carries
    the silence cut on top of its own, so no drift builds up. Speaking periods are never cut. Idle
    silence the sink filled in a dry gap (``stats.fills``, when given) counts as carried.
    """
    first = next(i for i, f in enumerate(down) if isinstance(f, OutputImageRawFrame))
    assert not any(isinstance(f, OutputAudioRawFrame) for f in down[:first])
    pairs = periods(down)
    filled: dict[int, int] = {}
    for frame, samples in stats.fills if stats is not None else ():
        filled[frame] = filled.get(frame, 0) + samples
    owed = 0
    for k, (_, audio) in enumerate(pairs):
        n, want = sum(a.num_frames for a in audio) + filled.get(k, 0), engine.samples_in_frame(k)
        if speaks(audio):
            assert n == want and all(isinstance(a, TTSAudioRawFrame) for a in audio), k
        elif k + 1 < len(pairs) and speaks(pairs[k + 1][1]) and n < want + owed:
            owed = want + owed - n  # cut short at a speech onset
        else:
            assert n == want + owed, k
            owed = 0


def mouth_box(replica, size):
    g = replica.geometry
    mx, my, mw = (v * size for v in (g["mouth"][0], g["mouth"][1], g["mouth_width"]))
    return slice(int(my - 0.3 * mw), int(my + 0.6 * mw)), slice(
        int(mx - 0.6 * mw), int(mx + 0.6 * mw)
    )


async def test_speech_frames_carry_their_audio_and_the_mouth_moves(replica):
    engine = WarpEngine(96, 25, 24000, seed=0)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    speech = speech_like(1.2, 24000)
    sent = [TTSStartedFrame(), *tts_frames(speech, 24000), TTSStoppedFrame(), SleepFrame(2.2)]
    down, _ = await run_test(proc, frames_to_send=sent)
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    assert_paired(
        down, engine, proc.stats
    )  # one image per period, each followed by exactly its audio
    assert all(f.sync_with_audio and f.size == (96, 96) for f in images)
    total = audio_of(down)
    assert total.size + proc.stats.filled == sum(
        engine.samples_in_frame(k) for k in range(len(images))
    )
    spoken = audio_of(down, TTSAudioRawFrame)
    assert np.array_equal(spoken[: speech.size], speech) and not spoken[speech.size :].any()
    # the transport hears "TTS stopped" only after the last word has left
    last_speech = max(i for i, f in enumerate(down) if isinstance(f, TTSAudioRawFrame))
    assert [i for i, f in enumerate(down) if isinstance(f, TTSStoppedFrame)][0] > last_speech
    # pixels: the mouth moves more while speaking than in the idle frames after
    box = mouth_box(replica, 96)
    talking = [
        i for i, (_, audio) in enumerate(periods(down))
        if any(isinstance(a, TTSAudioRawFrame) for a in audio)
    ]  # fmt: skip
    crops = np.stack(
        [np.frombuffer(f.image, np.uint8).reshape(96, 96, 3)[box] for f in images]
    ).astype(float)
    change = np.abs(np.diff(crops, axis=0)).mean(axis=(1, 2, 3))
    idle_from = talking[-1] + 6
    assert len(change) - idle_from > 10
    assert change[talking[0] : talking[-1]].mean() > 3 * change[idle_from:].mean()


async def test_idle_frames_flow_at_the_frame_rate_without_audio(replica):
    engine = StillEngine(32, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    down, _ = await run_test(proc, frames_to_send=[SleepFrame(1.0)])
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    assert 18 <= len(images) <= 32  # ~25 in one second of wall clock, whatever the load
    assert_paired(down, engine, proc.stats)
    silence = [f for f in down if isinstance(f, OutputAudioRawFrame)]
    assert not any(isinstance(f, TTSAudioRawFrame) for f in silence)  # not "bot speaking"
    assert not audio_of(down).any()


class SlowStillEngine(StillEngine):
    """A still engine whose every draw takes ``draw_s`` (a heavier renderer on a slow CPU)."""

    draw_s = 0.015

    def next_frames(self, *args, **kwargs):
        time.sleep(self.draw_s)
        return super().next_frames(*args, **kwargs)


async def test_a_slow_draw_does_not_stretch_idle_frames(replica):
    # Each idle frame is drawn while the previous one's silence still plays, so the output
    # never runs dry for a draw: idle audio keeps pace with the wall clock (a draw after the
    # audio ran out would stretch every 40 ms period by 15 ms: 73% of real time).
    engine = SlowStillEngine(32, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    started = time.monotonic()
    down, _ = await run_test(proc, frames_to_send=[SleepFrame(1.5)])
    elapsed = time.monotonic() - started
    assert_paired(down, engine, proc.stats)
    pushed_s = (audio_of(down).size + proc.stats.filled) / 24000
    assert pushed_s / elapsed > 0.88, (pushed_s, elapsed)


async def test_late_wake_ups_between_turns_do_not_stretch_idle_frames(replica):
    # A busy event loop wakes the clock late; the output runs dry and the sink plays silence of
    # its own meanwhile. The idle images must stay on the wall clock's grid (no image missing for
    # the user), and only silence is dropped: pushed plus filled audio still spans frames / fps.
    engine = StillEngine(32, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)

    async def hog():  # blocks the event loop 30 ms in every 90 ms (~0.6 s of the 2 s)
        for _ in range(22):
            await asyncio.sleep(0.06)
            time.sleep(0.03)

    started = time.monotonic()
    task = asyncio.ensure_future(hog())
    down, _ = await run_test(proc, frames_to_send=[SleepFrame(2.0)])
    await task
    elapsed = time.monotonic() - started
    images = [f for f in down if isinstance(f, OutputImageRawFrame)]
    assert_paired(down, engine, proc.stats)
    assert proc.stats.filled > 0  # the loop was late: silence was filled
    assert len(images) >= 0.88 * 25 * (elapsed - 0.1), (len(images), elapsed)  # was ~70%
    assert not audio_of(down).any()


async def test_interruption_stops_speech_within_one_frame(replica):
    engine = StillEngine(32, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    sent = [
        *tts_frames(speech_like(3.0, 24000), 24000),
        SleepFrame(0.4),
        InterruptionFrame(),
        UserStartedSpeakingFrame(),
        SleepFrame(0.4),
    ]
    down, _ = await run_test(proc, frames_to_send=sent)
    cut = next(i for i, f in enumerate(down) if isinstance(f, InterruptionFrame))
    after = [f for f in down[cut:] if isinstance(f, TTSAudioRawFrame)]
    assert len(after) <= 1  # at most the frame being drawn when the interruption came
    before = audio_of(down[:cut], TTSAudioRawFrame).size
    assert 0.2 * 24000 < before < 0.8 * 24000  # it had been speaking, in real time
    assert (
        len([f for f in down[cut:] if isinstance(f, OutputImageRawFrame)]) >= 6
    )  # face still live


async def test_a_pause_silences_speech_within_one_frame_and_it_goes_on_where_it_stopped(replica):
    engine = StillEngine(32, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    speech = speech_like(2.0, 24000)
    sent = [
        *tts_frames(speech, 24000),
        SleepFrame(0.3),
        SpeechPauseFrame(paused=True),
        SleepFrame(0.5),
        SpeechPauseFrame(paused=False),
    ]
    down, _ = await run_test(proc, frames_to_send=sent)  # EndFrame: the rest plays out
    start, end = (i for i, f in enumerate(down) if isinstance(f, SpeechPauseFrame))
    pause = periods(down[start:end])
    assert sum(speaks(audio) for _, audio in pause) <= 1  # the frame drawn when it came
    assert len(pause) >= 8  # the face stays live, listening, with silence
    assert not audio_of([a for _, audio in pause[1:] for a in audio]).any()
    assert audio_of(down[:start], TTSAudioRawFrame).size > 0.1 * 24000  # it had been speaking
    heard = audio_of(down, TTSAudioRawFrame)
    assert np.array_equal(heard[: speech.size], speech)  # nothing lost or said twice
    assert not heard[speech.size :].any()
    assert_paired(down, engine, proc.stats)
    assert proc.stats.pauses == 1


async def test_an_interruption_during_a_pause_drops_the_rest(replica):
    engine = StillEngine(32, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    sent = [
        *tts_frames(speech_like(2.0, 24000), 24000),
        SleepFrame(0.3),
        SpeechPauseFrame(paused=True),
        SleepFrame(0.2),
        InterruptionFrame(),
        SleepFrame(0.3),
    ]
    down, _ = await run_test(proc, frames_to_send=sent)
    start = next(i for i, f in enumerate(down) if isinstance(f, SpeechPauseFrame))
    assert len([f for f in down[start:] if isinstance(f, TTSAudioRawFrame)]) <= 1


async def test_zero_drift_over_ten_minutes_at_16k_30fps(replica):
    """600 s of audio in ragged chunks, offline: audio and video durations agree to the sample."""
    engine = StillEngine(16, 30, 16000)
    engine.prepare(replica)
    proc = RendererProcessor(engine, realtime=False, sync_with_audio=False)
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(600 * 16000) * 3000).astype(np.int16)
    sent = tts_frames(audio, 16000, chunk_s=1.0, rng=rng)
    down, _ = await run_test(proc, frames_to_send=sent)
    images = sum(isinstance(f, OutputImageRawFrame) for f in down)
    out = audio_of(down)
    assert images == 18000  # 600 s × 30 fps
    assert out.size == audio.size == images * 16000 // 30  # drift: 0 samples
    assert np.array_equal(out, audio)


async def test_other_sample_rates_are_resampled(replica):
    engine = StillEngine(16, 25, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine, realtime=False)
    down, _ = await run_test(proc, frames_to_send=tts_frames(speech_like(1.0, 16000), 16000))
    out = audio_of(down, TTSAudioRawFrame)
    assert abs(out.size - 24000) <= 960  # one frame of padding at most
    assert all(f.sample_rate == 24000 for f in down if isinstance(f, OutputAudioRawFrame))


@pytest.mark.parametrize("fps", [25, 30])
async def test_offline_frames_cover_all_audio(replica, fps):
    engine = StillEngine(16, fps, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine, realtime=False)
    speech = speech_like(2.05, 24000)
    down, _ = await run_test(
        proc, frames_to_send=[TTSStartedFrame(), *tts_frames(speech, 24000), TTSStoppedFrame()]
    )
    images = sum(isinstance(f, OutputImageRawFrame) for f in down)
    assert images == int(np.ceil(speech.size * fps / 24000))
    assert isinstance(down[-1], TTSStoppedFrame)


async def test_speech_from_idle_starts_without_waiting_for_the_frame_boundary(replica):
    """At 5 fps a boundary wait would average 100 ms; speech must leave within a fraction of it."""
    engine = StillEngine(16, 5, 24000)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    speech = speech_like(0.3, 24000)
    sent = []
    for pause in (0.43, 0.37, 0.51):  # three phases against the 200 ms frame grid
        sent += [SleepFrame(pause), TTSStartedFrame(), *tts_frames(speech, 24000, 0.3)]
        sent += [TTSStoppedFrame(), SleepFrame(0.6)]
    down, _ = await run_test(proc, frames_to_send=sent)
    assert_paired(down, engine, proc.stats)  # every period still exactly 1/fps of audio: zero drift
    assert np.array_equal(audio_of(down, TTSAudioRawFrame)[: speech.size], speech)
    assert len(proc.stats.first_speech_latency_s) == 3
    assert max(proc.stats.first_speech_latency_s) < 0.25 / engine.fps  # not the 0-200 ms wait
    assert proc.stats.cut >= 1  # speech started inside an idle frame's period at least once


async def test_the_first_speech_sample_goes_out_with_a_speaking_mouth(replica):
    """Speech starting inside an idle period is never heard under the idle face."""
    engine = WarpEngine(64, 5, 24000, seed=0)  # 200 ms periods: onsets land inside them
    engine.prepare(replica)
    proc = RendererProcessor(engine, keep_images=True)
    speech = speech_like(0.4, 24000, seed=3)
    sent = []
    for pause in (0.43, 0.37, 0.51):  # three phases against the frame grid
        chunks = tts_frames(speech, 24000, 0.2)
        chunks[0].metadata["visemes"] = [(0.0, "open", "a")]
        sent += [SleepFrame(pause), TTSStartedFrame(), *chunks, TTSStoppedFrame(), SleepFrame(1.4)]
    down, _ = await run_test(proc, frames_to_send=sent)
    assert_paired(
        down, engine, proc.stats
    )  # the cut idle frames' silence is carried later: no drift
    assert np.array_equal(audio_of(down, TTSAudioRawFrame)[: speech.size], speech)
    assert proc.stats.cut >= 1  # at least one onset fell inside an idle period
    pairs = periods(down)
    assert len(proc.mouth_trace) == len(pairs)
    for k, (_, audio) in enumerate(pairs):  # no speech sample is pushed with an idle image
        assert proc.mouth_trace[k][1] == speaks(audio), k
    onsets = [
        k for k in range(1, len(pairs)) if speaks(pairs[k][1]) and not speaks(pairs[k - 1][1])
    ]
    assert len(onsets) == 3
    # pixels: against the idle face at the same instants (a twin engine fed no speech), the mouth
    # of each first speaking image has moved; the idle image just before it had not
    twin = WarpEngine(64, 5, 24000, seed=0)
    twin.prepare(replica)
    idle = [f.image for f in twin.next_frames(len(pairs))]
    box = mouth_box(replica, 64)

    def moved(k: int) -> float:
        shown = np.frombuffer(pairs[k][0].image, np.uint8).reshape(64, 64, 3)[box]
        return float(np.abs(shown.astype(float) - idle[k][box]).mean())

    print([(k, proc.mouth_trace[k], moved(k - 1), moved(k)) for k in onsets])
    for k in onsets:
        assert proc.mouth_trace[k][0] > 0.3  # drawn with the mouth open
        assert moved(k) > 3 * moved(k - 1) + 1.0


class FailingWarp(WarpEngine):
    """A warp engine whose drawing breaks for good after ``good`` frames (a GPU lost, a bug)."""

    def __init__(self, *args, good: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.good = good

    def _draw(self, state):
        if state.index >= self.good:
            raise RuntimeError("CUDA error: device lost")
        return super()._draw(state)


async def test_an_engine_that_raises_shows_the_still_portrait_and_the_voice_goes_on(replica):
    from pipecat.frames.frames import ErrorFrame

    from presence.processors.renderer.engines.layout import fit_portrait

    engine = FailingWarp(96, 25, 24000, good=10)
    engine.prepare(replica)
    proc = RendererProcessor(engine)
    speech = speech_like(1.2, 24000)
    sent = [TTSStartedFrame(), *tts_frames(speech, 24000), TTSStoppedFrame(), SleepFrame(2.0)]
    down, up = await run_test(proc, frames_to_send=sent)
    images = [np.frombuffer(f.image, np.uint8) for f in down if isinstance(f, OutputImageRawFrame)]
    still = fit_portrait(replica.neutral, 96, 96).reshape(-1)
    assert len(images) > 40  # frames kept flowing at the frame rate after the failure
    assert not np.array_equal(images[0], still)  # drawn by the warp engine before it broke
    assert all(np.array_equal(i, still) for i in images[12:])
    assert_paired(down, engine, proc.stats)  # each frame still carries exactly its audio: no drift
    spoken = audio_of(down, TTSAudioRawFrame)
    assert np.array_equal(spoken[: speech.size], speech)  # every word was played
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert len(errors) == 1 and not errors[0].fatal
    assert "renderer warp failed" in errors[0].error and "still portrait" in errors[0].error
    assert isinstance(engine.failure, RuntimeError)
