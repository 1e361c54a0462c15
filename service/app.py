"""The FastAPI app of the conversations service.

``create_app(settings, launcher=None)`` wires the database (versioned schema), the webhook outbox
worker, the session supervisor and the routes:

- ``/v2/personas``, ``/v2/replicas``, ``/v2/conversations``, ``/v2/documents``,
  ``/v2/memories``, ``/v2/usage``, ``/v2/guardrails``, ``/v2/objectives``: need ``x-api-key``;
- ``/c/{conversation_id}/``: the browser page bound to a live conversation, and its SmallWebRTC
  signalling under ``/c/{id}/api/``. These are opened by the person joining the call, who has no
  API key: the unguessable conversation id is the capability (as a meeting link is);
- ``/openapi.json``: the API description (also written to ``service/openapi.json``);
- ``/llms.txt``: the same description as plain text for agents (no key needed).
"""

from __future__ import annotations

import asyncio
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse
from loguru import logger
from sqlalchemy import select
from starlette.exceptions import HTTPException

from presence.service.db import (
    ConversationRow,
    PersonaRow,
    ReplicaRow,
    default_database_url,
    init_db,
    make_engine,
)
from presence.service.document_store import resume_fetches
from presence.service.errors import http_error, publish_error_shape, validation_error
from presence.service.instances import Instances
from presence.service.routes import (
    conversations,
    documents,
    interactions,
    memories,
    personas,
    replicas,
    rulesets,
)
from presence.service.settings import ServiceSettings
from presence.service.storage import check_storage, store_recording
from presence.service.supervisor import SessionLauncher, Supervisor
from presence.service.webhooks import OutboxWorker

API_VERSION = "2.0.0"
DESCRIPTION = """Self-hosted conversational video: personas, replicas, conversations, documents
(the knowledge base) and memories with the nouns and fields of Tavus CVI. Every `/v2` route needs an `x-api-key` header. Webhooks to a
conversation's `callback_url` are signed (HMAC-SHA256, headers `x-presence-timestamp` and
`x-presence-signature: v1=<hex>` over `"{timestamp}." + body`) and retried with exponential
backoff from a durable outbox. A refused request (4xx) answers Tavus's shape: `error`, one
sentence naming the field or resource at fault (a 401 also has `message`), beside FastAPI's
`detail` (for a 422, the list of field errors)."""


class JoinDispatcher:
    """ASGI middleware: ``/c/{id}/api/...`` goes to that conversation's signalling app."""

    def __init__(self, app: Any, resolve):
        self.app = app
        self._resolve = resolve

    async def __call__(self, scope, receive, send):
        """Route one ASGI request."""
        if scope["type"] == "http" and scope["path"].startswith("/c/"):
            parts = scope["path"].split("/", 3)
            if len(parts) == 4 and parts[3].startswith("api/"):
                sub = self._resolve(parts[2])
                if sub is not None:
                    child = dict(scope)
                    child["path"] = "/" + parts[3]
                    child["raw_path"] = child["path"].encode()
                    child["root_path"] = ""
                    await sub(child, receive, send)
                    return
        await self.app(scope, receive, send)


def _page() -> str:
    """The browser page (its ``api/...`` URLs are relative: under ``/c/{id}/`` they are its own)."""
    from presence.transports.webrtc import WEB_DIR

    return (WEB_DIR / "index.html").read_text()


def create_app(settings: ServiceSettings, launcher: SessionLauncher | None = None) -> FastAPI:
    """The service app.

    Args:
        settings: Data folder, database, keys, webhook policy, session cap.
        launcher: Runs conversations' pipelines; default ``WebRTCLauncher`` (browser page).
    """
    check_storage(settings)
    if launcher is None:
        launcher = default_launcher(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url or default_database_url(settings.data_dir))
        sessions = init_db(engine)
        outbox = OutboxWorker(
            sessions,
            settings.webhook_secret,
            backoff_initial=settings.webhook_backoff_initial,
            backoff_max=settings.webhook_backoff_max,
            retry_horizon=settings.webhook_retry_horizon,
            timeout=settings.webhook_timeout,
            poll_interval=settings.outbox_poll_interval,
        )
        supervisor = Supervisor(
            sessions,
            launcher,
            outbox,
            max_sessions=settings.max_sessions,
            public_url=settings.public_url,
            store_recording=lambda path, cid: store_recording(settings, path, cid),
            after_end=lambda cid, spec: _after_end(sessions, settings, cid, spec),
            instances=Instances(
                sessions, settings.instance_id, stale_after=settings.instance_stale_after
            ),
            heartbeat_interval=settings.heartbeat_interval,
        )
        app.state.sessions = sessions
        app.state.outbox = outbox
        app.state.supervisor = supervisor
        left_live = _live_with_memories(sessions)
        await supervisor.recover_calls()
        recovering = [
            asyncio.create_task(_remember_recovered(sessions, settings, cid))
            for cid in _ended(sessions, left_live)  # not those adopted or run by another replica
        ]
        # knowledge folders of conversations a stopped service left behind (none is live now)
        shutil.rmtree(settings.data_dir / "conversations", ignore_errors=True)
        supervisor.watch_replicas()
        _resume_replicas(sessions, settings)
        resume_fetches(app)
        outbox.start()
        warm = getattr(launcher, "warm", None)
        if warm is not None:
            await warm()
        logger.info(
            f"presence service ready; database {engine.url.render_as_string(hide_password=True)}"
        )
        try:
            yield
        finally:
            await supervisor.close()
            await asyncio.gather(*recovering, return_exceptions=True)
            await outbox.stop()
            engine.dispose()

    app = FastAPI(
        title="presence conversations API",
        version=API_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.launcher = launcher
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.openapi = lambda: publish_error_shape(FastAPI.openapi(app))  # type: ignore[method-assign]
    app.include_router(personas.router)
    app.include_router(replicas.router)
    app.include_router(conversations.router)
    app.include_router(conversations.usage_router)
    app.include_router(interactions.router)
    app.include_router(rulesets.guardrails_router)
    app.include_router(rulesets.objectives_router)
    app.include_router(documents.router)
    app.include_router(memories.router)

    @app.get("/llms.txt", include_in_schema=False, response_class=PlainTextResponse)
    async def llms_txt():
        if getattr(app.state, "llms_txt", None) is None:
            from presence.service.llms_txt import render

            app.state.llms_txt = render(app, settings.public_url)
        return PlainTextResponse(app.state.llms_txt)

    @app.get("/c/{conversation_id}", include_in_schema=False)
    async def join_redirect(conversation_id: str):
        return RedirectResponse(f"/c/{conversation_id}/")

    @app.get("/c/{conversation_id}/", include_in_schema=False, response_class=HTMLResponse)
    async def join_page(conversation_id: str):
        if launcher.join_app(conversation_id) is None:
            return HTMLResponse(
                "<!doctype html><title>presence</title><p>This conversation has ended or does "
                "not exist.</p>",
                status_code=404,
            )
        return HTMLResponse(_page(), headers={"Cache-Control": "no-store"})

    try:
        from fastapi.staticfiles import StaticFiles

        from presence.transports.webrtc import WEB_DIR

        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    except ImportError:
        logger.warning("browser page not available: presence.transports.webrtc is missing")

    app.add_middleware(JoinDispatcher, resolve=launcher.join_app)
    return app


def default_launcher(settings: ServiceSettings) -> SessionLauncher:
    """The launcher ``settings.session_isolation`` asks for (a process per conversation by default)."""
    if settings.placement == "ray":
        from presence.service.ray_launcher import RayLauncher

        return RayLauncher.from_settings(settings)
    if settings.session_isolation == "inline":
        from presence.service.launcher import WebRTCLauncher

        return WebRTCLauncher(
            ice_host_addresses=settings.ice_host_addresses, ice_servers=settings.ice_servers
        )
    from presence.service.process_launcher import ProcessLauncher

    return ProcessLauncher(
        ice_host_addresses=settings.ice_host_addresses, ice_servers=settings.ice_servers
    )


async def _after_end(sessions, settings: ServiceSettings, cid: str, spec) -> None:
    """An ended conversation: remember what its user shared, drop its knowledge folder."""
    from presence.service.knowledge import conversation_dir
    from presence.service.memories import remember

    await remember(sessions, cid, spec)
    shutil.rmtree(conversation_dir(settings, cid), ignore_errors=True)


def _live_with_memories(sessions) -> list[str]:
    """Conversations a stopped service left live that have memory stores."""
    with sessions() as db:
        rows = db.scalars(select(ConversationRow).where(ConversationRow.status == "active"))
        return [r.id for r in rows if (r.tavus_fields or {}).get("memory_stores")]


def _ended(sessions, cids: list[str]) -> list[str]:
    """Those of ``cids`` that have ended."""
    with sessions() as db:
        return [
            cid for cid in cids if (row := db.get(ConversationRow, cid)) and row.status == "ended"
        ]


async def _remember_recovered(sessions, settings: ServiceSettings, cid: str) -> None:
    """Extract the memories of a conversation the service was stopped in (its stored transcript)."""
    from types import SimpleNamespace

    from presence.service.memories import remember
    from presence.service.pipelines import conversation_spec

    def spec():
        with sessions() as db:
            row = db.get(ConversationRow, cid)
            persona = db.get(PersonaRow, row.persona_id) if row and row.persona_id else None
            try:
                return conversation_spec(settings, row, persona, None)
            except Exception:  # its persona changed since: the LLM is then unknown, rules apply
                return SimpleNamespace(pipeline=settings.base_pipeline, overrides=[])

    await remember(sessions, cid, await asyncio.to_thread(spec))


def _resume_replicas(sessions, settings: ServiceSettings) -> None:
    from presence.service.routes.replicas import register_in_background

    with sessions() as db:
        ids = db.scalars(select(ReplicaRow.id).where(ReplicaRow.status == "training")).all()
    for rid in ids:
        register_in_background(sessions, rid, settings.data_dir / "replica-cache")


def write_openapi(app: FastAPI, path: Path | None = None) -> Path:
    """Write the app's OpenAPI description as JSON (default ``service/openapi.json``)."""
    import json

    path = path or Path(__file__).resolve().parent / "openapi.json"
    path.write_text(json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n")
    return path
