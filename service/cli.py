"""``presence serve``: run the conversations service (the lead mounts ``serve`` on the main CLI).

Also ``python -m presence.service.cli openapi`` rewrites ``service/openapi.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from presence.framework.errors import PresenceError

console = Console(stderr=True)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path | None = None,
    database_url: str | None = None,
    placement: str | None = None,
    ray_address: str | None = None,
) -> None:
    """Serve the REST API, the join pages and the webhook outbox until Ctrl-C.

    Args:
        host: Interface to listen on.
        port: TCP port.
        data_dir: Database file, uploads and recordings (``PRESENCE_DATA_DIR``, default
            ``./presence-data``).
        database_url: SQLAlchemy URL (``PRESENCE_DATABASE_URL``; default SQLite in the data dir).
        placement: ``process`` or ``ray`` (``PRESENCE_PLACEMENT``; default ``process``).
        ray_address: Ray cluster for ``ray`` placement (``PRESENCE_RAY_ADDRESS``).

    Raises:
        PresenceError: The settings are invalid (printed by the caller).
    """
    import uvicorn

    from presence.service.app import create_app
    from presence.service.settings import ServiceSettings

    settings = ServiceSettings.from_env(
        data_dir=data_dir,
        database_url=database_url,
        host=host,
        port=port,
        announce=lambda message: console.print(f"[yellow]{escape(message)}[/]"),
        placement=placement,
        ray_address=ray_address,
    )
    app = create_app(settings)
    console.print(
        f"presence service on [bold]{settings.public_url}[/] (API docs {settings.public_url}/docs); "
        f"data in {settings.data_dir}"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def openapi_app():
    """An app built with throwaway settings, only for its OpenAPI description."""
    from presence.service.app import create_app
    from presence.service.settings import ServiceSettings

    settings = ServiceSettings(data_dir=Path("."), api_keys=["unused"], webhook_secret="unused")
    return create_app(settings, launcher=_NoLauncher())


class _NoLauncher:
    async def start(self, spec, events):  # pragma: no cover - never started
        raise RuntimeError("not serving")

    async def end(self, handle, reason):  # pragma: no cover
        return None

    def join_app(self, conversation_id):
        return None


def main(argv: list[str] | None = None) -> int:
    """``serve`` or ``openapi`` from the command line."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["openapi"]:
        from presence.service.app import write_openapi

        console.print(f"wrote {write_openapi(openapi_app())}")
        return 0
    try:
        serve()
    except PresenceError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
