"""``presence bench soak``: the verdicts on synthetic samples, and a real 30-second call.

The short call runs the offline pipeline over WebRTC on loopback (still face, 128 px, 15 fps, one
question looped), sampled every 5 s: the report must hold real readings of this process and of
the call, and the verdicts must be computed from them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presence.benchmarks.soak import report
from presence.benchmarks.soak.runner import SoakError, run_soak_benchmark

REPO = Path(__file__).resolve().parents[2]
LIGHT = [
    "stages.renderer={provider: still}",
    "transport.video={width: 128, height: 128, fps: 15}",
    "stages.turn={provider: speech-timeout, user_speech_timeout: 0.6}",
]


def row(t: float, **over) -> dict:
    base = dict(t_s=t, rss_mb=500.0, fds=40, threads=30, tasks=80, repeated=0, frames_short=0,
                drift_frames=0.0, client_missing_frames=0)  # fmt: skip
    return {**base, **over}


def test_verdicts_flag_growth_drift_and_repeats_after_the_warm_up():
    steady = {"samples": [row(1), row(60, rss_mb=900), row(120), row(180, rss_mb=510)], "asked": []}
    v = report.verdicts(steady, warmup_s=60)
    assert v["samples_after_warmup"] == 3
    assert v["flat"]["rss_mb"]["ok"] is False  # 900 -> 500 -> 510: the warm-up's 900 counts here
    v = report.verdicts({**steady, "samples": [row(1, rss_mb=900), *steady["samples"][2:]]}, 60)
    assert v["flat"]["rss_mb"]["ok"] is True and v["ok"] is True  # growth before 60 s left out

    growing = [row(1), row(60), row(120, rss_mb=540, tasks=95), row(180, rss_mb=580, tasks=110)]
    v = report.verdicts({"samples": growing, "asked": []}, warmup_s=60)
    assert not v["flat"]["rss_mb"]["ok"] and not v["flat"]["tasks"]["ok"]
    assert v["flat"]["fds"]["ok"] and v["flat"]["rss_mb"]["growth"] == pytest.approx(0.16)
    assert v["ok"] is False

    drifting = [row(1), row(60, drift_frames=-1.5), row(120)]
    assert report.verdicts({"samples": drifting, "asked": []}, 60)["drift"]["ok"] is False
    repeating = [row(1, repeated=3), row(60, repeated=3), row(120, repeated=4)]
    frames = report.verdicts({"samples": repeating, "asked": []}, 60)["frames"]
    assert frames["repeated_after_warmup"] == 1 and frames["ok"] is False
    # the clock re-phases at each speech onset: up to one short frame per turn is not a drop
    onsets = [row(1), row(60, frames_short=2), row(120, frames_short=3)]
    asked = [{"answered": True}] * 2
    assert report.verdicts({"samples": onsets, "asked": asked}, 60)["frames"]["ok"] is True

    # a sample taken mid-answer (no quiet moment before time ran out) is not compared
    mid_answer = [row(1), row(60), row(120), {**row(180, rss_mb=700), "quiet": False}]
    v = report.verdicts({"samples": mid_answer, "asked": []}, warmup_s=60)
    assert v["flat"]["rss_mb"]["ok"] is True and v["samples_not_quiet"] == 1

    short = report.verdicts({"samples": [row(1), row(30)], "asked": []}, warmup_s=60)
    assert short["flat"] is None and short["ok"] is None  # too short to judge flatness


def test_flatness_is_also_judged_from_the_second_pass_through_the_questions():
    # Memory that grows while each question is met for the first time, then stays: not flat after
    # the one-minute warm-up, flat from the second pass on. A leak is flat by neither reading.
    asked = [{"id": q, "t": t, "answered": True} for q, t in (("a", 10), ("b", 70), ("a", 130))]
    caching = [row(1), row(60), row(120, rss_mb=600), row(180, rss_mb=601), row(240, rss_mb=602)]
    v = report.verdicts({"samples": caching, "asked": asked}, warmup_s=60)
    assert v["flat"]["rss_mb"]["ok"] is False
    second = v["flat_after_first_pass"]
    assert second["from_s"] == 130 and second["rss_mb"]["first"] == 601.0
    assert second["rss_mb"]["ok"] is True and second["ok"] is True
    leaking = [row(1), row(60), row(120), row(180, rss_mb=560), row(240, rss_mb=620)]
    v = report.verdicts({"samples": leaking, "asked": asked}, warmup_s=60)
    assert v["flat_after_first_pass"]["rss_mb"]["ok"] is False
    assert (
        report.verdicts({"samples": caching, "asked": asked[:2]}, 60)["flat_after_first_pass"]
        is None
    )


def test_repeated_frames_are_placed_in_the_phase_of_the_turn_they_fell_in():
    # a question said from 10 s to 13 s, answered by 20 s; the next from 30 s
    asked = [{"t": 10.0, "spoke_s": 3.0, "seconds": 10.0, "answered": True},
             {"t": 30.0, "spoke_s": 2.0, "seconds": 8.0, "answered": True}]  # fmt: skip
    repeats = [{"t": t, "speaking": False} for t in (5.0, 11.0, 13.2, 14.4, 16.0, 25.0, 32.5)]
    result = {"samples": [row(1), row(60, repeated=7)], "asked": asked, "repeats": repeats}
    phases = report.verdicts(result, 60)["repeats_by_phase"]
    assert phases == {"user speaking": 1, "turn end": 3, "answer": 1, "between turns": 2}
    assert report.repeat_phases({"asked": asked}) is None  # an older result without the record


def test_a_file_transport_pipeline_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(SoakError, match="transport.kind=webrtc"):
        run_soak_benchmark(REPO / "pipelines/local.yaml", ["transport.kind=file"], minutes=0.1)


@pytest.mark.timeout(180)
def test_a_short_soak_call_samples_the_process_and_the_call(tmp_path):
    result = run_soak_benchmark(
        REPO / "pipelines/local.yaml",
        LIGHT,
        minutes=0.5,
        sample_s=5,
        warmup_s=5,
        questions=1,
        json_path=tmp_path / "soak.json",
        plot_path=tmp_path / "soak.png",
        command="presence bench soak --minutes 0.5",
    )
    saved = json.loads((tmp_path / "soak.json").read_text())
    assert saved["verdicts"] == result["verdicts"] and saved["command"].startswith("presence")
    assert (tmp_path / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = saved["samples"]
    assert len(samples) >= 3 and 29 <= saved["seconds"] <= 45
    times = [s["t_s"] for s in samples]
    assert times == sorted(times) and times[0] == pytest.approx(1.0, abs=0.5)
    # each sample after the warm-up second waited for a moment between turns, one per moment
    assert all(s["quiet"] for s in samples[1:-1]) and samples[1]["quiet"]
    assert len({s["questions"] for s in samples[1:-1]}) == len(samples[1:-1])
    for s in samples:
        assert s["rss_mb"] > 50 and s["fds"] > 3 and s["threads"] > 2 and s["tasks"] > 5
        groups = s["thread_groups"]  # the Python threads by name, the runtimes' as "native"
        assert groups["MainThread"] == 1 and groups["native"] >= 0
        assert any(name.startswith("renderer") for name in groups)  # the render thread
        # the runtimes' threads by their OS names, counted apart from the Python ones
        native = s["native_threads"]
        assert native and sum(native.values()) + sum(groups.values()) - groups["native"] <= (
            s["threads"] + 2
        )
        # the audio waiting in the WebRTC output is read at every sample
        assert s["output_backlog_s"] is not None and s["output_backlog_s"] >= 0
    # the audio waiting in the WebRTC output stays short (a stall of the loaded machine may leave
    # a sample over a second behind; it is made up between turns, so most samples are not)
    backlogs = sorted(s["output_backlog_s"] for s in samples)
    assert backlogs[len(backlogs) // 2] < 0.5, backlogs
    first, last = samples[0], samples[-1]
    elapsed = last["t_s"] - first["t_s"]
    # frames really flowed at about 15 fps, and the user really received them
    assert 0.5 * 15 * elapsed < last["frames"] - first["frames"] <= 15 * elapsed + 15
    assert last["client_video_frames"] - first["client_video_frames"] > 0.5 * 15 * elapsed
    assert last["client_audio_s"] > 0.5 * elapsed
    assert any(s["lateness_ms_p50"] is not None for s in samples)
    assert saved["asked"] and saved["asked"][0]["id"] == "q01" and saved["asked"][0]["answered"]
    assert last["questions"] == len(saved["asked"])
    assert 0 < saved["asked"][0]["spoke_s"] < saved["asked"][0]["seconds"]
    # the repeated frames recorded are this call's, after its warm-up second
    assert len(saved["repeats"]) <= last["repeated"]
    assert all(1.0 <= r["t"] <= saved["seconds"] for r in saved["repeats"])
    assert set(saved["verdicts"]["repeats_by_phase"]) == {
        "user speaking",
        "turn end",
        "answer",
        "between turns",
    }
    v = saved["verdicts"]
    # flatness is judged over the samples taken between turns after the warm-up, when two exist
    quiet = [s for s in samples if s["t_s"] >= 5 and s["quiet"]]
    assert (v["flat"] is None) == (len(quiet) < 2)
    assert v["flat"] is None or set(v["flat"]) == {"rss_mb", "fds", "threads", "tasks"}
    assert isinstance(v["drift"]["ok"], bool) and isinstance(v["frames"]["ok"], bool)
    assert v["drift"]["max_abs_frames"] == max(abs(s["drift_frames"]) for s in samples)


def test_gc_pauses_count_full_collections_and_time_the_longest_once():
    import gc

    from presence.benchmarks.soak.sampler import GcPauses

    pauses = GcPauses()
    gc.disable()  # only the collections asked for here
    try:
        junk = [[i] for i in range(200_000)]  # something for the collector to walk
        gc.collect()
        gc.collect(0)
        first = pauses.read()
        assert first["gc_full"] >= 1 and first["gc_ms_max"] > 0
        assert pauses.read()["gc_ms_max"] is None  # the longest is per interval
        del junk
    finally:
        gc.enable()
        pauses.close()
    pauses.close()
    assert pauses._on_gc not in gc.callbacks
    full = pauses.full
    gc.collect()
    assert pauses.full == full  # closed: nothing counted any more
