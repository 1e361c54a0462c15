"""One short question to a cloud LLM, answered in JSON: the judge behind guardrails and objectives.

Pure Python (no pipecat): the provider's own SDK (``openai`` for OpenAI-compatible servers,
``anthropic``) streams the answer and the JSON object in it is returned. ``LLMJudge.ask`` bounds
the whole call by ``timeout_s`` and raises ``JudgeError`` on anything (a refusal, a timeout, an
answer without a JSON object): callers fall back to their offline rules, so a conversation never
fails because its judge did.

The judge is the conversation's own LLM unless configured otherwise (``from_llm_settings``).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from presence.framework.errors import PresenceError


class JudgeError(PresenceError):
    """The judge gave no usable answer (the caller falls back to its rules)."""


def json_object(text: str) -> dict[str, Any]:
    """The JSON object in an LLM's answer (text around it, e.g. code fences, is ignored).

    Raises:
        ValueError: The answer holds no JSON object.
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the answer holds no JSON object")
    value = json.loads(text[start : end + 1])
    if not isinstance(value, dict):
        raise ValueError("the answer is not a JSON object")
    return value


@dataclass(frozen=True)
class LLMJudge:
    """A cloud LLM asked for short JSON verdicts.

    Attributes:
        provider: ``openai`` (any OpenAI-compatible server) or ``anthropic``.
        model: The model to ask.
        base_url: The server (``None``: the provider's own).
        api_key: Its key (an OpenAI-compatible local server may need none).
        timeout_s: The most one verdict may take, connection and answer together.
        max_tokens: The answer's length limit.
    """

    provider: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 2.0
    max_tokens: int = 300
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_llm_settings(cls, llm: dict[str, Any] | None, **options: Any) -> LLMJudge | None:
        """A judge on a conversation's cloud LLM; ``None`` for an offline one.

        Args:
            llm: ``provider``, ``model``, ``base_url``, ``api_key`` (or ``None``).
            **options: ``timeout_s``, ``max_tokens``.
        """
        if not llm or llm.get("provider") not in ("openai", "anthropic") or not llm.get("model"):
            return None
        fields = {k: llm.get(k) for k in ("provider", "model", "base_url", "api_key")}
        return cls(**fields, **options)

    async def ask(self, system: str, question: str) -> dict[str, Any]:
        """The JSON object the model answers ``question`` with, under ``system`` instructions.

        Raises:
            JudgeError: The call failed, took longer than ``timeout_s``, or held no JSON.
        """
        try:
            text = await asyncio.wait_for(self._complete(system, question), self.timeout_s)
            return json_object(text)
        except TimeoutError:
            raise JudgeError(f"the judge took longer than {self.timeout_s:g} s") from None
        except Exception as exc:  # the SDKs' errors, or an answer that is not JSON
            raise JudgeError(f"the judge gave no verdict: {type(exc).__name__}: {exc}") from None

    async def warm(self) -> None:
        """Import the SDK and open the client ahead of the first verdict.

        Importing ``openai`` or ``anthropic`` and building a client take ~1 s on a small machine:
        done at the first verdict, they ate its ``timeout_s`` and the rules' verdict stood.
        """
        await asyncio.to_thread(self._sdk)
        self._client()

    async def close(self) -> None:
        """Close the client this event loop uses (a later verdict opens a new one)."""
        entry = self._clients.pop("client", None)
        if entry is not None and entry[0] is asyncio.get_running_loop():
            await entry[1].close()

    def _sdk(self) -> Any:
        if self.provider == "anthropic":
            from anthropic import AsyncAnthropic

            return AsyncAnthropic
        from openai import AsyncOpenAI

        return AsyncOpenAI

    def _client(self) -> Any:
        """One client per judge and event loop: its connections are kept between verdicts."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get("client")
        if entry is not None and entry[0] is loop:
            return entry[1]
        if self.provider == "anthropic":
            client = self._sdk()(
                api_key=self.api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s
            )
        else:
            client = self._sdk()(
                api_key=self.api_key or "not-needed",
                base_url=self.base_url,
                max_retries=0,
                timeout=self.timeout_s,
            )
        self._clients["client"] = (loop, client)
        return client

    async def _complete(self, system: str, question: str) -> str:
        messages = [{"role": "user", "content": question}]
        client = self._client()
        if self.provider == "anthropic":
            async with client.messages.stream(
                model=self.model, max_tokens=self.max_tokens, system=system, messages=messages
            ) as stream:
                return "".join([chunk async for chunk in stream.text_stream])
        stream = await client.chat.completions.create(
            model=self.model,
            messages=[{"role": "system", "content": system}, *messages],
            stream=True,
            max_tokens=self.max_tokens,
            temperature=0,
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
