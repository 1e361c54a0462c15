"""``presence mcp``: its tools, called through the MCP client SDK, act on a real service.

The service is a real uvicorn on 127.0.0.1 with the test launcher (a one-processor pipecat
pipeline per conversation, no models). The MCP server runs in-process for the tool checks, then as
``presence mcp`` subprocesses over stdio and streamable HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

import httpx
import pytest
from helpers.service import KEY_A, PipecatLauncher, free_port, make_settings, serve_app
from mcp import Client, StdioServerParameters

from presence.service.app import create_app
from presence.service.client import AsyncPresenceClient, PresenceClient
from presence.service.mcp_server import create_mcp_server

TOOLS = {
    "create_persona",
    "list_personas",
    "create_conversation",
    "list_conversations",
    "end_conversation",
    "get_transcript",
    "add_document",
    "list_documents",
    "delete_document",
}


@pytest.fixture
def service_url(tmp_path):
    port = free_port()
    settings = make_settings(tmp_path, public_url=f"http://127.0.0.1:{port}")
    with serve_app(create_app(settings, launcher=PipecatLauncher()), port) as url:
        yield url


def _env() -> dict[str, str]:
    return {**os.environ, "PRESENCE_API_KEY": KEY_A}


async def _tool(mcp: Client, name: str, **arguments):
    result = await mcp.call_tool(name, arguments)
    assert not result.is_error, result.content
    return result.structured_content


async def test_tools_create_list_end_and_read_the_real_service(service_url):
    async with Client(create_mcp_server(AsyncPresenceClient(service_url, KEY_A))) as mcp:
        assert {t.name for t in (await mcp.list_tools()).tools} == TOOLS

        persona = await _tool(mcp, "create_persona", persona_name="Ada", greeting="Hi, I am Ada.")
        listed = await _tool(mcp, "list_personas")
        assert [p["persona_id"] for p in listed["data"]] == [persona["persona_id"]]

        talk = await _tool(mcp, "create_conversation", persona_id=persona["persona_id"])
        cid = talk["conversation_id"]
        assert talk["status"] == "active"
        active = await _tool(mcp, "list_conversations", status="active")
        assert [c["conversation_id"] for c in active["data"]] == [cid]

        deadline = time.monotonic() + 10  # the greeting reaches the transcript asynchronously
        while not (live := await _tool(mcp, "get_transcript", conversation_id=cid))["transcript"]:
            assert time.monotonic() < deadline, live
            await asyncio.sleep(0.05)
        assert live["status"] == "active"

        ended = await _tool(mcp, "end_conversation", conversation_id=cid)
        assert ended["status"] == "ended"
        transcript = await _tool(mcp, "get_transcript", conversation_id=cid)
        assert transcript["status"] == "ended"
        assert [t["content"] for t in transcript["transcript"]] == ["Hi, I am Ada."]

        # the agent sees the service's own reason when it refuses
        refused = await mcp.call_tool("end_conversation", {"conversation_id": "c_nope"})
        assert refused.is_error
        assert "404" in refused.content[0].text and "c_nope not found" in refused.content[0].text

    with PresenceClient(service_url, KEY_A) as presence:  # what the tools did is in the service
        assert presence.get_conversation(cid).shutdown_reason == "end_conversation_endpoint_hit"


async def test_document_tools_build_a_knowledge_base_a_persona_uses(service_url):
    async with Client(create_mcp_server(AsyncPresenceClient(service_url, KEY_A))) as mcp:
        doc = await _tool(
            mcp, "add_document", text="# Hours\n\nOpen 9 to 5.", document_name="Hours", tags=["faq"]
        )
        assert doc["status"] == "ready" and doc["tags"] == ["faq"]
        await _tool(mcp, "add_document", text="Unrelated note.", tags=["misc"])
        tagged = await _tool(mcp, "list_documents", tags=["faq"])
        assert [d["document_id"] for d in tagged["data"]] == [doc["document_id"]]
        persona = await _tool(
            mcp, "create_persona", persona_name="Desk", document_ids=[doc["document_id"]]
        )
        assert persona["document_ids"] == [doc["document_id"]]

        await _tool(mcp, "delete_document", document_id=doc["document_id"])
        assert (await _tool(mcp, "list_documents"))["total_count"] == 1
        refused = await mcp.call_tool("add_document", {})  # neither text nor URL
        assert refused.is_error and "document_url" in refused.content[0].text


async def test_presence_mcp_over_stdio(service_url):
    command = [sys.executable, "-m", "presence.framework.cli", "mcp", "--url", service_url]
    params = StdioServerParameters(command=command[0], args=command[1:], env=_env())
    async with Client(params) as mcp:
        persona = await _tool(mcp, "create_persona", persona_name="Over stdio")
        listed = await _tool(mcp, "list_personas")
    assert listed["data"][0]["persona_id"] == persona["persona_id"]


async def test_presence_mcp_over_streamable_http(service_url):
    port = free_port()
    command = [sys.executable, "-m", "presence.framework.cli", "mcp", "--url", service_url]
    command += ["--transport", "http", "--port", str(port)]
    process = subprocess.Popen(command, env=_env(), stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                break
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "presence mcp did not listen"
            time.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as mcp:
            persona = await _tool(mcp, "create_persona", persona_name="Over HTTP")
            talk = await _tool(mcp, "create_conversation", persona_id=persona["persona_id"])
            listed = await _tool(mcp, "list_conversations", persona_id=persona["persona_id"])
        assert [c["conversation_id"] for c in listed["data"]] == [talk["conversation_id"]]
    finally:
        process.terminate()
        process.wait(10)
