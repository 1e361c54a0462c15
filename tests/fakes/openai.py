"""A local OpenAI-compatible ``POST /v1/chat/completions`` streaming Server-Sent Events.

Each event is a ``chat.completion.chunk`` whose ``choices[0].delta`` carries ``role``, ``content``
or ``tool_calls`` (index, id, function name, then argument fragments); the last chunk carries
``finish_reason`` (``stop`` / ``tool_calls``) and a usage chunk follows, then ``data: [DONE]``.
This is what vLLM, Ollama and gateways speak too. Point ``base_url`` at ``fake.base_url``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from aiohttp import web
from fakes.llm_script import FakeLLMServer, Reply

__all__ = ["FakeOpenAI", "Reply"]


class FakeOpenAI(FakeLLMServer):
    """Scripted OpenAI-compatible server; ``requests`` holds each JSON body."""

    route = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def error_response(self, reply: Reply) -> web.Response:
        status = {"500": 500, "529": 503, "429": 429}[reply.fault]
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        headers = {"retry-after": str(reply.retry_after)} if status == 429 else {}
        body = {"error": {"message": f"fake {kind}", "type": kind, "param": None, "code": kind}}
        return web.json_response(body, status=status, headers=headers)

    async def stream(self, request, response, body, reply: Reply) -> None:
        cid = f"chatcmpl-{uuid.uuid4().hex[:16]}"
        model = body.get("model", "gpt-test")

        async def chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None):
            data = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if usage is not None:
                data["usage"] = usage
            await self.send(response, json.dumps(data))

        await chunk({"role": "assistant", "content": ""})
        if reply.fault == "stall":
            await asyncio.sleep(reply.stall_s)
            return
        if reply.fault == "malformed":
            await self.send(response, "{not json")
            return
        for text in reply.text:
            await chunk({"content": text})
            if reply.fault == "drop":
                self.cut(request)
                return
            if reply.chunk_delay_s:
                await asyncio.sleep(reply.chunk_delay_s)
        for i, (name, args) in enumerate(reply.tool_calls):
            call = {
                "index": i,
                "id": f"call_{uuid.uuid4().hex[:12]}",
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            await chunk({"tool_calls": [call]})
            text = json.dumps(args)
            for part in (text[: len(text) // 2], text[len(text) // 2 :]):
                await chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
        await chunk({}, "tool_calls" if reply.tool_calls else "stop")
        await chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32})
        await self.send(response, "[DONE]")
