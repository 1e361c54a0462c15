"""The ``presence`` command line: run, validate, providers, bench, replica, serve, mcp."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from presence.framework.cli_bench import bench_app
from presence.framework.cli_common import DEFAULT_PIPELINE, SetOption, Verbose, console, fail
from presence.framework.errors import PresenceError
from presence.framework.logs import setup_logging
from presence.framework.memory import limit_malloc_arenas

app = typer.Typer(
    help="presence: real-time conversational video AI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
replica_app = typer.Typer(help="Register replicas (the faces personas wear).")
app.add_typer(bench_app, name="bench")
app.add_typer(replica_app, name="replica")

__all__ = ["app", "fail", "main"]


@app.callback()
def _process() -> None:
    # every command: cap glibc's malloc arenas before the runtimes start their threads, so a long
    # call's memory levels off (framework/memory.py)
    limit_malloc_arenas()


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
        typer.Option(
            "--input",
            help="An audio file (WAV, FLAC, OGG, MP3, …) used as the user's microphone (file transport).",
        ),
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
        if (input_ is None) != (output is None):
            raise typer.BadParameter("--input and --output go together")
        if input_ is not None:  # a wrong file is refused before any model loads
            from presence.transports.file.media import load_wav_info

            load_wav_info(input_)
        loaded = _load(pipeline, set_)
        if input_ is not None and output is not None:
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
