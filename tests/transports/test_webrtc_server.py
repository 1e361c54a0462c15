"""The page server without a browser: the page is served whole and offline, signalling starts sessions."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from aiortc import RTCPeerConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from presence.framework.errors import ConfigError
from presence.transports.webrtc import WEB_DIR, WebRTCServer, limit_ice_host_addresses


def client(server: WebRTCServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url="http://test")


async def idle_session(transport, session_id):
    await asyncio.Event().wait()


async def test_page_and_assets_are_served():
    server = WebRTCServer(idle_session, title="Guide")
    async with client(server) as http:
        page = await http.get("/")
        assert page.status_code == 200
        for label in ("Connect", "Mute", "Hang up"):
            assert f">{label}</button>" in page.text
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
            assert (await http.get(asset)).status_code == 200, asset
        config = (await http.get("/api/config")).json()
    assert config == {"title": "Guide", "iceServers": []}


def test_the_page_loads_nothing_from_other_hosts():
    # Offline by construction: no CDN, no absolute URL anywhere in the page's files.
    for path in WEB_DIR.iterdir():
        assert "://" not in path.read_text(encoding="utf-8"), path.name


async def test_a_malformed_offer_gets_400_not_a_crash():
    server = WebRTCServer(idle_session)
    async with client(server) as http:
        answer = await http.post("/api/offer", json={"sdp": "not sdp", "type": "offer"})
        junk = await http.post("/api/offer", json={"hello": "world"})
    assert answer.status_code == 400 and junk.status_code == 400
    assert server.sessions == {}


def test_a_busy_port_is_a_config_error_naming_the_flag():
    taken = WebRTCServer.bind("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="--port"):
            WebRTCServer.bind("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


async def test_an_offer_starts_one_session_with_a_smallwebrtc_transport_and_close_ends_it():
    started: list[tuple[SmallWebRTCTransport, str]] = []
    cancelled = asyncio.Event()

    async def on_session(transport, session_id):
        started.append((transport, session_id))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server = WebRTCServer(on_session, ice_servers=["stun:stun.invalid:3478"], max_sessions=1)
    limit_ice_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        pc.createDataChannel("chat")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with client(server) as http:
            answer = (await http.post("/api/offer", json=offer)).json()
            busy = await http.post("/api/offer", json=offer)
            config = (await http.get("/api/config")).json()
    finally:
        await pc.close()
        limit_ice_host_addresses(None)
    assert answer["type"] == "answer" and answer["pc_id"] and "m=video" in answer["sdp"]
    await asyncio.sleep(0)
    assert len(started) == 1
    transport, session_id = started[0]
    assert isinstance(transport, SmallWebRTCTransport) and session_id in server.sessions
    assert busy.status_code == 503  # max_sessions=1
    assert config["iceServers"] == [{"urls": "stun:stun.invalid:3478"}]
    await server.close()
    assert cancelled.is_set() and server.sessions == {}


async def test_without_ice_servers_the_answer_offers_host_candidates_and_waits_on_no_stun():
    """No STUN/TURN configured: nothing to wait for before answering (aiortc would otherwise fall
    back to a public STUN server and, offline, wait for its timeout)."""
    server = WebRTCServer(idle_session)
    limit_ice_host_addresses(["127.0.0.1"])
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        pc.addTransceiver("video", direction="sendrecv")
        pc.createDataChannel("chat")
        await pc.setLocalDescription(await pc.createOffer())
        offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with client(server) as http:
            answer = (await http.post("/api/offer", json=offer)).json()
            config = (await http.get("/api/config")).json()
        connection = server._handler._pcs_map[answer["pc_id"]]
        ice_servers = connection.ice_servers  # what pipecat hands to aiortc's RTCConfiguration
    finally:
        await pc.close()
        limit_ice_host_addresses(None)
        await server.close()
    candidates = re.findall(r"a=candidate:.*", answer["sdp"])
    assert candidates and all(" typ host" in c for c in candidates), candidates
    assert all(" 127.0.0.1 " in c for c in candidates)
    assert ice_servers == []  # not None: aiortc's default would be a public STUN server
    assert config["iceServers"] == []
