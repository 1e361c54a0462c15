"""``presence bench``: one command per benchmark module of ``presence.benchmarks``.

latency, conversation, soak, turns, renderer, retrieval, judge, perception and sessions; each runs
its benchmark and prints its table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from presence.framework.cli_common import (
    DEFAULT_PIPELINE,
    PASSTHROUGH,
    SetOption,
    console,
    fail,
)
from presence.framework.errors import PresenceError
from presence.framework.logs import setup_logging

bench_app = typer.Typer(
    help="Benchmarks: latency, conversation, turns, soak, renderer, perception, retrieval, judge,"
    " sessions."
)


@bench_app.command("latency")
def bench_latency(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")] = DEFAULT_PIPELINE,
    turns: Annotated[int, typer.Option(help="Scripted user turns to run.")] = 20,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG chart of the stages here.")] = None,
    speculative: Annotated[
        bool, typer.Option(help="Start the LLM speculatively at the first likely end of turn.")
    ] = False,
    baseline: Annotated[
        bool, typer.Option(help="Also run the same turns through a plain pipecat pipeline.")
    ] = True,
    set_: SetOption = None,
) -> None:
    """Voice-to-voice latency per stage (p50/p95/p99), framework overhead, vs plain pipecat."""
    setup_logging(0)
    import shlex
    import sys

    from presence.benchmarks.latency.report import print_table
    from presence.benchmarks.latency.runner import run_latency_benchmark

    try:
        result = run_latency_benchmark(
            str(pipeline),
            turns,
            set_ or [],
            str(json_out) if json_out else None,
            str(plot) if plot else None,
            speculative=speculative,
            baseline=baseline,
            command="presence " + shlex.join(sys.argv[1:]),
        )
    except PresenceError as exc:
        raise fail(exc) from None
    print_table(result)


@bench_app.command("conversation")
def bench_conversation(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")] = DEFAULT_PIPELINE,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG chart here.")] = None,
    limit: Annotated[int | None, typer.Option(help="Run only the first N questions.")] = None,
    voices: Annotated[
        list[str] | None,
        typer.Option("--voices", help="Only these voices (repeatable or comma-separated)."),
    ] = None,
    ids: Annotated[
        list[str] | None, typer.Option("--ids", help="Only these question ids (repeatable).")
    ] = None,
    media: Annotated[
        Path | None, typer.Option(help="Keep each question's MP4 and JSON in this folder.")
    ] = None,
    fakes: Annotated[
        bool,
        typer.Option(help="Point Deepgram/Anthropic/ElevenLabs at local fakes (tests/fakes)."),
    ] = False,
    questions: Annotated[
        Path | None,
        typer.Option(help="A question set of your own (the schema of the bundled one)."),
    ] = None,
    noise: Annotated[
        str | None,
        typer.Option(
            help="Room noise under every question, KIND:SNR_DB (pink, brown, hum, babble), "
            "e.g. pink:15."
        ),
    ] = None,
    set_: SetOption = None,
) -> None:
    """Spoken questions in real time: word error, answered right, splits, talk-over, latency."""
    setup_logging(0)
    import shlex
    import sys

    from presence.benchmarks.conversation.report import print_table
    from presence.benchmarks.conversation.runner import run_conversation_benchmark

    def split(values: list[str] | None) -> list[str] | None:
        out = [v.strip() for item in values or [] for v in item.split(",") if v.strip()]
        return out or None

    def progress(row: dict) -> None:
        console.print(
            f"{row['id']} {row['voice']}: wer {row['wer']:.2f}, "
            f"{'right' if row['answered_right'] else 'wrong'}, turns {row['user_turns']}, "
            f"audio {row['first_audio_ms']} ms, frame {row['first_frame_ms']} ms",
            highlight=False,
        )

    setup = None
    if fakes:
        from presence.benchmarks.conversation.cloud import fakes_for as setup
        from presence.benchmarks.conversation.cloud import use_dummy_keys

        use_dummy_keys()

    try:
        result = run_conversation_benchmark(
            str(pipeline),
            set_ or [],
            json_path=str(json_out) if json_out else None,
            plot_path=str(plot) if plot else None,
            limit=limit,
            voices=split(voices),
            ids=split(ids),
            media_dir=str(media) if media else None,
            **({"questions_file": questions} if questions else {}),
            noise=noise,
            command="presence " + shlex.join(sys.argv[1:]),
            on_row=progress,
            setup=setup,
        )
    except PresenceError as exc:
        raise fail(exc) from None
    print_table(result)


@bench_app.command("soak")
def bench_soak(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")] = DEFAULT_PIPELINE,
    minutes: Annotated[
        float, typer.Option(help="How long the call is held (may be a fraction).")
    ] = 30.0,
    sample_s: Annotated[float, typer.Option("--sample-s", help="Seconds between samples.")] = 60.0,
    warmup_s: Annotated[
        float, typer.Option("--warmup-s", help="Left out of the flatness verdict.")
    ] = 60.0,
    questions: Annotated[int, typer.Option(help="How many benchmark questions are looped.")] = 6,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the samples here.")] = None,
    set_: SetOption = None,
) -> None:
    """One WebRTC call held for N minutes, questions looped: memory, fds, threads, tasks, drift."""
    setup_logging(0)
    import shlex
    import sys

    from presence.benchmarks.soak.report import print_table
    from presence.benchmarks.soak.runner import run_soak_benchmark

    def progress(sample) -> None:
        console.print(
            f"{sample.t_s / 60:5.1f} min: rss {sample.rss_mb} MiB, fds {sample.fds}, "
            f"threads {sample.threads}, tasks {sample.tasks}, drift {sample.drift_frames} frames, "
            f"repeated {sample.repeated}, answered {sample.answers}/{sample.questions}",
            highlight=False,
        )

    try:
        result = run_soak_benchmark(
            str(pipeline),
            set_ or [],
            minutes=minutes,
            sample_s=sample_s,
            warmup_s=warmup_s,
            questions=questions,
            json_path=str(json_out) if json_out else None,
            plot_path=str(plot) if plot else None,
            command="presence " + shlex.join(sys.argv[1:]),
            on_sample=progress,
        )
    except PresenceError as exc:
        raise fail(exc) from None
    print_table(result)


def _argv_bench(bench_main, ctx: typer.Context) -> None:
    """Run an argparse benchmark's ``main`` on the passed-through arguments, errors as CLI errors."""
    setup_logging(0)
    try:
        bench_main(list(ctx.args))
    except PresenceError as exc:
        raise fail(exc) from None


@bench_app.command("renderer", context_settings=PASSTHROUGH, add_help_option=False)
def bench_renderer(ctx: typer.Context) -> None:
    """Renderer fps, lateness, drift and lip-sync lag (--provider --size --seconds --device --json)."""
    from presence.benchmarks.renderer import main as bench_main

    _argv_bench(bench_main, ctx)


@bench_app.command("retrieval", context_settings=PASSTHROUGH, add_help_option=False)
def bench_retrieval(ctx: typer.Context) -> None:
    """Knowledge-base retrieval time on a synthetic base (--passages or --chunks, --queries, --json)."""
    setup_logging(0)
    from presence.benchmarks.retrieval import main as bench_main

    bench_main(list(ctx.args))


@bench_app.command("judge", context_settings=PASSTHROUGH, add_help_option=False)
def bench_judge(ctx: typer.Context) -> None:
    """What an LLM judge of guardrails adds to a turn (--judge-ms --turns --timeout-ms --json)."""
    from presence.benchmarks.judge import main as bench_main

    _argv_bench(bench_main, ctx)


@bench_app.command("turns", context_settings=PASSTHROUGH, add_help_option=False)
def bench_turns(ctx: typer.Context) -> None:
    """End-of-turn decisions on every voice, offline (--voices --questions --decode-ms --json)."""
    setup_logging(0)
    from presence.benchmarks.turns import main as bench_main

    try:
        bench_main(list(ctx.args))
    except PresenceError as exc:
        raise fail(exc) from None


@bench_app.command("perception")
def bench_perception(
    seconds: Annotated[float, typer.Option(help="Length of the scripted camera clip.")] = 8.0,
    every_ms: Annotated[int, typer.Option(help="Sampling period of the camera.")] = 200,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """Perception engine cost per frame, and audio lateness with perception on vs off."""
    setup_logging(0)
    import json

    from presence.benchmarks.perception import run_perception_benchmark

    report = run_perception_benchmark(seconds=seconds, every_ms=every_ms)
    if json_out:
        json_out.write_text(json.dumps(report, indent=2))


@bench_app.command("sessions")
def bench_sessions(
    placement: Annotated[
        str, typer.Option(help="process (session processes here) or ray (a Ray actor each).")
    ] = "ray",
    sessions: Annotated[int, typer.Option(help="Conversations created at once.")] = 2,
    nodes: Annotated[int, typer.Option(help="Local Ray node processes to start (ray).")] = 2,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Join this Ray cluster instead.")
    ] = None,
    cpus_per_node: Annotated[
        float | None,
        typer.Option(help="Logical CPUs each local node offers (default: its share of calls)."),
    ] = None,
    pin: Annotated[bool, typer.Option(help="Run each local node on its own cores.")] = True,
    worker_niceness: Annotated[
        int, typer.Option(help="Niceness of the local nodes' Ray workers (Ray's default: 15).")
    ] = 0,
    size: Annotated[int, typer.Option(help="The persona's video size (px, square).")] = 256,
    fps: Annotated[int, typer.Option(help="The renderer's frame rate.")] = 25,
    hold_s: Annotated[float, typer.Option("--hold-s", help="Seconds held after answers.")] = 10.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report here.")] = None,
) -> None:
    """N conversations through the service, each joined by a WebRTC user who asks a question."""
    setup_logging(0)
    import shlex
    import sys

    from presence.benchmarks.sessions.report import print_table
    from presence.benchmarks.sessions.runner import run_sessions_benchmark

    try:
        report = run_sessions_benchmark(
            placement=placement,
            sessions=sessions,
            nodes=nodes,
            ray_address=ray_address,
            cpus_per_node=cpus_per_node,
            pin=pin,
            worker_niceness=worker_niceness,
            size=size,
            fps=fps,
            hold_s=hold_s,
            json_path=json_out,
            command="presence " + shlex.join(sys.argv[1:]),
        )
    except PresenceError as exc:
        raise fail(exc) from None
    print_table(report)
