"""The latency harness on scripted providers: it recovers the delays it was given, and writes its
report files. Runs in real time (a few seconds per turn)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from presence.benchmarks.latency.report import print_table
from presence.benchmarks.latency.runner import run_latency_benchmark
from presence.benchmarks.latency.users import turn_from_text

SCRIPTED = "benchmarks/latency/scripted.yaml"
TTFT, TTFB, STT, TPS = 300.0, 150.0, 120.0, 50.0
FAST = [
    f"stages.llm.ttft_ms={TTFT}",
    f"stages.llm.tokens_per_s={TPS}",
    "stages.llm.reply=Sure. Done.",
    f"stages.tts.ttfb_ms={TTFB}",
    "stages.tts.ms_per_char=15",
    f"stages.stt.final_after_ms={STT}",
]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("latency")
    script = [turn_from_text("what is presence"), turn_from_text("how do I swap a provider")]
    r = run_latency_benchmark(
        Path(__file__).resolve().parents[2] / SCRIPTED,
        overrides=FAST,
        json_path=out / "r.json",
        plot_path=out / "r.png",
        script=script,
        gap_s=0.3,
        lead_s=0.5,
        max_wait_s=4.0,
    )
    return r, out


def test_every_turn_is_measured(result):
    r, _ = result
    assert len(r["turns"]) == 2
    for turn in r["turns"]:
        assert not turn["missed_end_of_turn"] and turn["false_end_of_turn"] == 0
        order = [turn[k] for k in ("stt_final_ms", "turn_decision_ms", "llm_first_token_ms",
                                   "tts_first_audio_ms", "voice_to_voice_ms")]  # fmt: skip
        assert order == sorted(order), turn


def test_scripted_delays_are_recovered(result):
    r, _ = result
    for turn in r["turns"]:
        assert (turn["llm_first_token_ms"] - turn["llm_request_ms"]) / TTFT == pytest.approx(
            1, abs=0.15
        )
        # the TTS starts once "Sure. " is followed by the next token (sentence lookahead)
        ttfb = turn["tts_first_audio_ms"] - turn["llm_first_token_ms"]
        assert ttfb / (TTFB + 1000 / TPS) == pytest.approx(1, abs=0.2)
        assert turn["stt_final_ms"] / STT == pytest.approx(1, abs=0.3)
        # what is left after the scripted time is small next to it
        assert abs(turn["framework_overhead_ms"]) / turn["scripted_ms"] < 0.15


def test_report_files_and_baseline(result, capsys):
    r, out = result
    data = json.loads((out / "r.json").read_text())
    for key in ("voice_to_voice_ms", "framework_overhead_ms", "turn_decision_ms", "first_frame_ms"):
        assert set(data["summary"][key]) >= {"p50", "p95", "p99"}
        assert data["summary"][key]["p50"] is not None
    ratio = data["summary"]["vs_plain_pipecat_ratio"]
    assert 0.8 < ratio < 1.25
    assert data["baseline"]["summary"]["voice_to_voice_ms"]["n"] == 2
    assert (out / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print_table(r)
    assert "voice to voice" in capsys.readouterr().out


def test_the_machine_record_names_the_cpu_features_that_move_the_figures():
    """Runs on CPUs with and without AVX-512 / bfloat16 differ several-fold: the JSON says which."""
    from presence.benchmarks.latency.report import _CPU_FLAGS, machine

    info = machine()
    assert info["cpus"] >= 1
    if Path("/proc/cpuinfo").exists():
        assert info["cpu_model"] and set(info["cpu_flags"]) <= set(_CPU_FLAGS)
