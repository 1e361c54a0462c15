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

from anthropic import AsyncAnthropic
from loguru import logger
from pipecat.services.anthropic.llm import AnthropicLLMService
from pipecat.services.openai.llm import OpenAILLMService
from pydantic import Field, model_validator

from presence.framework.registry import BuildContext, StageParams, register
from presence.framework.tools import ToolSpec, install_tools, persona_tools
from presence.processors._secrets import resolve_api_key
from presence.processors.llm.context_system import (
    AnthropicContextAdapter,
    OpenAIContextAdapter,
    system_text,
)
from presence.processors.resilience import DEFAULT_APOLOGY, ResilientLLMMixin


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


class _PersonaLLMMixin(ResilientLLMMixin):
    """Grounding and tools around the resilient turn (first in the bases)."""

    def _init_persona(self, ctx: BuildContext, params: _CloudLLMParams, provider: str) -> None:
        self._init_resilience(
            provider=provider,
            retries=params.retries,
            turn_budget_s=params.turn_budget_s,
            apology=params.apology,
        )
        self._persona_prompt = ctx.persona.full_system_prompt()
        self._index = None
        if params.grounding_passages and ctx.persona.knowledge_files():
            from presence.processors.llm.engines.retrieval import KnowledgeIndex

            self._index = KnowledgeIndex.from_paths(ctx.persona.knowledge_files())
        self._grounding_k = params.grounding_passages
        self._tools = persona_tools(ctx.persona)
        if self._tools:
            install_tools(self, self._tools, base_dir=ctx.persona.base_dir)

    def _grounded_prompt(self, context) -> str:
        prompt = system_text(context)
        if prompt is None:  # a context not seeded by the builder
            prompt = self._persona_prompt
        if self._index is None:
            return prompt
        query = _last_user_text(context)
        passages = self._index.top_passages(query, k=self._grounding_k) if query else []
        if not passages:
            return prompt
        facts = "\n".join(f"- {p.passage.text}" for p in passages)
        return f"{prompt}\n\nRelevant knowledge (use it if it helps):\n{facts}".strip()

    async def _process_context(self, context):
        if self._tools and not context.tools:
            context.set_tools(ToolSpec.schema_of(self._tools))
            self._sync_registered_tool_handlers(context.tools)
        # pipecat composes its own additions onto this base, every turn afresh
        self._base_system_instruction = self._grounded_prompt(context) or None
        self._compose_system_instruction()
        await super()._process_context(context)


def _last_user_text(context) -> str:
    for message in reversed(context.get_messages()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


class PresenceAnthropicLLM(_PersonaLLMMixin, AnthropicLLMService):
    """``AnthropicLLMService`` with persona grounding, tools and resilient turns."""

    adapter_class = AnthropicContextAdapter

    def __init__(self, params: AnthropicParams, ctx: BuildContext):
        client = AsyncAnthropic(
            api_key=params.api_key,
            base_url=params.base_url,
            max_retries=0,
            timeout=params.timeout_s,
        )
        settings = AnthropicLLMService.Settings(
            model=params.model,
            max_tokens=params.max_tokens,
        )
        if params.temperature is not None:
            settings.temperature = params.temperature
        super().__init__(api_key=params.api_key, client=client, settings=settings)
        self._init_persona(ctx, params, "anthropic")


class PresenceOpenAILLM(_PersonaLLMMixin, OpenAILLMService):
    """``OpenAILLMService`` (any compatible ``base_url``) with grounding, tools, resilience."""

    adapter_class = OpenAIContextAdapter

    def __init__(self, params: OpenAIParams, ctx: BuildContext):
        settings = OpenAILLMService.Settings(
            model=params.model,
            max_tokens=params.max_tokens,
        )
        if params.temperature is not None:
            settings.temperature = params.temperature
        super().__init__(
            api_key=params.api_key or "not-needed",
            base_url=params.base_url,
            settings=settings,
        )
        self._client = self._client.with_options(max_retries=0, timeout=params.timeout_s)
        self._init_persona(ctx, params, "openai")


@register(
    "llm",
    "anthropic",
    AnthropicParams,
    summary="Anthropic Claude (key ANTHROPIC_API_KEY); retry once, then apology or fallback",
)
def build_anthropic(params: AnthropicParams, ctx: BuildContext) -> PresenceAnthropicLLM:
    """Build the Anthropic LLM stage."""
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
    logger.debug(f"openai LLM: model {params.model}, base_url {params.base_url or 'default'}")
    return PresenceOpenAILLM(params, ctx)
