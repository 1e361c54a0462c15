"""``run_latency_benchmark``: a pipeline file, scripted users, and the same turns through plain pipecat.

Two runs in one call, one after the other, with the same script:

1. **presence** — the pipeline file built by ``build_session`` (every stage, renderer included),
   over ``BenchTransport``;
2. **plain pipecat** (``baseline=True``) — the same VAD, turn strategy, STT, LLM and TTS providers
   (fresh instances from the same parameters) wired by hand into a pipecat ``Pipeline`` the way
   pipecat's own examples do: input → STT → user aggregator → LLM → TTS → output → assistant
   aggregator; no renderer, no presence builder. ``summary.vs_plain_pipecat_ratio`` is presence's
   voice-to-voice p50 over plain pipecat's.

A ``LatencyObserver`` measures both; nothing is inserted into either pipeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregatorParams
from pipecat.workers.runner import WorkerRunner

import presence.benchmarks.fakes  # noqa: F401  (registers the scripted providers)
from presence.benchmarks.latency import report
from presence.benchmarks.latency.observer import LatencyObserver
from presence.benchmarks.latency.transport import BenchTransport
from presence.benchmarks.latency.users import ScriptedTurn, default_script
from presence.framework.aggregators import PresenceContextAggregatorPair
from presence.framework.builder import build_session, build_stage, make_context
from presence.framework.config import LoadedPipeline, load_pipeline


def enable_speculation(loaded: LoadedPipeline) -> None:
    """Wrap the pipeline's turn strategies in speculative start (in place)."""
    from presence.processors.turns.speculative import speculative

    cfg = loaded.stages["turn"]
    original = cfg.provider.factory
    cfg.provider = dataclasses.replace(
        cfg.provider, factory=lambda p, ctx: speculative(original(p, ctx))
    )


def turn_policy(loaded: LoadedPipeline) -> dict[str, float | None]:
    """``turn_wait_ms`` (fixed wait after VAD stop, None for model-based turns) and ``vad_stop_ms``."""
    turn, vad = loaded.stages.get("turn"), loaded.stages.get("vad")
    wait = None
    if turn is not None and turn.provider.name == "speech-timeout":
        wait = 1000 * turn.params.user_speech_timeout
    return {
        "turn_wait_ms": wait,
        "vad_stop_ms": 1000 * float(getattr(vad.params, "stop_secs", 0.0)) if vad else 0.0,
    }


def _is_scripted(loaded: LoadedPipeline) -> bool:
    return all(loaded.stages[s].provider.name == "scripted" for s in ("llm", "tts"))


def _transport(
    loaded: LoadedPipeline, script: list[ScriptedTurn], *, video: bool, **kw
) -> BenchTransport:
    v = getattr(loaded.transport, "video", None)
    size = dict(width=v.width, height=v.height, fps=v.fps) if v is not None else {}
    return BenchTransport(script, video=video, **size, **kw)


async def _run(worker: PipelineWorker) -> float:
    start = time.monotonic()
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
    return time.monotonic() - start


async def run_presence(
    loaded: LoadedPipeline, script: list[ScriptedTurn], **transport_kw
) -> dict[str, Any]:
    """Run the pipeline as presence builds it; returns per-turn rows and the stage objects."""
    video = loaded.stages.get("renderer") is not None
    transport = _transport(loaded, script, video=video, **transport_kw)
    observer = LatencyObserver()
    session = build_session(loaded, transport, observers=[observer], enable_rtvi=False)
    st = session.stages
    observer.bind(
        stt=st.get("stt"), llm=st.get("llm"), tts=st.get("tts"), renderer=st.get("renderer")
    )
    wall = await _run(session.worker)
    turns = report.analyze_turns(transport.input().turn_marks, observer, transport.output(),
                                 **turn_policy(loaded), scripted=_is_scripted(loaded))  # fmt: skip
    return {"turns": turns, "wall_s": round(wall, 1), "stages": st, "observer": observer,
            "transport": transport, "context": session.context}  # fmt: skip


async def run_plain_pipecat(
    loaded: LoadedPipeline, script: list[ScriptedTurn], **transport_kw
) -> dict[str, Any]:
    """The same providers wired by hand into a plain pipecat pipeline (no renderer, no builder)."""
    ctx = make_context(loaded)
    stages = {
        n: build_stage(loaded.stages[n], ctx)
        for n in ("vad", "turn", "stt", "llm", "tts")
        if n in loaded.stages
    }
    transport = _transport(loaded, script, video=False, **transport_kw)
    system = loaded.persona.full_system_prompt()
    context = LLMContext([{"role": "system", "content": system}] if system else [])
    pair = PresenceContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=stages.get("vad"), user_turn_strategies=stages.get("turn")
        ),
    )
    pipeline = Pipeline([
        transport.input(), stages["stt"], pair.user(), stages["llm"], stages["tts"],
        transport.output(), pair.assistant(),
    ])  # fmt: skip
    observer = LatencyObserver()
    observer.bind(stt=stages["stt"], llm=stages["llm"], tts=stages["tts"])
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=16000, audio_out_sample_rate=24000, enable_metrics=True
        ),
        observers=[observer],
        idle_timeout_secs=None,
        enable_rtvi=False,
    )
    wall = await _run(worker)
    turns = report.analyze_turns(transport.input().turn_marks, observer, transport.output(),
                                 **turn_policy(loaded), scripted=_is_scripted(loaded))  # fmt: skip
    return {"turns": turns, "wall_s": round(wall, 1), "stages": stages, "observer": observer}


async def arun_latency_benchmark(
    pipeline_path: str | Path,
    turns: int = 20,
    overrides: list[str] | None = None,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    *,
    speculative: bool = False,
    baseline: bool = True,
    script: list[ScriptedTurn] | None = None,
    command: str | None = None,
    **transport_kw: Any,
) -> dict[str, Any]:
    """Async form of ``run_latency_benchmark`` (use it inside a running event loop)."""
    loaded = load_pipeline(pipeline_path, overrides)
    if speculative:
        enable_speculation(loaded)
    script = script if script is not None else default_script(turns)
    logger.info(f"latency benchmark: {loaded.spec.name}, {len(script)} turns")
    presence_run = await run_presence(loaded, script, **transport_kw)
    summary = report.summarize(presence_run["turns"])
    result: dict[str, Any] = {
        "pipeline": loaded.spec.name,
        "pipeline_file": str(pipeline_path),
        "overrides": list(overrides or []),
        "speculative": speculative,
        "command": command,
        "machine": report.machine(),
        "summary": summary,
        "turns": presence_run["turns"],
        "wall_s": presence_run["wall_s"],
        "turn_policy": turn_policy(loaded),
    }
    summary["vs_plain_pipecat_ratio"] = None
    if baseline:
        plain_loaded = load_pipeline(pipeline_path, overrides)
        plain = await run_plain_pipecat(plain_loaded, script, **transport_kw)
        base_summary = report.summarize(plain["turns"])
        result["baseline"] = {
            "summary": base_summary,
            "turns": plain["turns"],
            "wall_s": plain["wall_s"],
        }
        ours, theirs = summary["voice_to_voice_ms"]["p50"], base_summary["voice_to_voice_ms"]["p50"]
        if ours and theirs:
            summary["vs_plain_pipecat_ratio"] = round(ours / theirs, 3)
    if json_path:
        report.write_json(result, json_path)
    if plot_path:
        report.plot(result, plot_path)
    result["_runs"] = {"presence": presence_run}
    return result


def run_latency_benchmark(
    pipeline_path: str | Path,
    turns: int = 20,
    overrides: list[str] | None = None,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Benchmark a pipeline file's latency with scripted users, against plain pipecat.

    Args:
        pipeline_path: The pipeline YAML.
        turns: Scripted user turns (the default question set, with pauses inside sentences).
        overrides: ``PATH=VALUE`` overrides, as ``--set``.
        json_path: Where to write the JSON report (None: not written).
        plot_path: Where to write the PNG chart (None: not drawn; needs matplotlib).
        **kwargs: ``speculative`` (bool), ``baseline`` (bool), ``script`` (list of
            ``ScriptedTurn``), ``command`` (recorded in the JSON), and ``BenchTransport``
            options (``gap_s``, ``max_wait_s``, ``lead_s``).

    Returns:
        The report: ``summary`` (p50/p95/p99 of ``voice_to_voice_ms``, ``framework_overhead_ms``,
        ``turn_decision_ms``, ``first_frame_ms`` and the other stages, turn-taking counts,
        ``vs_plain_pipecat_ratio``), ``turns`` (per-turn rows), ``baseline``, ``machine``.
        Runs in real time: about (speech + reply + gaps) seconds per turn, twice with the baseline.
    """
    result = asyncio.run(
        arun_latency_benchmark(pipeline_path, turns, overrides, json_path, plot_path, **kwargs)
    )
    result.pop("_runs", None)
    return result
