"""Daily rooms for conversations whose persona transport is ``daily``.

One room per conversation, made through Daily's REST API with pipecat's ``DailyRESTHelper``::

    DailyRooms.create(spec) ─▶ POST /rooms          name presence-<conversation id>, public,
                                                    max 2 participants, exp = now +
                                                    max_call_duration + EXPIRY_MARGIN_SECS,
                                                    participants ejected at exp
                           ─▶ POST /meeting-tokens  the persona's token (is_owner) for that room
                           ◀─ DailyRoom(url, name, token): ``url`` is the ``conversation_url``
    run_daily_session(loaded, room, events)         the persona joins the room (pipecat
                                                    ``DailyTransport``) and the pipeline runs
    DailyRooms.delete(room)  ─▶ DELETE /rooms/{name}  (ends the meeting for anyone still in it)

The room is public: like the browser page's ``/c/{id}/``, its unguessable name (the conversation
id) is the invitation, and ``max_participants`` 2 keeps it to the persona and one user.

The API key comes from ``DAILY_API_KEY`` and is never logged; ``PRESENCE_DAILY_API_URL`` points the
service at another endpoint (a local fake in the tests). Every REST failure (rejected key, other
4xx/5xx, unreachable API) raises ``LaunchError`` with stage ``transport`` and the reason.

In the call, the user joining or coming back reports ``events.joined`` (the persona greets on the
first join only) and leaving reports ``events.left``; the pipeline keeps running while nobody is
there, so the supervisor's ``participant_left_timeout`` decides when the conversation ends. A
persona that cannot join the room (bad URL or token, no network: daily-python gives up after about
20 s here) reports ``events.failed("transport", ...)`` and the session ends.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from loguru import logger
from pipecat.transports.daily.utils import (
    DailyRESTHelper,
    DailyRoomParams,
    DailyRoomProperties,
)

from presence.service.session_run import LaunchError, run_pipeline_session
from presence.service.session_spec import ConversationSpec, SessionEvents

DAILY_API_URL = "https://api.daily.co/v1"
EXPIRY_MARGIN_SECS = 60
"""Room (and token) lifetime beyond ``max_call_duration``, so the supervisor ends the call first."""
TOKEN_TTL_SECS = 24 * 3600
"""Lifetime of the persona's token when the conversation has no ``max_call_duration``."""
REQUEST_TIMEOUT_SECS = 15.0
ROOM_PREFIX = "presence-"


@dataclass
class DailyRoom:
    """A conversation's Daily room.

    Attributes:
        url: ``https://<domain>.daily.co/<name>``: the ``conversation_url``.
        name: The room's name (``presence-<conversation id>``).
        token: The persona's meeting token (owner of the room). Secret: not in ``repr``.
        expires_at: Unix time the room expires and its participants are ejected, or ``None``.
    """

    url: str
    name: str
    token: str = field(repr=False)
    expires_at: float | None = None


def room_name(conversation_id: str) -> str:
    """The Daily room name of a conversation (Daily allows ``A-Z a-z 0-9 - _``)."""
    return (ROOM_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "-", conversation_id))[:128]


_STATUS = re.compile(r"\(status: (\d+)\): (.*)", re.S)


def _reason(exc: Exception, action: str, api_url: str) -> str:
    """A user-facing reason for a failed ``DailyRESTHelper`` call (never includes the key)."""
    if isinstance(exc, TimeoutError):
        return f"Daily's API at {api_url} did not answer in time ({action})"
    if isinstance(exc, aiohttp.ClientConnectionError):
        return f"cannot reach Daily's API at {api_url} to {action}: {exc}"
    match = _STATUS.search(str(exc))
    if match is None:
        return f"Daily's API answered unexpectedly ({action}): {exc}"
    status, body = int(match.group(1)), match.group(2).strip()[:300]
    if status in (401, 403):
        return (
            f"Daily rejected DAILY_API_KEY ({status}): check the key at "
            f"https://dashboard.daily.co/developers ({body})"
        )
    if status >= 500:
        return f"Daily's API failed ({status}) to {action}; retry later ({body})"
    return f"Daily refused to {action} ({status}): {body}"


class DailyRooms:
    """Creates and deletes conversations' Daily rooms.

    Args:
        api_key: Daily API key; default ``DAILY_API_KEY``. ``create`` fails when neither is set.
        api_url: Base URL of the REST API; default ``PRESENCE_DAILY_API_URL`` or Daily's.
        timeout_s: Limit for each REST request.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        timeout_s: float = REQUEST_TIMEOUT_SECS,
    ):
        self._api_key = api_key if api_key is not None else os.environ.get("DAILY_API_KEY")
        self.api_url = (
            api_url or os.environ.get("PRESENCE_DAILY_API_URL") or DAILY_API_URL
        ).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None

    def _helper(self) -> DailyRESTHelper:
        if not self._api_key:
            raise LaunchError(
                "this persona's transport is Daily but DAILY_API_KEY is not set: set it to a key "
                "from https://dashboard.daily.co/developers and restart the service",
                stage="transport",
            )
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        return DailyRESTHelper(
            daily_api_key=self._api_key, daily_api_url=self.api_url, aiohttp_session=self._http
        )

    async def create(self, spec: ConversationSpec) -> DailyRoom:
        """Create the conversation's room and the persona's owner token.

        Raises:
            LaunchError: No API key, or Daily refused or could not be reached (stage
                ``transport``). A room whose token could not be made is deleted again.
        """
        helper = self._helper()
        duration = spec.properties.get("max_call_duration")
        ttl = float(duration) + EXPIRY_MARGIN_SECS if duration is not None else None
        expires_at = time.time() + ttl if ttl is not None else None
        params = DailyRoomParams(
            name=room_name(spec.conversation_id),
            privacy="public",
            properties=DailyRoomProperties(
                exp=round(expires_at) if expires_at is not None else None,
                eject_at_room_exp=True,
                max_participants=2,
            ),
        )
        try:
            created = await helper.create_room(params)
        except Exception as exc:
            raise LaunchError(
                _reason(exc, "create the room", self.api_url), stage="transport"
            ) from None
        room = DailyRoom(url=created.url, name=created.name, token="", expires_at=expires_at)
        try:
            room.token = await helper.get_token(
                created.url, expiry_time=ttl or TOKEN_TTL_SECS, owner=True
            )
        except Exception as exc:
            reason = _reason(exc, "create the persona's meeting token", self.api_url)
            try:
                await self.delete(room)
            except LaunchError as cleanup:
                logger.warning(f"Daily room {room.name} was left behind: {cleanup}")
            raise LaunchError(reason, stage="transport") from None
        logger.info(f"conversation {spec.conversation_id}: Daily room {room.url}")
        return room

    async def delete(self, room: DailyRoom) -> None:
        """Delete the room, ending the meeting for anyone in it (a room already gone is fine).

        Raises:
            LaunchError: Daily refused or could not be reached (stage ``transport``).
        """
        try:
            await self._helper().delete_room_by_name(room.name)
        except LaunchError:
            raise
        except Exception as exc:
            raise LaunchError(
                _reason(exc, f"delete room {room.name}", self.api_url), stage="transport"
            ) from None

    async def close(self) -> None:
        """Close the HTTP session (``create`` opens a new one if called again)."""
        if self._http is not None:
            await self._http.close()
            self._http = None


def build_room_transport(loaded: Any, room: DailyRoom) -> Any:
    """A pipecat ``DailyTransport`` into ``room`` with the pipeline's video size and camera rate.

    The participant name is the transport's ``bot_name`` when the pipeline sets one, else the
    persona's name.

    Raises:
        ImportError: daily-python is not installed.
    """
    from presence.transports.daily import build_daily_transport
    from presence.transports.factory import DailySpec

    configured = loaded.transport
    values: dict[str, Any] = {"room_url": room.url, "token": room.token}
    for key in ("video", "camera_fps"):
        if getattr(configured, key, None) is not None:
            values[key] = getattr(configured, key)
    if isinstance(configured, DailySpec) and "bot_name" in configured.model_fields_set:
        values["bot_name"] = configured.bot_name
    elif getattr(loaded.persona, "name", None):
        values["bot_name"] = loaded.persona.name
    return build_daily_transport(DailySpec(**values))


def bind_daily_events(transport: Any, events: SessionEvents, room: DailyRoom) -> None:
    """Report the room's participants to ``events`` and end the session if the persona can't join.

    The user joining (again) reports ``joined``, leaving reports ``left``. An error before the
    persona is in the room (the join failed) reports ``failed("transport", ...)`` once and asks
    the pipeline to end.
    """
    from pipecat.frames.frames import EndWorkerFrame
    from pipecat.processors.frame_processor import FrameDirection

    state = {"in_room": False, "failed": False}

    @transport.event_handler("on_joined")
    async def on_joined(_transport, _data) -> None:
        state["in_room"] = True

    @transport.event_handler("on_error")
    async def on_error(_transport, error: str) -> None:
        if state["in_room"] or state["failed"]:
            return  # a live call's errors are pipecat's to log; the call goes on
        state["failed"] = True
        events.failed("transport", f"the persona could not join Daily room {room.name}: {error}")
        await transport.input().push_frame(EndWorkerFrame(), FrameDirection.UPSTREAM)

    @transport.event_handler("on_client_connected")
    async def on_connected(_transport, _participant) -> None:
        events.joined()

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(_transport, _participant) -> None:
        events.left()


async def run_daily_session(
    loaded: Any,
    room: DailyRoom,
    events: SessionEvents,
    *,
    recording_path: Path | None = None,
    interactions: Any = None,
    spec: Any = None,
) -> None:
    """Run the conversation's pipeline in ``room`` until it ends or the task is cancelled.

    Cancelling the task is a clean stop: pipecat's runner cancels the pipeline, the persona
    leaves the room, and ``events.left`` is reported. Delete the room afterwards
    (``DailyRooms.delete``).

    Args:
        loaded: The conversation's ``LoadedPipeline`` (``load_conversation_pipeline``).
        room: From ``DailyRooms.create``.
        events: Where the session reports (see ``run_pipeline_session``).
        recording_path: Record the call there (MP4) when set.
        interactions: The session's ``InteractionsProcessor`` (``make_interactions``).
        spec: The conversation (its guardrails and objectives).
    """
    try:
        transport = build_room_transport(loaded, room)
    except Exception as exc:
        events.failed("transport", f"cannot build the Daily transport: {exc}")
        return
    bind_daily_events(transport, events, room)
    await run_pipeline_session(
        loaded,
        transport,
        events,
        recording_path=recording_path,
        interactions=interactions,
        spec=spec,
    )
