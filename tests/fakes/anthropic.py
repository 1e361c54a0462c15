"""A local Anthropic Messages API: ``POST /v1/messages`` streaming Server-Sent Events.

Events follow the real stream: ``message_start``, ``ping``, per block ``content_block_start`` /
``content_block_delta`` (``text_delta`` or ``input_json_delta`` for ``tool_use``) /
``content_block_stop``, then ``message_delta`` (``stop_reason`` ``end_turn`` or ``tool_use``)
and ``message_stop``. Errors use Anthropic's ``{"type": "error", "error": {...}}`` body. Point
``AsyncAnthropic(base_url=fake.base_url)`` at it. Scripted with ``Reply`` (see ``llm_script``).
"""

from __future__ import annotations

import asyncio
import json
import uuid

from aiohttp import web
from fakes.llm_script import FakeLLMServer, Reply

__all__ = ["FakeAnthropic", "Reply"]

_ERRORS = {
    "500": (500, "api_error", "Internal server error"),
    "529": (529, "overloaded_error", "Overloaded"),
    "429": (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit"),
}


class FakeAnthropic(FakeLLMServer):
    """Scripted Anthropic server; ``requests`` holds each JSON body (system, messages, tools)."""

    route = "/v1/messages"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_response(self, reply: Reply) -> web.Response:
        status, kind, message = _ERRORS[reply.fault]
        headers = {"request-id": f"req_{uuid.uuid4().hex[:12]}"}
        if reply.fault == "429":
            headers["retry-after"] = str(reply.retry_after)
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return web.json_response(body, status=status, headers=headers)

    async def stream(self, request, response, body, reply: Reply) -> None:
        send = self.send
        model = body.get("model", "claude-test")
        start = {
            "type": "message_start",
            "message": {
                "id": f"msg_{uuid.uuid4().hex[:20]}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        }
        await send(response, json.dumps(start), "message_start")
        if reply.fault == "stall":
            await asyncio.sleep(reply.stall_s)
            return
        await send(response, json.dumps({"type": "ping"}), "ping")
        if reply.fault == "malformed":
            await send(response, "{not json", "content_block_start")
            return
        index = 0
        if reply.text:
            block = {"type": "text", "text": ""}
            await send(
                response,
                _j("content_block_start", index=index, content_block=block),
                "content_block_start",
            )
            for chunk in reply.text:
                delta = {"type": "text_delta", "text": chunk}
                await send(
                    response,
                    _j("content_block_delta", index=index, delta=delta),
                    "content_block_delta",
                )
                if reply.fault == "drop":
                    self.cut(request)
                    return
                if reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
            await send(response, _j("content_block_stop", index=index), "content_block_stop")
            index += 1
        for name, args in reply.tool_calls:
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:20]}",
                "name": name,
                "input": {},
            }
            await send(
                response,
                _j("content_block_start", index=index, content_block=block),
                "content_block_start",
            )
            text = json.dumps(args)
            for part in (text[: len(text) // 2], text[len(text) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": part}
                await send(
                    response,
                    _j("content_block_delta", index=index, delta=delta),
                    "content_block_delta",
                )
            await send(response, _j("content_block_stop", index=index), "content_block_stop")
            index += 1
        stop = "tool_use" if reply.tool_calls else "end_turn"
        delta = {"stop_reason": stop, "stop_sequence": None}
        await send(
            response, _j("message_delta", delta=delta, usage={"output_tokens": 20}), "message_delta"
        )
        await send(response, _j("message_stop"), "message_stop")


def _j(kind: str, **fields) -> str:
    return json.dumps({"type": kind, **fields})
