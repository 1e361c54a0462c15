"""Network LLMs: ``provider: anthropic`` and ``provider: openai`` (any OpenAI-compatible server).

Both are pipecat's own services (``AnthropicLLMService``, ``OpenAILLMService``) with:

- as system instruction, each turn, the session context's leading system message (the persona's
  prompt and conversational context, which interactions rewrite; the persona's
  ``full_system_prompt()`` when the context has none) plus the top ``grounding_passages``
  knowledge-base passages for the user's last message (0 turns it off). That message is sent
  once, as the instruction (``context_system``); the shared context is left as it is;
- the persona's tools (``presence.framework.tools``) advertised and dispatched;
- ``ResilientLLMMixin``: the SDK's own retries are off (they honour ``retry-after`` up to 60 s);
  instead one retry within ``turn_budget_s``, then a backup provider or a short apology.

``openai`` reaches vLLM, Ollama, LiteLLM or any gateway through ``base_url``; with a ``base_url``
the key may be empty (local servers need none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loguru import logger
from pydantic import Field, model_validator

from presence.framework.registry import BuildContext, StageParams, register
from presence.processors._secrets import resolve_api_key
from presence.processors.resilience import DEFAULT_APOLOGY

if TYPE_CHECKING:  # the services import their SDKs: only when a stage is built
    from presence.processors.llm.cloud_services import PresenceAnthropicLLM, PresenceOpenAILLM


class _CloudLLMParams(StageParams):
    """Shared parameters of the network LLMs.

    Attributes:
        api_key: The provider key; defaults to the provider's environment variable.
        base_url: Endpoint override (proxy, gateway, regional or self-hosted server).
        model: Model name as the endpoint knows it.
        temperature: Sampling temperature; ``None`` keeps the provider default.
        max_tokens: Most tokens per reply.
        timeout_s: Connect and per-read timeout of one request.
        retries: Retries of a failed turn that has said nothing yet (within the budget).
        turn_budget_s: Total time a turn may take, retries included.
        apology: What the persona says when the turn fails for good (default: a short sorry).
        grounding_passages: Knowledge-base passages added to the system prompt per turn.

    """

    api_key: str | None = None
    base_url: str | None = None
    model: str = ""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int = Field(default=1024, ge=1)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    retries: int = Field(default=1, ge=0, le=3)
    turn_budget_s: float = Field(default=20.0, gt=0, le=600)
    apology: str = DEFAULT_APOLOGY
    grounding_passages: int = Field(default=3, ge=0, le=20)


class AnthropicParams(_CloudLLMParams):
    """Parameters of ``provider: anthropic`` (key from ``$ANTHROPIC_API_KEY``)."""

    model: str = "claude-sonnet-4-6"

    @model_validator(mode="after")
    def _key(self) -> AnthropicParams:
        self.api_key = resolve_api_key(self.api_key, "ANTHROPIC_API_KEY", "anthropic")
        return self


class OpenAIParams(_CloudLLMParams):
    """Parameters of ``provider: openai`` (key from ``$OPENAI_API_KEY``; optional with base_url)."""

    model: str = "gpt-4.1-mini"

    @model_validator(mode="after")
    def _key(self) -> OpenAIParams:
        required = self.base_url is None
        self.api_key = resolve_api_key(self.api_key, "OPENAI_API_KEY", "openai", required=required)
        return self


@register(
    "llm",
    "anthropic",
    AnthropicParams,
    summary="Anthropic Claude (key ANTHROPIC_API_KEY); retry once, then apology or fallback",
)
def build_anthropic(params: AnthropicParams, ctx: BuildContext) -> PresenceAnthropicLLM:
    """Build the Anthropic LLM stage."""
    from presence.processors.llm.cloud_services import PresenceAnthropicLLM

    logger.debug(f"anthropic LLM: model {params.model}, base_url {params.base_url or 'default'}")
    return PresenceAnthropicLLM(params, ctx)


@register(
    "llm",
    "openai",
    OpenAIParams,
    summary="OpenAI or any OpenAI-compatible base_url (vLLM, Ollama, gateways)",
)
def build_openai(params: OpenAIParams, ctx: BuildContext) -> PresenceOpenAILLM:
    """Build the OpenAI-compatible LLM stage."""
    from presence.processors.llm.cloud_services import PresenceOpenAILLM

    logger.debug(f"openai LLM: model {params.model}, base_url {params.base_url or 'default'}")
    return PresenceOpenAILLM(params, ctx)
