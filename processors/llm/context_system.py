"""The session context's leading system message as a cloud LLM's system instruction.

The builder seeds the context with one system message (the persona's prompt plus the
conversational context) and ``conversation.overwrite_llm_context`` /
``conversation.append_llm_context`` rewrite it in place. The cloud services read it each turn
(``system_text``), add their grounding and pass the result as pipecat's ``system_instruction``,
which composes with pipecat's own additions (turn-completion, async-tool guidance). The adapters
below then leave that message out of the request's message list, so it is sent once, as the
instruction, and the shared context itself is never modified.

A context whose only message is the system message keeps it for Anthropic (which needs a
non-empty history: pipecat turns it into a user message there); OpenAI-compatible servers take a
request holding only the system instruction.
"""

from __future__ import annotations

from typing import Any

from pipecat.adapters.llm.services.anthropic_adapter import AnthropicLLMAdapter
from pipecat.adapters.llm.services.open_ai_adapter import OpenAILLMAdapter


def _is_system(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "system"


def system_text(context) -> str | None:
    """The text of ``context``'s leading system message; ``None`` when it has none.

    List content (text parts) is joined with spaces; an empty system message gives ``""``.
    """
    messages = context.get_messages()
    if not messages or not _is_system(messages[0]):
        return None
    content = messages[0].get("content") or ""
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict)).strip()
    return str(content)


class _InstructionFromContextAdapter:
    """Adapter mixin: the leading system message is sent as the instruction, not as a message.

    Attributes:
        keeps_lone_system: Keep a system message that is the context's only message.
    """

    keeps_lone_system = False

    def get_messages(self, context, *, truncate_large_values: bool = False):
        """The context's messages without its leading system message."""
        messages = super().get_messages(context, truncate_large_values=truncate_large_values)
        alone = len(messages) == 1
        if messages and _is_system(messages[0]) and not (alone and self.keeps_lone_system):
            return messages[1:]
        return messages


class AnthropicContextAdapter(_InstructionFromContextAdapter, AnthropicLLMAdapter):
    """``AnthropicLLMAdapter`` that leaves the context's system message to ``system``."""

    keeps_lone_system = True


class OpenAIContextAdapter(_InstructionFromContextAdapter, OpenAILLMAdapter):
    """``OpenAILLMAdapter`` that sends the context's system message once (as the instruction)."""
