"""Daily rooms per conversation (``presence.service.daily``) against a local Daily REST fake."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fakes.daily_rest import FakeDailyREST
from helpers.service import free_port
from loguru import logger

from presence.service.daily import (
    EXPIRY_MARGIN_SECS,
    DailyRoom,
    DailyRooms,
    room_name,
    run_daily_session,
)
from presence.service.session_run import LaunchError
from presence.service.session_spec import ConversationSpec

KEY = "daily-test-key"
CID = "c0123456789abcdef01234567"


def spec(**properties) -> ConversationSpec:
    return ConversationSpec(CID, Path("pipelines/local.yaml"), properties=properties)


@pytest.fixture
async def daily():
    async with FakeDailyREST(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def rooms(daily):
    r = DailyRooms(KEY, daily.base_url)
    yield r
    await r.close()


@pytest.fixture
def logs():
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG")
    yield lines
    logger.remove(sink)


async def test_create_makes_a_room_for_the_conversation_and_an_owner_token(daily, rooms, logs):
    before = time.time()
    room = await rooms.create(spec(max_call_duration=600))
    after = time.time()

    [(path, headers, body)] = daily.calls("POST", "/rooms")
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body["name"] == room_name(CID) and CID in body["name"]
    props = body["properties"]
    assert props["max_participants"] == 2
    assert props["eject_at_room_exp"] is True
    # expires after the call may have ended, by a margin that lets the service end it first
    assert before + 600 < props["exp"] <= after + 600 + EXPIRY_MARGIN_SECS + 1

    [(_, token_headers, token_body)] = daily.calls("POST", "/meeting-tokens")
    assert token_headers["authorization"] == f"Bearer {KEY}"
    assert token_body["properties"]["room_name"] == body["name"]
    assert token_body["properties"]["is_owner"] is True

    assert (
        room.url == daily.rooms[room.name]["url"] == f"https://presence-test.daily.co/{room.name}"
    )
    assert room.token == daily.tokens[0]["token"]
    assert room.token not in repr(room)
    assert not any(KEY in line or room.token in line for line in logs)


async def test_without_max_call_duration_the_room_does_not_expire(daily, rooms):
    room = await rooms.create(spec())
    assert "exp" not in daily.rooms[room.name]["config"]
    assert room.expires_at is None


async def test_delete_removes_the_room(daily, rooms):
    room = await rooms.create(spec())
    await rooms.delete(room)
    [(path, headers, _)] = daily.calls("DELETE")
    assert path == f"/v1/rooms/{room.name}"
    assert headers["authorization"] == f"Bearer {KEY}"
    assert room.name not in daily.rooms
    await rooms.delete(room)  # already gone (404) is fine


async def test_a_rejected_key_names_daily_api_key(daily, logs):
    rooms = DailyRooms("wrong-key", daily.base_url)
    with pytest.raises(LaunchError) as err:
        await rooms.create(spec())
    await rooms.close()
    assert err.value.stage == "transport"
    assert "Daily rejected DAILY_API_KEY (401)" in str(err.value)
    assert "wrong-key" not in str(err.value)
    assert not any("wrong-key" in line for line in logs)
    assert daily.rooms == {}


async def test_a_server_error_names_the_status(daily, rooms):
    daily.fail["POST /rooms"] = 500
    with pytest.raises(LaunchError) as err:
        await rooms.create(spec())
    assert err.value.stage == "transport"
    assert "Daily's API failed (500) to create the room" in str(err.value)


async def test_a_refused_request_names_daily_s_reason(daily, rooms):
    await rooms.create(spec())
    with pytest.raises(LaunchError) as err:
        await rooms.create(spec())  # same conversation id: the name is taken
    assert err.value.stage == "transport"
    assert "Daily refused to create the room (400)" in str(err.value)
    assert "already exists" in str(err.value)


async def test_a_failed_token_deletes_the_room_again(daily, rooms):
    daily.fail["POST /meeting-tokens"] = 500
    with pytest.raises(LaunchError) as err:
        await rooms.create(spec())
    assert "meeting token" in str(err.value) and "(500)" in str(err.value)
    assert daily.rooms == {}
    assert len(daily.calls("DELETE")) == 1


async def test_an_unreachable_api_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/v1"
    rooms = DailyRooms(KEY, url)
    with pytest.raises(LaunchError) as err:
        await rooms.create(spec())
    await rooms.close()
    assert err.value.stage == "transport"
    assert f"cannot reach Daily's API at {url}" in str(err.value)


async def test_no_key_tells_the_user_to_set_it(daily, monkeypatch):
    monkeypatch.delenv("DAILY_API_KEY", raising=False)
    monkeypatch.setenv("PRESENCE_DAILY_API_URL", daily.base_url)
    rooms = DailyRooms()
    with pytest.raises(LaunchError) as err:
        await rooms.create(spec())
    assert err.value.stage == "transport"
    assert "DAILY_API_KEY is not set" in str(err.value)
    assert daily.requests == []


async def test_key_and_url_come_from_the_environment(daily, monkeypatch):
    monkeypatch.setenv("DAILY_API_KEY", KEY)
    monkeypatch.setenv("PRESENCE_DAILY_API_URL", daily.base_url)
    rooms = DailyRooms()
    room = await rooms.create(spec())
    await rooms.close()
    assert room.name in daily.rooms


class Events:
    """Records what a session reports, in order."""

    def __init__(self):
        self.log: list[tuple] = []
        self.ended = asyncio.Event()

    def joined(self):
        self.log.append(("joined",))

    def left(self):
        self.log.append(("left",))
        self.ended.set()

    def transcript(self, turns):
        pass

    def perception(self, analysis):
        pass

    def recording(self, path, duration):
        self.log.append(("recording", path))

    def failed(self, stage, message):
        self.log.append(("failed", stage, message))


needs_daily_python = pytest.mark.skipif(
    importlib.util.find_spec("daily") is None, reason="daily-python is not installed"
)


@needs_daily_python
async def test_the_persona_joins_with_the_pipeline_s_video_and_reports_the_user_coming_and_going():
    from presence.service.daily import bind_daily_events, build_room_transport
    from presence.transports.factory import VideoSpec, WebRTCSpec

    video = VideoSpec(width=320, height=240, fps=15)
    loaded = SimpleNamespace(
        transport=WebRTCSpec(video=video, camera_fps=2), persona=SimpleNamespace(name="Guide")
    )
    room = DailyRoom(
        url="https://presence-test.daily.co/presence-c1", name="presence-c1", token="t"
    )
    transport = build_room_transport(loaded, room)
    params = transport._params
    assert (params.video_out_width, params.video_out_height) == (320, 240)
    assert params.video_out_framerate == 15
    assert params.video_in_sources["camera"].framerate == 2
    assert transport._client.room_url == room.url

    events = Events()
    bind_daily_events(transport, events, room)
    user = {"id": "u1", "info": {"userName": "someone"}}
    for event in ("on_client_connected", "on_client_disconnected", "on_client_connected"):
        await transport._call_event_handler(event, user)
        await asyncio.gather(*(task for _, task in list(transport._event_tasks)))
    assert events.log == [("joined",), ("left",), ("joined",)]
    await transport.cleanup()


@needs_daily_python
async def test_a_room_the_persona_cannot_join_ends_the_session_naming_the_transport(repo):
    from presence.service.session_run import load_conversation_pipeline

    loaded = await asyncio.to_thread(
        load_conversation_pipeline, ConversationSpec(CID, repo / "pipelines" / "local.yaml")
    )
    # No network here: daily-python cannot look the room up and gives up (about 20 s).
    room = DailyRoom(url=f"https://presence-test.daily.co/{room_name(CID)}", name="r", token="t")
    events = Events()
    await asyncio.wait_for(run_daily_session(loaded, room, events), timeout=120)

    failed = [e for e in events.log if e[0] == "failed"]
    assert len(failed) == 1
    assert failed[0][1] == "transport"
    assert "could not join Daily room" in failed[0][2]
    assert ("joined",) not in events.log
    assert events.log[-1] == ("left",)


def test_a_daily_persona_s_conversation_url_is_its_own_room(tmp_path, monkeypatch):
    """Through the service: a room per conversation, made by the session's process, gone at the end."""
    from fastapi.testclient import TestClient
    from helpers.service import KEY_A, make_settings

    from presence.service.app import create_app
    from presence.service.process_launcher import ProcessLauncher

    fake = FakeDailyREST(api_key=KEY)
    app = create_app(make_settings(tmp_path), launcher=ProcessLauncher())
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        client.portal.call(fake.__aenter__)
        try:
            monkeypatch.setenv("DAILY_API_KEY", KEY)
            monkeypatch.setenv("PRESENCE_DAILY_API_URL", fake.base_url)
            persona = client.post(
                "/v2/personas",
                json={"persona_name": "Daily guide", "layers": {"transport": {"kind": "daily"}}},
            ).json()
            created = client.post(
                "/v2/conversations", json={"persona_id": persona["persona_id"]}
            ).json()
            cid = created["conversation_id"]
            ((path, headers, body),) = fake.calls("POST", "/rooms")
            assert body["name"] == room_name(cid)
            assert created["status"] == "active"
            assert created["conversation_url"] == fake.rooms[room_name(cid)]["url"]
            assert (
                client.get(f"/v2/conversations/{cid}").json()["conversation_url"]
                == (created["conversation_url"])
            )
            assert client.get(f"/c/{cid}/").status_code == 404  # the call is in the room

            ended = client.post(f"/v2/conversations/{cid}/end").json()
            assert ended["shutdown_reason"] == "end_conversation_endpoint_hit"
            assert [p for p, _, _ in fake.calls("DELETE", "/rooms")] == [
                f"/v1/rooms/{room_name(cid)}"
            ]
        finally:
            client.portal.call(fake.__aexit__, None, None, None)


def test_a_daily_persona_without_a_key_ends_its_conversation_naming_the_transport(
    tmp_path, monkeypatch
):
    from fastapi.testclient import TestClient
    from helpers.service import KEY_A, make_settings

    from presence.service.app import create_app
    from presence.service.launcher import WebRTCLauncher

    monkeypatch.delenv("DAILY_API_KEY", raising=False)
    app = create_app(make_settings(tmp_path), launcher=WebRTCLauncher())
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        persona = client.post(
            "/v2/personas", json={"persona_name": "D", "layers": {"transport": {"kind": "daily"}}}
        ).json()
        created = client.post("/v2/conversations", json={"persona_id": persona["persona_id"]})
    body = created.json()
    assert body["status"] == "ended" and body["shutdown_reason"] == "exception"
    assert body["failed_stage"] == "transport" and "DAILY_API_KEY" in body["error_message"]
