"""From API rows to a runnable pipeline: persona layers become ``--set`` overrides on a base YAML.

A persona's stored layers may use Tavus's field names; ``persona_layers`` first translates them
(``presence.service.tavus``) into the own format below and collects the warnings.

``layers.llm = {provider: anthropic, model: m}`` replaces ``stages.llm`` wholesale (a new provider
has its own parameters); ``layers.tts = {voice: en-us}`` (no ``provider``) overrides only those
keys of the base stage. ``conversational_flow.vad`` / ``.turn`` map to ``stages.vad`` /
``stages.turn``; ``transport`` overrides the pipeline's ``transport`` keys the same way.

Layers come from API clients, so they may name registered providers only: an import path
(``provider: module:factory``, which a pipeline file may use) would let a client run any code
on the server, and is refused with a 422 naming the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from loguru import logger

from presence.framework.errors import ConfigError
from presence.service.db import ConversationRow, PersonaRow, ReplicaRow
from presence.service.knowledge import Knowledge, retrieval_overrides
from presence.service.memories import memory_context
from presence.service.settings import ServiceSettings
from presence.service.supervisor import ConversationSpec
from presence.service.tavus import base_providers, translate_layers

_NAME = re.compile(r"^[\w-]+(\.ya?ml)?$")


def config_problem(exc: ConfigError) -> str:
    """A ``ConfigError`` for an API client: the field and the reason, not the server's file paths."""
    return f"{exc.field}: {exc.reason}" if exc.field else exc.reason


def resolve_pipeline(name: str | None, settings: ServiceSettings) -> Path:
    """The pipeline YAML named ``name`` (a file shipped beside the base pipeline).

    Raises:
        ConfigError: The name is not a plain file name or no such pipeline exists.
    """
    if not name:
        return settings.base_pipeline
    folder = settings.base_pipeline.parent
    available = sorted(p.stem for p in folder.glob("*.yaml"))
    if not _NAME.match(name):
        raise ConfigError(f"pipeline must be one of: {', '.join(available)}", field="pipeline")
    path = folder / (name if name.endswith((".yaml", ".yml")) else f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(
            f"no pipeline named {name!r}; available: {', '.join(available)}", field="pipeline"
        )
    return path


def _stage_overrides(target: str, layer: dict[str, Any]) -> list[str]:
    if "provider" in layer:
        return [f"{target}={json.dumps(layer)}"]
    return [f"{target}.{key}={json.dumps(value)}" for key, value in layer.items()]


def _refuse_import_paths(value: Any, where: str) -> None:
    """Raise if any ``provider`` under ``value`` is an import path (``module:attribute``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}"
            if key == "provider" and isinstance(item, str) and ":" in item:
                raise ConfigError(
                    f"persona layers name registered providers (`presence providers` lists "
                    f"them), not import paths like {item!r}; import paths are for pipeline files",
                    field=name,
                )
            _refuse_import_paths(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_import_paths(item, f"{where}.{i}")


def layer_overrides(layers: dict[str, Any] | None) -> list[str]:
    """``--set`` overrides for a persona's ``layers`` (see the module docstring).

    Raises:
        ConfigError: A layer key is not allowed, or a layer names a provider by import path.
    """
    layers = layers or {}
    _refuse_import_paths(layers, "layers")
    out: list[str] = []
    for stage in ("stt", "llm", "tts", "perception"):
        if layers.get(stage):
            out += _stage_overrides(f"stages.{stage}", layers[stage])
    flow = layers.get("conversational_flow") or {}
    for key, value in flow.items():
        if key not in ("vad", "turn"):
            raise ConfigError("allowed keys: vad, turn", field=f"layers.conversational_flow.{key}")
        if value:  # null or {}: the base pipeline's stage as it is
            out += _stage_overrides(f"stages.{key}", value)
    if layers.get("transport"):
        out += [f"transport.{k}={json.dumps(v)}" for k, v in layers["transport"].items()]
    return out


def persona_layers(layers: dict[str, Any] | None, pipeline: Path) -> tuple[list[str], list[str]]:
    """``(overrides, warnings)`` for a persona's stored layers on the pipeline file ``pipeline``.

    Raises:
        ConfigError: A layer key is not allowed, or a layer names a provider by import path.
    """
    translation = translate_layers(layers, base_providers(pipeline))
    return layer_overrides(translation.layers), translation.warnings


def check_pipeline(path: Path, overrides: list[str]) -> None:
    """Validate a pipeline with overrides exactly as a session would load it.

    Raises:
        ConfigError: The layers produce an invalid pipeline (the message names the field).
    """
    try:
        from presence.framework.config import load_pipeline

        load_pipeline(path, overrides)
    except ImportError as exc:  # a part of presence this check needs is not installed yet
        logger.warning(f"cannot validate persona layers now ({exc}); they are checked at start")


def knowledge_dir(settings: ServiceSettings, persona_id: str) -> Path:
    """Folder holding a persona's uploaded documents."""
    return settings.data_dir / "personas" / persona_id / "knowledge"


def write_documents(settings: ServiceSettings, persona_id: str, documents: list[dict]) -> None:
    """Replace a persona's knowledge-base documents with ``documents``."""
    folder = knowledge_dir(settings, persona_id)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        old.unlink()
    for doc in documents:
        name = doc["document_name"]
        name = name if name.endswith(".md") else f"{name}.md"
        (folder / name).write_text(doc["content"])


def llm_provider(layers: dict[str, Any] | None, pipeline: Path) -> str | None:
    """The LLM provider a persona's layers select on ``pipeline``."""
    base = base_providers(pipeline)
    return (translate_layers(layers, base).layers.get("llm") or {}).get("provider") or base.get(
        "llm"
    )


def conversation_spec(
    settings: ServiceSettings,
    conversation: ConversationRow,
    persona: PersonaRow | None,
    replica: ReplicaRow | None,
    knowledge: Knowledge | None = None,
    memories: list[str] | None = None,
    *,
    guardrails: list[dict[str, Any]] | None = None,
    objectives: list[dict[str, Any]] | None = None,
) -> ConversationSpec:
    """The launcher's view of a conversation about to start.

    Args:
        settings: Service settings.
        conversation: The new conversation's row.
        persona: Its persona, if any.
        replica: Its replica, if any.
        knowledge: Its knowledge folder (``presence.service.knowledge.build_knowledge``).
        memories: Its memory stores' memories, added to its context.
        guardrails: Its persona's guardrails.
        objectives: Its persona's objectives.
    """
    updates: dict[str, Any] = {}
    overrides: list[str] = []
    pipeline = settings.base_pipeline
    if persona is not None:
        pipeline = resolve_pipeline(persona.pipeline, settings)
        overrides, _ = persona_layers(persona.layers, pipeline)
        updates["name"] = persona.persona_name
        if persona.system_prompt:
            updates["system_prompt"] = persona.system_prompt
        if persona.context:
            updates["context"] = persona.context
        if persona.greeting:
            updates["greeting"] = persona.greeting
        if persona.documents:
            updates["knowledge_base"] = str(knowledge_dir(settings, persona.id))
    if knowledge is not None and knowledge.folder is not None:
        updates["knowledge_base"] = str(knowledge.folder)
    strategy = (conversation.tavus_fields or {}).get("document_retrieval_strategy")
    overrides = overrides + retrieval_overrides(
        llm_provider(persona.layers if persona else None, pipeline),
        strategy,
        bool(knowledge and knowledge.document_ids),
        persona.layers if persona else {},
    )
    extra = [conversation.conversational_context, memory_context(memories or [])]
    if any(extra):
        updates["conversational_context"] = "\n\n".join(x for x in extra if x)
    if conversation.custom_greeting is not None:
        updates["greeting"] = conversation.custom_greeting
    if replica is not None:
        updates["replica"] = replica.source_path
    props = dict(conversation.properties or {})
    recording = None
    if props.get("enable_recording"):
        recording = Path(settings.recordings_dir) / f"{conversation.id}.mp4"
    return ConversationSpec(
        conversation_id=conversation.id,
        pipeline=pipeline,
        overrides=overrides,
        persona=updates,
        properties=props,
        recording_path=recording,
        guardrails=list(guardrails or []),
        objectives=list(objectives or []),
    )


def apply_persona(persona: Any, updates: dict[str, Any]) -> Any:
    """The pipeline's ``Persona`` with a spec's updates applied (context appended, paths made Paths)."""
    fields = {k: v for k, v in updates.items() if k != "conversational_context"}
    for key in ("knowledge_base", "replica"):
        if fields.get(key) is not None:
            fields[key] = Path(fields[key])
    extra = updates.get("conversational_context")
    if extra:
        fields["context"] = f"{fields.get('context', persona.context)}\n\n{extra}".strip()
    return persona.model_copy(update=fields)
