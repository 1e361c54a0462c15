"""Haar engine + tracker on a real face (NASA portrait) animated into a scripted clip."""

from __future__ import annotations

import numpy as np
import pytest

from presence.benchmarks.perception import scripted_clip
from presence.processors.perception.engines.events import PerceptionTracker, summary_text
from presence.processors.perception.engines.opencv import FaceBox, HaarEngine, Observation, to_rgb

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def engine() -> HaarEngine:
    return HaarEngine()


def run_clip(engine: HaarEngine, script, every_s: float = 0.2, fps: int = 25):
    frames, segments = scripted_clip(script, fps=fps)
    tracker = PerceptionTracker()
    step = round(every_s * fps)
    events = []
    for i in range(0, len(frames), step):
        obs = engine.analyze(frames[i], search_profile=tracker.state("present") is not False)
        events += tracker.update(i / fps, obs)
    return events, segments, tracker


def test_engine_finds_the_portrait_face_centred_and_frontal(engine):
    frames, _ = scripted_clip((("present", 0.04), ("absent", 0.04), ("side", 0.04)))
    present, absent, side = (engine.analyze(f) for f in frames)
    assert present.face is not None and present.frontal
    assert abs(present.face.cx - 0.5) < 0.1
    assert present.eyes >= 1
    assert absent.face is None
    assert side.face is not None and side.face.cx < 0.25


def test_clip_gives_present_absent_looking_away_in_order_with_timestamps(engine):
    events, segments, _ = run_clip(engine, (("present", 3.0), ("absent", 3.0), ("side", 3.0)))
    timeline = [
        (e.kind, e.t)
        for e in events
        if e.kind in ("user_present", "user_absent", "attending", "looking_away")
    ]
    kinds = [k for k, _ in timeline]
    assert kinds == ["user_present", "attending", "user_absent", "user_present", "looking_away"]
    bounds = {kind: (start, end) for kind, start, end in segments}
    lag = 1.2  # the debouncing window plus one sample
    for (kind, t), segment in zip(
        timeline, ["present", "present", "absent", "side", "side"], strict=True
    ):
        start, _ = bounds[segment]
        assert start <= t <= start + lag, (kind, t, segment)


def test_no_face_reads_absent_from_the_start(engine):
    events, _, tracker = run_clip(engine, (("absent", 2.0),))
    assert [e.kind for e in events] == ["user_absent"]
    assert tracker.state("present") is False
    assert "not visible" in summary_text(tracker, 2.0)


def absences(events):
    return [(e.t, e.detail.get("reason")) for e in events if e.kind == "user_absent"]


def test_black_frames_read_absent_because_too_dark_then_present_when_the_face_returns(engine):
    events, segments, _ = run_clip(engine, (("present", 2.0), ("dark", 2.0), ("present", 2.0)))
    presence = [e.kind for e in events if e.kind in ("user_present", "user_absent")]
    assert presence == ["user_present", "user_absent", "user_present"]
    ((absent_at, reason),) = absences(events)
    assert reason == "too_dark"
    dark_start, dark_end = segments[1][1], segments[1][2]
    assert dark_start <= absent_at <= dark_start + 1.2
    back = [e.t for e in events if e.kind == "user_present"][1]
    assert dark_end <= back <= dark_end + 1.2
    assert "too_dark" in [e.kind for e in events]


def test_black_camera_summary_says_the_user_cannot_be_seen(engine):
    _, _, tracker = run_clip(engine, (("present", 2.0), ("dark", 2.0)))
    assert tracker.state("present") is False and tracker.absent_reason == "too_dark"
    text = summary_text(tracker, 4.0)
    assert "too dark" in text and "not visible" in text and "on camera," not in text


def test_covered_lens_reads_absent_because_covered(engine):
    events, _, tracker = run_clip(engine, (("present", 2.0), ("covered", 2.0)))
    assert [r for _, r in absences(events)] == ["covered"]
    assert "too_dark" not in [e.kind for e in events]  # a lit, featureless image is not dark
    assert "camera seems covered" in summary_text(tracker, 4.0)


def test_no_camera_frames_read_absent_because_no_camera():
    tracker = PerceptionTracker()
    seen = Observation(FaceBox(0.35, 0.3, 0.3, 0.4), frontal=True, eyes=2, luma=120)
    events = []
    for i in range(20):
        events += tracker.update(i * 0.2, seen if i < 8 else None)  # the camera stops at 1.6 s
    assert [e.kind for e in events if e.kind.startswith("user_")] == ["user_present", "user_absent"]
    assert [r for _, r in absences(events)] == ["no_camera"]
    assert "no camera frames" in summary_text(tracker, 4.0)


def test_an_empty_room_reads_absent_because_no_face(engine):
    events, _, _ = run_clip(engine, (("present", 2.0), ("absent", 2.0)))
    assert [r for _, r in absences(events)] == ["no_face"]


def test_head_bobbing_reads_as_nod_not_shake(engine):
    events, _, _ = run_clip(engine, (("present", 1.0), ("nod", 3.0)), every_s=0.08)
    kinds = [e.kind for e in events]
    assert "nod" in kinds
    assert "shake" not in kinds


def test_one_missed_detection_does_not_flicker():
    tracker = PerceptionTracker()
    face = FaceBox(0.35, 0.3, 0.3, 0.4)
    seen = Observation(face, frontal=True, eyes=2, luma=120)
    missed = Observation(None, luma=120)
    events = []
    for i in range(30):
        events += tracker.update(i * 0.2, missed if i in (12, 20, 21) else seen)
    assert [e.kind for e in events] == ["user_present", "attending"]


def test_to_rgb_accepts_common_formats_and_rejects_wrong_sizes():
    rgb = np.arange(4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 3)
    assert np.array_equal(to_rgb(rgb.tobytes(), (4, 2), "RGB"), rgb)
    assert np.array_equal(to_rgb(rgb[:, :, ::-1].tobytes(), (4, 2), "BGR"), rgb)
    rgba = np.dstack([rgb, np.full((2, 4), 255, np.uint8)])
    assert np.array_equal(to_rgb(rgba.tobytes(), (4, 2), "RGBA"), rgb)
    from presence.framework.errors import InputError

    with pytest.raises(InputError, match="expected 4x2x3"):
        to_rgb(rgb.tobytes()[:-1], (4, 2), "RGB")
    with pytest.raises(InputError, match="not supported"):
        to_rgb(rgb.tobytes(), (4, 2), "YUV420")
