"""What the ``presence`` command line's modules share: the console, common options, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)

DEFAULT_PIPELINE = Path(__file__).resolve().parent.parent / "pipelines" / "local.yaml"

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a field by dotted path: PATH=VALUE (repeatable)."),
]
Verbose = Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logs (-vv debug).")]

PASSTHROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
"""Context settings of a command that hands its arguments to an argparse ``main`` unread."""


def fail(exc: BaseException) -> typer.Exit:
    """Print a presence error as one readable line and return the exit to raise."""
    # the message quotes user input (a --set value, a file's text): never read it as markup
    console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)
