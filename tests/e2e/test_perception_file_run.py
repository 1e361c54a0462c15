"""Perception end to end: a camera clip beside the WAV, the analysis lands in the run's JSON."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import av
import numpy as np
from helpers.speech import synthesize

from presence.benchmarks.perception import scripted_clip
from presence.framework.config import load_pipeline
from presence.transports.file.session import run_file_session

REPO = Path(__file__).resolve().parents[2]


def write_y4m(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


async def test_camera_clip_gives_presence_then_absence_in_the_analysis(tmp_path):
    fps = 10
    frames, segments = scripted_clip((("present", 3.0), ("absent", 3.0)), fps=fps, size=(320, 240))
    camera = write_y4m(tmp_path / "cam.y4m", frames, fps)
    audio, rate = synthesize("hello")
    pcm = np.concatenate([np.zeros(rate // 2, np.int16), audio, np.zeros(rate * 5, np.int16)])
    wav = tmp_path / "q.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    loaded = load_pipeline(
        REPO / "pipelines/local.yaml", ["stages.perception={provider: opencv, every_ms: 200}"]
    )
    report = await run_file_session(loaded, wav, tmp_path / "a.mp4", camera=camera, fast=True)
    analysis = report["perception"]
    assert analysis, "the perception analysis is written into the JSON"
    assert json.dumps(analysis)  # serialisable as it is
    # the clip shows the face for the first half: present early, absent after the switch at 3 s
    events = [(m["event"], m["t"]) for m in analysis["moments"]]
    kinds = [e for e, _ in events]
    assert kinds.index("user_present") < kinds.index("user_absent")
    present_at = dict(events)["user_present"]
    absent_at = dict(events)["user_absent"]
    assert present_at < 1.5 and 3.0 <= absent_at < 4.5, events
    assert 30 <= analysis["presence_pct"] <= 75, analysis["presence_pct"]
    assert analysis["left_frame"] == 1


async def test_black_camera_mid_call_is_absence_not_presence(tmp_path):
    """A face for 5 s, 5 s of black, the face again: as `presence run --camera` reports it."""
    fps = 10
    script = (("present", 5.0), ("dark", 5.0), ("present", 5.0))
    frames, _ = scripted_clip(script, fps=fps, size=(320, 240))
    camera = write_y4m(tmp_path / "cam.y4m", frames, fps)
    audio, rate = synthesize("hello")
    pcm = np.concatenate([np.zeros(rate // 2, np.int16), audio, np.zeros(rate * 15, np.int16)])
    wav = tmp_path / "q.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    loaded = load_pipeline(REPO / "pipelines/local.yaml", ["stages.perception.provider=opencv"])
    report = await run_file_session(loaded, wav, tmp_path / "a.mp4", camera=camera, fast=True)
    analysis = report["perception"]
    moments = [(m["event"], m["t"]) for m in analysis["moments"]]
    presence = [(e, t) for e, t in moments if e in ("user_present", "user_absent")]
    assert [e for e, _ in presence] == ["user_present", "user_absent", "user_present"], moments
    assert 5.0 <= presence[1][1] < 6.5 and 10.0 <= presence[2][1] < 11.5, presence
    assert analysis["left_frame"] == 1
    assert [m.get("reason") for m in analysis["moments"] if m["event"] == "user_absent"] == [
        "too_dark"
    ]
    # about a third of the call could not be judged; that third is not counted as presence
    assert 55 <= analysis["presence_pct"] <= 75, analysis
    assert 25 <= analysis["unjudgeable_pct"] <= 45, analysis
    assert analysis["unjudgeable_s"]["too_dark"] >= 4.0
    assert analysis["absent_pct"] == 0.0
