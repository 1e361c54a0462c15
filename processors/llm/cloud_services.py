"""The network LLM services behind ``provider: anthropic`` and ``provider: openai``.

Kept apart from ``cloud`` (their parameters and registration) so that loading a pipeline that
uses neither never imports the Anthropic and OpenAI SDKs (over a second on two cores).
"""

from __future__ import annotations

from anthropic import AsyncAnthropic
from pipecat.services.anthropic.llm import AnthropicLLMService
from pipecat.services.openai.llm import OpenAILLMService

from presence.framework.registry import BuildContext
from presence.framework.tools import ToolSpec, install_tools, persona_tools
from presence.processors.llm.cloud import AnthropicParams, OpenAIParams, _CloudLLMParams
from presence.processors.llm.context_system import (
    AnthropicContextAdapter,
    OpenAIContextAdapter,
    system_text,
)
from presence.processors.resilience import ResilientLLMMixin


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
