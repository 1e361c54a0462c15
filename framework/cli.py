"""The ``presence`` command line: run, validate, providers, bench, replica, serve."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from presence.framework.errors import PresenceError
from presence.framework.logs import setup_logging

app = typer.Typer(
    help="presence: real-time conversational video AI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks: latency, renderer, perception, retrieval.")
replica_app = typer.Typer(help="Register replicas (the faces personas wear).")
app.add_typer(bench_app, name="bench")
app.add_typer(replica_app, name="replica")

console = Console(stderr=True)
DEFAULT_PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "local.yaml"

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field by dotted path: PATH=VALUE (repeatable)."),
]
Verbose = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs (-vv debug).")]


def fail(exc: BaseException) -> typer.Exit:
    """Print a presence error as one readable line and return the exit to raise."""
    console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code=2)


def _load(pipeline: Path, overrides: list[str] | None):
    from presence.framework.config import load_pipeline

    return load_pipeline(pipeline, overrides or [])


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
    stages = ", ".join(f"{s}={c.provider.name}" for s, c in loaded.stages.items())
    console.print(f"[green]ok[/] {pipeline}: persona '{loaded.persona.name}', {stages}")


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
            default = "required" if info.is_required() else repr(info.default)
            params.append(f"{name}={default}")
        table.add_row(p.stage, p.name, "\n".join(params) or "-", p.summary)
    Console().print(table)


def main() -> None:
    """Entry point of the ``presence`` script."""
    app()


if __name__ == "__main__":
    main()
