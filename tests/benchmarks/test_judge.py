"""``presence bench judge``: what an LLM judge of guardrails adds to a turn."""

from __future__ import annotations

import json

from presence.benchmarks.judge import main


def test_the_judge_costs_one_verdict_when_it_judges_the_turn_beside_the_llm_and_two_before_it(
    tmp_path,
):
    out = tmp_path / "judge.json"
    # the timeout leaves the 150 ms judge a wide margin on a loaded machine: a verdict that timed
    # out would not be counted as a request, nor cost what this test expects of a verdict
    timeout, ttft = 600, 200
    argv = ["--judge-ms", "150", "--turns", "1", "--timeout-ms", str(timeout),
            "--llm-ttft-ms", str(ttft)]  # fmt: skip
    report = main([*argv, "--json", str(out)])
    assert json.loads(out.read_text())["results"] == report["results"]
    rules, parallel, before, slow_parallel, slow_before = report["results"]
    assert rules["judge_ms"] is None and rules["judge_requests"] == 0
    assert [r["input"] for r in report["results"][1:]] == ["parallel", "before_llm"] * 2
    for judged in (parallel, before):
        assert judged["judge_requests"] == 4  # the turn's input and its three sentences
    # before the LLM: the input verdict, the LLM, then the first sentence's verdict
    assert before["first_sentence_p50_ms"] >= rules["first_sentence_p50_ms"] + 2 * 150
    # beside the LLM: the input verdict is hidden behind the LLM's first token
    assert parallel["first_sentence_p50_ms"] >= rules["first_sentence_p50_ms"] + 150
    # ...so it costs one verdict less than judging before the LLM (150 ms apart when idle; a
    # loaded machine's single turn can lose ~70 ms either way, so only the order is asserted)
    assert parallel["first_sentence_p50_ms"] < before["first_sentence_p50_ms"]
    # a judge past its timeout costs the timeout per check, and the rules' verdict stands
    assert slow_before["judge_ms"] == slow_parallel["judge_ms"] == 1.5 * timeout
    for slow in (slow_parallel, slow_before):
        assert 2 * timeout <= slow["first_sentence_p50_ms"] < ttft + 2 * 1.5 * timeout
