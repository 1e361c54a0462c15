"""The ``presence`` command line: run, validate, providers, bench, replica, serve, mcp."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from presence.framework.errors import PresenceError
from presence.framework.logs import setup_logging
from presence.framework.memory import limit_malloc_arenas

app = typer.Typer(
    help="presence: real-time conversational video AI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(
    help="Benchmarks: latency, conversation, turns, soak, renderer, perception, retrieval, judge."
)
replica_app = typer.Typer(help="Register replicas (the faces personas wear).")
app.add_typer(bench_app, name="bench")
app.add_typer(replica_app, name="replica")

console = Console(stderr=True)


@app.callback()
def _process() -> None:
    # every command: cap glibc's malloc arenas before the runtimes start their threads, so a long
    # call's memory levels off (framework/memory.py)
    limit_malloc_arenas()


DEFAULT_PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "local.yaml"

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field by dotted path: PATH=VALUE (repeatable)."),
]
Verbose = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs (-vv debug).")]


def fail(exc: BaseException) -> typer.Exit:
    """Print a presence error as one readable line and return the exit to raise."""
    # the message quotes user input (a --set value, a file's text): never read it as markup
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _load(pipeline: Path, overrides: list[str] | None):
    """The pipeline through the public API (``presence.load_pipeline``), as a library user gets it."""
    import presence

    return presence.load_pipeline(pipeline, overrides or [])


@app.command()
def validate(
    pipeline: Annotated[Path, typer.Argument(help="Pipeline YAML file.")],
    set_: SetOption = None,
) -> None:
    """Validate a pipeline file (and its persona) without starting anything."""
    setup_logging(0)
    try:
        loaded = _load(pipeline, set_)
    except PresenceError as exc:
        raise fail(exc) from None
    stages = ", ".join(f"{s}={name}" for s, name in loaded.providers.items())
    stages += "".join(f", {i.at}+={i.provider.name}" for i in loaded.loaded.inserts)
    console.print(
        f"[green]ok[/] {escape(str(pipeline))}: persona '{escape(loaded.persona.name)}', "
        f"{escape(stages)}"
    )


@app.command()
def providers() -> None:
    """List every provider by stage, with its parameters and defaults."""
    from presence.framework.registry import providers as all_providers

    table = Table(title="presence providers")
    for col in ("stage", "provider", "parameters", "what it is"):
        table.add_column(col)
    for p in all_providers():
        params = []
        for name, info in p.params.model_fields.items():
            if info.is_required():
                default = "required"
            else:
                default = repr(info.get_default(call_default_factory=True))
            params.append(f"{name}={default}")
        table.add_row(p.stage, p.name, "\n".join(params) or "-", p.summary)
    Console().print(table)


@app.command()
def run(
    pipeline: Annotated[
        Path, typer.Argument(help="Pipeline YAML file (default: the offline pipelines/local.yaml).")
    ] = DEFAULT_PIPELINE,
    input_: Annotated[
        Path | None,
        typer.Option("--input", help="A WAV used as the user's microphone (file transport)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", help="MP4 to write (with --input); JSON beside it.")
    ] = None,
    camera: Annotated[
        Path | None, typer.Option("--camera", help="A .y4m or .mp4 used as the user's camera.")
    ] = None,
    fast: Annotated[
        bool, typer.Option("--fast", help="Feed the input faster than real time (file transport).")
    ] = False,
    host: Annotated[str | None, typer.Option(help="Interface for the browser page.")] = None,
    port: Annotated[int | None, typer.Option(help="Port for the browser page.")] = None,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the page in the default browser once it is up.")
    ] = False,
    set_: SetOption = None,
    verbose: Verbose = 0,
) -> None:
    """Run a pipeline: serve the browser page, join a room, or process files with --input."""
    setup_logging(verbose)
    try:
        loaded = _load(pipeline, set_)
        if input_ is not None or output is not None:
            if input_ is None or output is None:
                raise typer.BadParameter("--input and --output go together")
            report = loaded.run_file(input_, output, camera=camera, fast=fast)
            _print_file_report(report, output)
            return
        if getattr(loaded.transport, "kind", "webrtc") == "file":
            raise typer.BadParameter(
                "this pipeline's transport is 'file': pass --input and --output"
            )

        def ready(url: str) -> None:
            console.print(
                f"[bold green]presence[/] {loaded.persona.name} is live at [bold]{url}[/]"
            )
            typer.echo(url)
            if open_browser:
                import webbrowser

                webbrowser.open(url)

        loaded.serve(host=host, port=port, on_ready=ready)
    except PresenceError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        console.print("stopped")


def _print_file_report(report: dict, output: Path) -> None:
    turns = report.get("turns", [])
    for turn in turns:
        console.print(f"[bold]{turn['role']}:[/] {escape(turn['content'])}", highlight=False)
    v2v = [t["voice_to_voice_ms"] for t in report.get("timings", []) if t.get("voice_to_voice_ms")]
    if v2v:
        console.print(f"voice-to-voice: {', '.join(f'{v:.0f} ms' for v in v2v)}")
    console.print(f"wrote {output} and {output.with_suffix('.json')}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the database, replicas and recordings live."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", envvar="PRESENCE_DATABASE_URL", help="SQLAlchemy URL."),
    ] = None,
    placement: Annotated[
        str | None,
        typer.Option(
            "--placement",
            help="Where conversations run: process (this machine, default) or ray (a Ray cluster).",
        ),
    ] = None,
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", help="Ray cluster address for --placement ray."),
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Start the conversations service (REST API under /v2, webhooks, sessions)."""
    setup_logging(verbose)
    from presence.service.cli import serve as serve_service

    try:
        serve_service(
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            placement=placement,
            ray_address=ray_address,
        )
    except PresenceError as exc:
        raise fail(exc) from None


@app.command()
def mcp(
    url: Annotated[
        str, typer.Option(envvar="PRESENCE_URL", help="The presence service to drive.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="PRESENCE_API_KEY", help="One of its API keys."),
    ] = None,
    transport: Annotated[
        str, typer.Option(help="stdio (launched by an MCP client) or http (streamable HTTP).")
    ] = "stdio",
    host: Annotated[str, typer.Option(help="Interface for --transport http.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for --transport http (path /mcp).")] = 8765,
    verbose: Verbose = 0,
) -> None:
    """Serve MCP tools for agents: create/list personas and conversations, end, transcript."""
    setup_logging(verbose)
    from presence.framework.optional import require

    try:
        require("mcp", extra="mcp")
        from presence.service.mcp_server import run_mcp

        run_mcp(url, api_key, transport=transport, host=host, port=port)
    except PresenceError as exc:
        raise fail(exc) from None


PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


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


@replica_app.command("create")
def replica_create(
    source: Annotated[Path, typer.Argument(help="A portrait image or a short video of one face.")],
    name: Annotated[str | None, typer.Option(help="Name of the replica.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Replica cache folder.")] = None,
) -> None:
    """Register a replica: find the face, precompute what the renderer needs, cache it."""
    setup_logging(0)
    from presence.processors.renderer.replica import create_replica_cli

    try:
        create_replica_cli(source, name, cache_dir)
    except PresenceError as exc:
        raise fail(exc) from None


def main() -> None:
    """Entry point of the ``presence`` script."""
    app()


if __name__ == "__main__":
    main()
