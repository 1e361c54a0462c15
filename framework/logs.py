"""Logging setup: loguru to stderr, quiet by default, pipecat's chatter kept at WARNING."""

from __future__ import annotations

import sys

from loguru import logger


def setup_logging(verbose: int = 0) -> None:
    """Configure loguru for the CLI.

    Args:
        verbose: 0 shows warnings and presence's INFO lines, 1 shows all INFO, 2 shows DEBUG.
    """
    logger.remove()
    level = {0: "INFO", 1: "INFO", 2: "DEBUG"}.get(verbose, "DEBUG")

    def keep(record) -> bool:
        if verbose >= 1:
            return True
        name = record["name"] or ""
        return name.startswith("presence") or record["level"].no >= 30

    def write(message: str) -> None:  # the stderr of the moment (a caller may have replaced it)
        sys.stderr.write(message)

    logger.add(
        write,
        colorize=sys.stderr.isatty(),
        level=level,
        filter=keep,
        format="<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
        "<cyan>{name}</cyan> {message}",
    )
