"""Speculative start on a scripted pipeline: a confirmed speculation is the only inference of its
turn; a withdrawn one leaks no audio and leaves no trace in the context. Runs in real time."""

from __future__ import annotations

from pathlib import Path

from presence.benchmarks.latency.runner import arun_latency_benchmark
from presence.benchmarks.latency.users import turn_from_text
from presence.processors.turns.speculative import SpeculativeUserTurnStopStrategy

SCRIPTED = Path(__file__).resolve().parents[3] / "benchmarks/latency/scripted.yaml"
REPLY = "Sure. Done."
FAST = [
    "stages.llm.ttft_ms=300",
    f"stages.llm.reply={REPLY}",
    "stages.tts.ttfb_ms=100",
    "stages.tts.ms_per_char=15",
    "stages.stt.final_after_ms=100",
]


async def _run(turn):
    r = await arun_latency_benchmark(
        SCRIPTED, overrides=FAST, speculative=True, baseline=False, script=[turn],
        gap_s=0.2, lead_s=0.5, max_wait_s=4.0,
    )  # fmt: skip
    run = r["_runs"]["presence"]
    strategy = run["stages"]["turn"].stop[0]
    assert isinstance(strategy, SpeculativeUserTurnStopStrategy)
    dialogue = [m for m in run["context"].get_messages() if m.get("role") in ("user", "assistant")]
    return r["turns"][0], run, strategy, dialogue


async def test_confirmed_speculation_is_the_only_inference():
    row, run, strategy, dialogue = await _run(turn_from_text("what is presence"))
    llm = run["stages"]["llm"]
    assert llm.requests == [(True, "what is presence")]
    assert (strategy.started, strategy.committed, strategy.discarded) == (1, 1, 0)
    assert row["speculative"] and row["llm_request_ms"] < row["turn_decision_ms"]
    # the held response is released by the decision, not before it
    assert row["llm_first_token_ms"] >= row["turn_decision_ms"]
    assert [(m["role"], m["content"]) for m in dialogue] == [
        ("user", "what is presence"),
        ("assistant", REPLY),
    ]


async def test_withdrawn_speculation_leaks_nothing():
    # the pause is long enough for the VAD to stop (a speculation starts) and shorter than the
    # turn wait (the user goes on): the speculation on "how do I swap" must vanish
    row, run, strategy, dialogue = await _run(turn_from_text("how do I swap | a provider", 300))
    llm, tts, observer = run["stages"]["llm"], run["stages"]["tts"], run["observer"]
    assert llm.requests[0] == (True, "how do I swap")
    assert llm.requests[-1] == (True, "how do I swap a provider")
    assert strategy.discarded >= 1 and strategy.committed == 1
    assert row["false_end_of_turn"] == 0 and row["speculations_cancelled"] >= 1
    decision_ns = observer.of("turn_stop")[0].t_ns
    assert all(e.t_ns > decision_ns for e in observer.of("tts_audio")), (
        "audio before the turn ended"
    )
    assert all(e.t_ns > decision_ns for e in observer.of("llm_token")), "text before the turn ended"
    assert tts.sentences == ["Sure.", "Done."]
    assert [(m["role"], m["content"]) for m in dialogue] == [
        ("user", "how do I swap a provider"),
        ("assistant", REPLY),
    ]
