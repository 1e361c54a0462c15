"""Persona files: who the AI is, what it knows, and what face it wears.

A persona is a YAML file; relative paths in it resolve against the file's folder::

    name: Guide
    system_prompt: You are the presence guide ...
    greeting: Hi! I'm the presence guide. Ask me anything about presence.
    knowledge_base: knowledge      # folder of markdown documents
    replica: replica.png           # portrait the renderer animates
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from presence.framework.tools import ToolSpec
from presence.framework.yamlio import load_model


class Persona(BaseModel):
    """A validated persona.

    Attributes:
        name: Display name of the persona.
        system_prompt: Instructions for an LLM stage.
        greeting: What the persona says when the user joins; empty for silence.
        knowledge_base: Folder of markdown documents (absolute after loading), or ``None``.
        replica: Portrait image the renderer animates (absolute after loading), or ``None``.
        fallback_answer: What an offline responder says when nothing in the knowledge base matches.
        context: Extra conversational context appended to the system prompt.
        tools: Functions an LLM stage may call (see ``presence.framework.tools``).
        base_dir: Folder of the persona file.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = "Assistant"
    system_prompt: str = (
        "You are a helpful, concise voice assistant. Answer in one or two sentences."
    )
    greeting: str = ""
    knowledge_base: Path | None = None
    replica: Path | None = None
    fallback_answer: str = (
        "I'm not sure about that one. Try asking me about something in my knowledge base."
    )
    context: str = ""
    tools: list[ToolSpec] = Field(default_factory=list)
    base_dir: Path = Field(default=Path("."), exclude=True)

    def knowledge_files(self) -> list[Path]:
        """Markdown documents of the knowledge base, sorted by path (empty when there is none)."""
        if self.knowledge_base is None or not self.knowledge_base.is_dir():
            return []
        return sorted(p for p in self.knowledge_base.rglob("*.md") if p.is_file())

    def full_system_prompt(self) -> str:
        """The system prompt with the conversational context appended."""
        return f"{self.system_prompt}\n\n{self.context}".strip()


def load_persona(path: Path) -> Persona:
    """Load and validate a persona file, resolving its relative paths.

    Raises:
        ConfigError: The file is missing, malformed, or has an invalid field.
    """
    persona = load_model(path, Persona)
    base = path.parent.resolve()
    updates: dict[str, object] = {"base_dir": base}
    for key in ("knowledge_base", "replica"):
        value = getattr(persona, key)
        if value is not None and not value.is_absolute():
            updates[key] = (base / value).resolve()
    return persona.model_copy(update=updates)
