"""``presence bench judge``: what an LLM judge of guardrails adds to a turn."""

from __future__ import annotations

import json

from presence.benchmarks.judge import main


def test_the_judge_delays_the_first_sentence_by_two_verdicts_and_a_slow_one_by_its_timeout(
    tmp_path,
):
    out = tmp_path / "judge.json"
    report = main(["--judge-ms", "150", "--turns", "2", "--timeout-ms", "300", "--json", str(out)])
    assert json.loads(out.read_text())["results"] == report["results"]
    rules, judged, slow = report["results"]
    assert rules["judge_ms"] is None and rules["judge_requests"] == 0
    # the input verdict, then the first sentence's: both before anything reaches TTS
    assert judged["judge_requests"] == 2 * 4  # per turn: the input and three sentences
    assert judged["first_sentence_p50_ms"] >= rules["first_sentence_p50_ms"] + 2 * 150
    # a judge past its timeout costs the timeout per check, and the rules' verdict stands
    assert slow["judge_ms"] == 450
    assert slow["first_sentence_p50_ms"] >= 2 * 300
    assert slow["first_sentence_p50_ms"] < 2 * 450
