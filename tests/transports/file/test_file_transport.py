"""The file transport end to end: a WAV in, through a tiny pipecat pipeline, an MP4 + JSON out."""

from __future__ import annotations

import asyncio
import json
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    OutputImageRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserImageRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from presence.framework.errors import InputError
from presence.transports.file import FileTransport

IN_RATE, OUT_RATE, FPS = 16000, 24000, 25
SPEECH_START, SPEECH_LEN, TAIL = 0.3, 0.8, 0.6
REPLY_S = 1.0
STOP_AFTER_S = 0.2  # the fake "VAD" closes the turn after this much silence


def write_wav(path: Path, pcm: np.ndarray, rate: int = IN_RATE, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())
    return path


def question_wav(path: Path) -> Path:
    t = np.arange(int((SPEECH_START + SPEECH_LEN + TAIL) * IN_RATE)) / IN_RATE
    speech = (t >= SPEECH_START) & (t < SPEECH_START + SPEECH_LEN)
    return write_wav(path, np.where(speech, 8000 * np.sin(2 * np.pi * 300 * t), 0))


class Responder(FrameProcessor):
    """Answers one user turn: energy in, then a tone with one image per 1/fps before its audio."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.speaking, self.silent, self.answered = False, 0.0, False
        self.images_seen = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, UserImageRawFrame):
            self.images_seen += 1
        if isinstance(frame, InputAudioRawFrame) and not self.answered:
            loud = np.abs(np.frombuffer(frame.audio, np.int16)).max() > 1000
            if loud and not self.speaking:
                self.speaking = True
                await self.broadcast_frame(VADUserStartedSpeakingFrame)
                await self.broadcast_frame(UserStartedSpeakingFrame)
            elif self.speaking and not loud:
                self.silent += frame.num_frames / frame.sample_rate
                if self.silent >= STOP_AFTER_S - 1e-9:
                    self.answered = True
                    await self.broadcast_frame(VADUserStoppedSpeakingFrame, stop_secs=STOP_AFTER_S)
                    await self.push_frame(TranscriptionFrame("what is presence", "user", ""))
                    await self.broadcast_frame(UserStoppedSpeakingFrame)
                    await self._answer()
        await self.push_frame(frame, direction)

    async def _answer(self):
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame("A framework."))
        await self.push_frame(TTSStartedFrame())
        per = OUT_RATE // FPS
        for k in range(int(REPLY_S * FPS)):
            level = 40 + 8 * k
            image = np.full((64, 64, 3), level, np.uint8)
            await self.push_frame(OutputImageRawFrame(image.tobytes(), (64, 64), "RGB"))
            t = (np.arange(per) + k * per) / OUT_RATE
            tone = (10000 * np.sin(2 * np.pi * 880 * t)).astype(np.int16)
            await self.push_frame(TTSAudioRawFrame(tone.tobytes(), OUT_RATE, 1))
        await self.push_frame(TTSTextFrame("A framework.", "sentence"))
        await self.push_frame(TTSStoppedFrame())
        await self.push_frame(LLMFullResponseEndFrame())


async def run_session(transport: FileTransport, responder: FrameProcessor | None = None):
    chain = [transport.input()] + ([responder] if responder else []) + [transport.output()]
    worker = PipelineWorker(
        Pipeline(chain),
        params=PipelineParams(audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE),
        observers=[transport.observer],
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def read_mp4(path: Path) -> tuple[np.ndarray, list[np.ndarray], float]:
    with av.open(str(path)) as c:
        assert c.streams.audio and c.streams.video, "MP4 needs an audio and a video stream"
        audio = [f.to_ndarray().reshape(-1) for f in c.decode(audio=0)]
    with av.open(str(path)) as c:
        rate = float(c.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.concatenate(audio), frames, rate


def rms_track(audio: np.ndarray, rate: int, window_s: float = 0.02) -> np.ndarray:
    n = int(rate * window_s)
    usable = len(audio) // n * n
    return np.sqrt((audio[:usable].reshape(-1, n).astype(np.float64) ** 2).mean(axis=1))


async def test_fast_session_writes_synced_mp4_and_report(tmp_path):
    transport = FileTransport(
        question_wav(tmp_path / "q.wav"),
        tmp_path / "out" / "reply.mp4",
        width=64,
        height=64,
        fps=FPS,
        fast=True,
        end_grace_s=0.4,
        max_tail_s=10,
    )
    await run_session(transport, Responder())

    audio, frames, fps = read_mp4(tmp_path / "out" / "reply.mp4")
    assert fps == FPS
    audio_s, video_s = len(audio) / OUT_RATE, len(frames) / fps
    assert abs(audio_s - video_s) <= 1 / fps + 1024 / OUT_RATE
    # The reply tone sits after the user's speech ended, where a listener would hear it.
    loud = rms_track(audio, OUT_RATE) > 0.05 * np.abs(audio).max()
    onset = np.argmax(loud) * 0.02
    speech_end = SPEECH_START + SPEECH_LEN
    assert speech_end + STOP_AFTER_S - 0.02 <= onset <= speech_end + STOP_AFTER_S + 0.3
    assert loud.sum() * 0.02 == pytest.approx(REPLY_S, abs=0.06)
    assert not loud[: int(speech_end / 0.02)].any()
    # Video: black before the reply, then image k during audio period k (within one frame).
    levels = np.array([f.mean() for f in frames])
    first = int(np.argmax(levels > 20))
    assert levels[: max(first - 1, 0)].max() < 10
    assert abs(first / fps - onset) <= 1 / fps + 0.02
    for k in (0, 5, 12, 20):
        assert levels[first + k] == pytest.approx(40 + 8 * k, abs=4)

    report = json.loads((tmp_path / "out" / "reply.json").read_text())
    assert [t["role"] for t in report["turns"]] == ["user", "assistant"]
    assert report["turns"][0]["content"] == "what is presence"
    assert report["turns"][1]["content"] == "A framework."
    timing = report["timings"][0]
    assert timing["user_stopped_speaking_ms"] == pytest.approx(speech_end * 1000, abs=60)
    assert timing["bot_started_speaking_ms"] == pytest.approx(onset * 1000, abs=60)
    assert timing["voice_to_voice_ms"] > 0
    assert report["session"]["end_reason"] == "completed"
    assert report["output"]["video_frames"] == len(frames)
    assert report["input"]["duration_s"] == pytest.approx(SPEECH_START + SPEECH_LEN + TAIL)


async def test_without_images_the_mp4_still_has_black_video_as_long_as_the_audio(tmp_path):
    wav = write_wav(tmp_path / "silence.wav", np.zeros(IN_RATE // 2))
    transport = FileTransport(
        wav, tmp_path / "s.mp4", width=32, height=32, fps=FPS, fast=True, end_grace_s=0.2
    )
    await run_session(transport)
    audio, frames, fps = read_mp4(tmp_path / "s.mp4")
    assert frames and max(f.max() for f in frames) < 10
    assert abs(len(audio) / OUT_RATE - len(frames) / fps) <= 1 / fps + 1024 / OUT_RATE
    assert len(frames) / fps >= 0.5 + 0.2 - 1 / fps
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["turns"] == [] and report["session"]["end_reason"] == "completed"


async def test_a_run_always_ends_at_the_max_duration(tmp_path):
    wav = write_wav(tmp_path / "q.wav", np.full(IN_RATE // 4, 5000))
    transport = FileTransport(
        wav, tmp_path / "m.mp4", width=32, height=32, fast=True, end_grace_s=5, max_tail_s=0.3
    )
    # A user turn that never gets an answer keeps the session "busy" until the cap.
    responder = Responder()
    responder._answer = _no_answer
    await run_session(transport, responder)
    report = json.loads((tmp_path / "m.json").read_text())
    assert report["session"]["end_reason"] == "max_duration"
    assert report["session"]["media_duration_s"] == pytest.approx(0.55, abs=0.05)


async def _no_answer():
    return None


async def test_camera_clip_is_pushed_as_user_video(tmp_path):
    clip = tmp_path / "cam.y4m"
    with av.open(str(clip), "w") as c:
        s = c.add_stream("rawvideo", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 50 * i, np.uint8), format="rgb24")
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    wav = write_wav(tmp_path / "q.wav", np.zeros(IN_RATE))
    transport = FileTransport(
        wav, tmp_path / "c.mp4", camera=clip, width=32, height=32, fast=True, end_grace_s=0.1
    )
    responder = Responder()
    await run_session(transport, responder)
    assert responder.images_seen == 5


def test_bad_inputs_are_refused_with_the_reason(tmp_path):
    not_wav = tmp_path / "notes.wav"
    not_wav.write_text("hello")
    with pytest.raises(InputError, match="not audio presence can read"):
        FileTransport(not_wav, tmp_path / "o.mp4")
    with pytest.raises(InputError, match="must end in .mp4"):
        FileTransport(question_wav(tmp_path / "q.wav"), tmp_path / "o.avi")
    with pytest.raises(InputError, match="camera clip not found"):
        FileTransport(question_wav(tmp_path / "q.wav"), tmp_path / "o.mp4", camera="nope.y4m")


async def test_fast_and_real_time_runs_put_the_reply_at_the_same_place(tmp_path):
    results = {}
    for fast in (True, False):
        out = tmp_path / f"fast_{fast}.mp4"
        transport = FileTransport(
            question_wav(tmp_path / "q.wav"), out, width=32, height=32, fast=fast, end_grace_s=0.2
        )
        started = time.monotonic()
        await run_session(transport, Responder())
        wall = time.monotonic() - started
        audio, frames, fps = read_mp4(out)
        loud = rms_track(audio, OUT_RATE) > 0.05 * np.abs(audio).max()
        timing = json.loads(out.with_suffix(".json").read_text())["timings"][0]
        results[fast] = (np.argmax(loud) * 0.02, loud.sum() * 0.02, timing, wall)
    (on_f, len_f, t_f, wall_f), (on_r, len_r, t_r, wall_r) = results[True], results[False]
    assert on_f == pytest.approx(on_r, abs=0.08)
    assert len_f == pytest.approx(len_r, abs=0.04)
    assert t_f["voice_to_voice_ms"] == pytest.approx(t_r["voice_to_voice_ms"], abs=80)
    assert wall_f < 0.7 * wall_r


class StallingResponder(Responder):
    """Like ``Responder``, but its output goes dry for ~60 ms right before the answer's first image
    (an event loop busy at the turn's end), after idle frames of image + silence."""

    async def _answer(self):
        per = OUT_RATE // FPS
        for _ in range(5):  # 0.2 s of idle frames, queued at once
            await self.push_frame(OutputImageRawFrame(bytes(64 * 64 * 3), (64, 64), "RGB"))
            await self.push_frame(OutputAudioRawFrame(bytes(2 * per), OUT_RATE, 1))
        await asyncio.sleep(0.2 + 0.06)
        await super()._answer()


async def test_speech_after_a_stall_starts_with_its_image_not_ahead_of_it(tmp_path):
    out = tmp_path / "stall.mp4"
    transport = FileTransport(question_wav(tmp_path / "q.wav"), out, width=32, height=32,
                              end_grace_s=0.2)  # fmt: skip
    await run_session(transport, StallingResponder())
    start = json.loads(out.with_suffix(".json").read_text())["output"]["speech_starts"][0]
    assert start["audio_s"] == pytest.approx(start["image_s"], abs=0.011)  # one 10 ms chunk
    audio, frames, fps = read_mp4(out)
    onset = np.argmax(rms_track(audio, OUT_RATE, 0.01) > 0.05 * np.abs(audio).max()) * 0.01
    first_bright = next(i for i, f in enumerate(frames) if f.mean() > 20) / fps
    assert abs(onset - first_bright) <= 1 / fps + 0.011  # lips and voice start together
