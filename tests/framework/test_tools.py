"""Persona tools: spec validation and dispatch to Python callables and HTTP endpoints."""

import pytest
from aiohttp import web
from pydantic import ValidationError

from presence.framework.tools import ToolSpec, call_tool, persona_tools, resolve_python


def double(n: int) -> int:
    return 2 * n


async def slow_fail(**_):
    raise RuntimeError("backend down")


async def test_http_tool_posts_the_arguments_and_returns_the_json_reply():
    seen = []

    async def handle(request):
        seen.append(await request.json())
        return web.json_response({"booked": True, "table": 7})

    app = web.Application()
    app.router.add_post("/book", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        spec = ToolSpec(
            name="book",
            description="Book a table.",
            parameters={"people": {"type": "integer"}},
            http={"url": f"http://127.0.0.1:{port}/book"},
        )
        assert await call_tool(spec, {"people": 4}) == {"booked": True, "table": 7}
        assert seen == [{"people": 4}]
    finally:
        await runner.cleanup()


async def test_python_tool_result_and_failure_go_back_to_the_model():
    ok = ToolSpec(name="double", description="x2", python=f"{__name__}:double")
    assert await call_tool(ok, {"n": 21}, resolve_python(ok.python)) == 42
    bad = ToolSpec(name="fail", description="fails", python=f"{__name__}:slow_fail")
    result = await call_tool(bad, {}, resolve_python(bad.python))
    assert result == {"error": "RuntimeError: backend down"}


def test_a_tool_needs_exactly_one_target_and_declared_required_parameters():
    with pytest.raises(ValidationError, match="exactly one"):
        ToolSpec(name="t", description="d")
    with pytest.raises(ValidationError, match="undeclared"):
        ToolSpec(name="t", description="d", python="m:f", required=["x"])

    class WithTools:
        tools = [{"name": "t", "description": "d", "python": "m:f"}]

    assert [t.name for t in persona_tools(WithTools())] == ["t"]
