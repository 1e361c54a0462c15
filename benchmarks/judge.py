"""What an LLM judge adds to a turn: guardrails put to the conversation's LLM, timed in a pipeline.

A guardrail with a ``prompt`` is judged by the conversation's cloud LLM (``engines/judge``). The
user's turn is judged either while the LLM answers it (``input: parallel``, the default: the
output guard holds the answer's first sentence until that verdict) or before the LLM sees it
(``input: before_llm``); the output guard holds each sentence from TTS until its own verdict.
This benchmark runs the real processors (``make_guards``) — ``InputGuard`` → a scripted LLM
stage → ``OutputGuard`` → a sink — with the real ``openai`` SDK judging against a local
OpenAI-compatible server (``tests/fakes``, so it needs the repository) whose verdict arrives
after ``--judge-ms`` (a judge's time to its whole answer), and reports per turn:

* ``first_sentence_ms``: the turn's context entering the input guard → the answer's first
  sentence leaving the output guard (what the user waits for on top of the LLM and the TTS);
* ``later_sentence_ms``: how long each later sentence waits in the output guard after the LLM
  finished it (hidden while the earlier sentences play, unless it exceeds their audio).

The first question comes 2 s after the pipeline starts, as in a call, so the judge's warm-up
(importing its SDK and opening its client, ~1 s here) is done by then. Each judge delay is
measured both ways beside the same pipeline with rules only (``judge-ms`` ``rules``),
and with the judge timing out (``--timeout-ms``), where the rules' verdict stands. The scripted
LLM answers after ``--llm-ttft-ms`` (its time to first token) and streams a three-sentence
answer in 4-word chunks every 20 ms, like a cloud LLM.

Usage::

    presence bench judge [--judge-ms 50 --judge-ms 150 --judge-ms 400] [--turns 20]
        [--timeout-ms 1000] [--llm-ttft-ms 0] [--json benchmarks/results/judge.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from pipecat.frames.frames import (
    EndFrame,
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from presence.framework.errors import ConfigError
from presence.processors.guardrails.engines.rules import Guardrail, Guardrails
from presence.processors.guardrails.processor import OutputGuardProcessor, make_guards
from presence.processors.llm.engines.judge import LLMJudge
from presence.processors.llm.knowledge_base import chunk_sentence

TESTS = Path(__file__).resolve().parents[1] / "tests"
ANSWER = (
    "Presence runs on your own machine, with no cloud account. "
    "You can swap any stage by editing one line of its YAML file. "
    "Ask me about voices, faces or turn taking next."
)
GUARDRAILS = Guardrails(
    [Guardrail("no_medical_advice", prompt="never give medical advice", replacement="I can't.")]
)


class _ScriptedLLM(FrameProcessor):
    """Answers each context with ``ANSWER`` in 4-word chunks, one every ``chunk_s``."""

    def __init__(self, chunk_s: float = 0.02, ttft_s: float = 0.0):
        super().__init__()
        self.chunk_s, self.ttft_s = chunk_s, ttft_s
        self.sentence_done: list[float] = []  # when each sentence's last chunk left

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        await asyncio.sleep(self.ttft_s)
        await self.push_frame(LLMFullResponseStartFrame())
        for chunk in chunk_sentence(ANSWER, 4):
            await asyncio.sleep(self.chunk_s)
            await self.push_frame(LLMTextFrame(chunk))
            self.sentence_done.extend([time.monotonic()] * chunk.count(". "))
        await self.push_frame(LLMFullResponseEndFrame())


class _Sink(FrameProcessor):
    """Records when each screened sentence arrives."""

    def __init__(self):
        super().__init__()
        self.sentences: list[float] = []
        self.ended = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self.sentences.append(time.monotonic())
        elif isinstance(frame, LLMFullResponseEndFrame):
            self.ended.set()
        await self.push_frame(frame, direction)


def _import_fake():
    if not (TESTS / "fakes").is_dir():
        raise ConfigError(f"bench judge needs the repository's tests/fakes folder ({TESTS})")
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from fakes.openai import FakeOpenAI, Reply

    return FakeOpenAI, Reply


async def _run(judge_ms: float | None, turns: int, timeout_ms: float, *, parallel: bool = True,
               ttft_ms: float = 0.0) -> dict:  # fmt: skip
    """``turns`` answers through the guards; ``judge_ms`` None is rules only."""
    FakeOpenAI, Reply = _import_fake()
    async with FakeOpenAI() as fake:
        judge = None
        if judge_ms is not None:
            verdict = Reply(text=['{"broken": null}'], ttft_s=judge_ms / 1000)
            fake.script.extend([verdict] * (turns * 4))
            judge = LLMJudge(
                "openai", "judge", base_url=fake.base_url, api_key="k", timeout_s=timeout_ms / 1000
            )
        llm, sink = _ScriptedLLM(ttft_s=ttft_ms / 1000), _Sink()
        guards = make_guards(GUARDRAILS, judge=judge, app_message=False, parallel_input=parallel)
        if judge is None:  # rules only: the same sentence-by-sentence hold, no verdicts
            guards = {"before_tts": [OutputGuardProcessor(GUARDRAILS, app_message=False)]}
        pipeline = Pipeline(
            [*guards.get("before_llm", []), llm, *guards.get("before_tts", []), sink]
        )
        worker = PipelineWorker(pipeline, params=PipelineParams(), enable_rtvi=False)
        rows: list[dict] = []

        async def script():
            try:
                await turns_of(turns)
            finally:  # whatever happened, the pipeline ends
                await worker.queue_frame(EndFrame())

        async def turns_of(turns: int):
            await asyncio.sleep(2.0)  # a caller's first question comes seconds after the start
            for _ in range(turns):
                llm.sentence_done.clear()
                sink.sentences.clear()
                sink.ended.clear()
                context = LLMContext([{"role": "user", "content": "Can I run it on my own box?"}])
                started = time.monotonic()
                await worker.queue_frame(LLMContextFrame(context))
                await asyncio.wait_for(sink.ended.wait(), 30)
                waits = [
                    s - d for s, d in zip(sink.sentences[1:], llm.sentence_done[1:], strict=True)
                ]
                rows.append(
                    {
                        "first_sentence_ms": 1000 * (sink.sentences[0] - started),
                        "later_sentence_ms": [1000 * w for w in waits],
                    }
                )

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await asyncio.gather(runner.run(), script())
    return {
        "judge_ms": judge_ms,
        "input": None if judge is None else ("parallel" if parallel else "before_llm"),
        "turns": rows,
        "judge_requests": len(fake.requests),
    }


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else 0.0


def summarize(run: dict) -> dict:
    """p50/p95 of the first sentence's and later sentences' waits."""
    first = [r["first_sentence_ms"] for r in run["turns"]]
    later = [w for r in run["turns"] for w in r["later_sentence_ms"]]
    return {
        "judge_ms": run["judge_ms"],
        "input": run["input"],
        "turns": len(first),
        "judge_requests": run["judge_requests"],
        "first_sentence_p50_ms": round(statistics.median(first), 1),
        "first_sentence_p95_ms": _pct(first, 0.95),
        "later_sentence_p50_ms": round(statistics.median(later), 1) if later else 0.0,
        "later_sentence_p95_ms": _pct(later, 0.95),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark (see the module docstring) and print its table."""
    ap = argparse.ArgumentParser(prog="presence bench judge")
    ap.add_argument("--judge-ms", type=float, action="append")
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--timeout-ms", type=float, default=1000.0)
    ap.add_argument("--llm-ttft-ms", type=float, default=0.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if args.turns < 1:
        raise ConfigError("--turns must be at least 1")
    if args.llm_ttft_ms < 0:
        raise ConfigError("--llm-ttft-ms must not be negative")
    slow = args.timeout_ms * 1.5  # a judge slower than its timeout: the rules stand
    runs: list[tuple[float | None, bool]] = [(None, True)]
    for delay in [*(args.judge_ms or [50.0, 150.0, 400.0]), slow]:
        runs += [(delay, True), (delay, False)]
    results = [
        summarize(
            asyncio.run(
                _run(
                    d,
                    args.turns if d != slow else min(args.turns, 5),
                    args.timeout_ms,
                    parallel=parallel,
                    ttft_ms=args.llm_ttft_ms,
                )
            )
        )  # fmt: skip
        for d, parallel in runs
    ]
    print(
        f"{'judge':>10} {'input':>10} {'first p50':>10} {'first p95':>10} {'later p50':>10} "
        f"{'later p95':>10}"
    )
    for r in results:
        name = "rules" if r["judge_ms"] is None else f"{r['judge_ms']:g} ms"
        print(
            f"{name:>10} {r['input'] or '-':>10} {r['first_sentence_p50_ms']:>10} "
            f"{r['first_sentence_p95_ms']:>10} {r['later_sentence_p50_ms']:>10} "
            f"{r['later_sentence_p95_ms']:>10}"
        )
    report = {
        "command": "presence bench judge " + " ".join(argv or sys.argv[1:]),
        "timeout_ms": args.timeout_ms,
        "llm_ttft_ms": args.llm_ttft_ms,
        "answer_sentences": 3,
        "results": results,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
