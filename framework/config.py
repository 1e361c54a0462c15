"""Pipeline files: schema, ``${VAR}`` secrets, ``--set`` overrides, and per-provider validation.

A pipeline file names a transport, a persona and one provider per stage::

    name: local
    transport: {kind: webrtc, video: {width: 512, height: 512, fps: 25}}
    persona: personas/guide/persona.yaml
    stages:
      stt: {provider: pocketsphinx}
      llm: {provider: anthropic, model: claude-sonnet-4-5, api_key: ${ANTHROPIC_API_KEY}}

Loading fails before anything starts, with a ``ConfigError`` that names the file, the dotted field
and the allowed values or the fix. Secrets come only from the environment: ``${VAR}`` (required) or
``${VAR:-default}``.

Custom code needs no change to presence: a stage's ``provider`` may be an import path
(``mypackage.module:factory``), and ``insert:`` adds processors at named points of the data path
(``presence.framework.custom.INSERT_POINTS``; see that module for how their parameters are validated)::

    insert:
      - {at: after_stt, provider: "mypackage.filters:Redact", words: [password]}
      - {at: after_renderer, provider: "mypackage.overlays:Watermark"}
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from presence.framework import registry
from presence.framework.custom import InsertConfig, import_provider, is_import_path, resolve_inserts
from presence.framework.errors import ConfigError, MissingSecretError
from presence.framework.persona import Persona, load_persona
from presence.framework.registry import STAGES, Provider, StageParams
from presence.framework.yamlio import (
    describe_validation_error,
    parse_yaml,
    read_yaml,
    validate_model,
)

DEFAULT_STAGES: dict[str, dict[str, Any]] = {
    "vad": {"provider": "silero"},
    "turn": {"provider": "smart-turn"},
    "renderer": {"provider": "warp"},
    "perception": {"provider": "off"},
}
REQUIRED_STAGES = ("stt", "llm", "tts")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class PipelineSpec(BaseModel):
    """The top level of a pipeline file (stage parameters are validated per provider)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    transport: dict[str, Any] = Field(default_factory=lambda: {"kind": "webrtc"})
    persona: Path
    stages: dict[str, dict[str, Any]]
    insert: list[dict[str, Any]] = Field(default_factory=list)


@dataclass
class StageConfig:
    """One stage resolved against the registry.

    Attributes:
        stage: Stage name, one of ``registry.STAGES``.
        provider: The registered provider.
        params: The provider's validated parameter model.
        fallbacks: Further providers to try, in order, when this one fails.
        recover_after_s: With fallbacks (LLM, TTS): seconds after a failover before a turn goes
            back to this provider; ``math.inf`` never; ``None`` the default (60 s).
    """

    stage: str
    provider: Provider
    params: StageParams
    fallbacks: list[StageConfig] = field(default_factory=list)
    recover_after_s: float | None = None


@dataclass
class LoadedPipeline:
    """A fully validated pipeline file, ready for the builder."""

    source: Path
    spec: PipelineSpec
    persona: Persona
    stages: dict[str, StageConfig]
    transport: Any
    inserts: list[InsertConfig] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        """Folder of the pipeline file."""
        return self.source.parent


PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"
"""The pipelines shipped with presence (``local``, ``cloud``, ``byo-llm``)."""


def bundled_pipelines() -> list[str]:
    """Names of the pipeline files shipped with presence, for ``load_pipeline(name)``."""
    return sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))


def resolve_pipeline_path(path: str | Path) -> Path:
    """``path`` itself when it exists, else the bundled pipeline of that name (``"local"``).

    Raises:
        ConfigError: Neither exists; the message lists the bundled names.
    """
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    bundled = PIPELINES_DIR / f"{candidate.name}.yaml"
    if candidate.name == str(path) and not candidate.suffix and bundled.is_file():
        return bundled
    raise ConfigError(
        f"pipeline file not found; give a path or a bundled name ({', '.join(bundled_pipelines())})",
        source=str(path),
    )


def override_strings(overrides: Sequence[str] | Mapping[str, Any] | str | None) -> list[str]:
    """Overrides as ``PATH=VALUE`` strings (mapping values are written as JSON, which YAML reads)."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    return [str(o) for o in overrides]


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse one ``--set PATH=VALUE`` into its path parts and a YAML-typed value.

    Raises:
        ConfigError: The text has no ``=`` or an empty path.
    """
    path, sep, raw = text.partition("=")
    parts = [p for p in path.strip().split(".") if p]
    if not sep or not parts:
        raise ConfigError(
            f"cannot read override {text!r}; write it as PATH=VALUE, e.g. stages.stt.provider=deepgram",
            source="--set",
        )
    # text that is not YAML is the value as written (e.g. a prompt with a colon in it)
    value = (
        parse_yaml(raw, source="--set", field=".".join(parts), lenient=True) if raw.strip() else ""
    )
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides to raw file data, creating intermediate mappings as needed.

    A number indexes a list (``insert.0.text=Bye``); it must name an existing item.
    """
    for text in overrides:
        parts, value = parse_override(text)
        node: Any = data
        for i, key in enumerate(parts):
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not key.isdigit() or int(key) >= len(node):
                    raise ConfigError(
                        f"'{'.'.join(parts[:i])}' is a list of {len(node)}; '{key}' is not an "
                        "index in it",
                        source="--set",
                        field=where,
                    )
                key = int(key)
            elif not isinstance(node, dict):
                raise ConfigError(
                    f"'{'.'.join(parts[:i])}' is a value, not a mapping; cannot set "
                    f"'{'.'.join(parts)}'",
                    source="--set",
                    field=".".join(parts),
                )
            if i == len(parts) - 1:
                node[key] = value
                break
            child = node[key] if isinstance(node, list) else node.get(key)
            if child is None:
                child = node[key] = {}
            node = child
    return data


def interpolate(value: Any, *, source: str, path: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of ``value`` from the environment.

    Raises:
        MissingSecretError: A required variable is unset; the message names it and the field.
    """
    if isinstance(value, dict):
        return {
            k: interpolate(v, source=source, path=f"{path}.{k}" if path else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [interpolate(v, source=source, path=f"{path}.{i}") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is not None and found != "":
            return found
        if default is not None:
            return default
        raise MissingSecretError(
            f"environment variable {name} is not set; export {name}=... (secrets never go in the file)",
            source=source,
            field=path,
        )

    return _VAR.sub(substitute, value)


def _resolve_stage(
    stage: str,
    raw: Any,
    *,
    source: str,
    prefix: str,
    allow_fallback: bool = True,
    base_dir: Path | None = None,
) -> StageConfig:
    if not isinstance(raw, dict):
        raise ConfigError(
            f"expected a mapping like {{provider: NAME, ...}}, got {type(raw).__name__}",
            source=source,
            field=prefix,
        )
    allowed = registry.provider_names(stage)
    name = raw.get("provider")
    if name is False:  # YAML 1.1 reads a bare `off` as false
        name = "off"
    if name is None:
        raise ConfigError(
            f"missing 'provider'; allowed: {', '.join(allowed)}", source=source, field=prefix
        )
    if is_import_path(name):
        provider = import_provider(
            stage, str(name), source=source, field=f"{prefix}.provider", base_dir=base_dir
        )
    else:
        provider = registry.get(stage, str(name))
    if provider is None:
        raise ConfigError(
            f"unknown provider {name!r}; allowed: {', '.join(allowed)}, "
            "or an import path module.path:factory",
            source=source,
            field=f"{prefix}.provider",
        )
    params_data = {
        k: v for k, v in raw.items() if k not in ("provider", "fallback", "recover_after_s")
    }
    params = validate_model(params_data, provider.params, source=source, prefix=prefix)
    fallbacks: list[StageConfig] = []
    if "fallback" in raw:
        if not allow_fallback:
            raise ConfigError(
                "a fallback cannot have its own fallback list", source=source, field=prefix
            )
        entries = raw["fallback"]
        if not isinstance(entries, list):
            raise ConfigError(
                "expected a list of {provider: NAME, ...} mappings",
                source=source,
                field=f"{prefix}.fallback",
            )
        fallbacks = [
            _resolve_stage(
                stage,
                entry,
                source=source,
                prefix=f"{prefix}.fallback.{i}",
                allow_fallback=False,
                base_dir=base_dir,
            )
            for i, entry in enumerate(entries)
        ]
    recover_after_s = None
    if "recover_after_s" in raw:
        recover_after_s = _recover_after_s(stage, raw, source=source, prefix=prefix)
    return StageConfig(stage, provider, params, fallbacks, recover_after_s)


def _recover_after_s(stage: str, raw: dict[str, Any], *, source: str, prefix: str) -> float:
    """``recover_after_s``: seconds ≥ 0 or ``never``, only beside a ``fallback`` list."""
    field_name = f"{prefix}.recover_after_s"
    if stage not in ("llm", "tts") or "fallback" not in raw:
        raise ConfigError(
            "recover_after_s goes beside a fallback list of an llm or tts stage",
            source=source,
            field=field_name,
        )
    value = raw["recover_after_s"]
    if value == "never" or value is False:  # not `in`: 0 == False would mean never
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(
            f"expected seconds (a number ≥ 0) or 'never', got {value!r}",
            source=source,
            field=field_name,
        )
    return float(value)


def resolve_stages(
    stages: dict[str, Any], *, source: str, base_dir: Path | None = None
) -> dict[str, StageConfig]:
    """Validate every stage against the registry, filling in defaults for optional stages.

    Args:
        stages: The ``stages:`` mapping.
        source: The file it came from (for errors).
        base_dir: Folder searched for a top-level module named by an import-path provider.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(
            f"unknown stage '{unknown[0]}'; stages are: {', '.join(STAGES)}",
            source=source,
            field=f"stages.{unknown[0]}",
        )
    for stage in REQUIRED_STAGES:
        if stage not in stages:
            allowed = ", ".join(registry.provider_names(stage))
            raise ConfigError(
                f"required stage is missing; add it with one of: {allowed}",
                source=source,
                field=f"stages.{stage}",
            )
    merged = {**DEFAULT_STAGES, **stages}
    return {
        stage: _resolve_stage(
            stage, merged[stage], source=source, prefix=f"stages.{stage}", base_dir=base_dir
        )
        for stage in STAGES
        if stage in merged
    }


def _validate_transport(data: dict[str, Any], *, source: str) -> Any:
    from presence.transports.factory import TransportSpec

    try:
        return TypeAdapter(TransportSpec).validate_python(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, source=source, prefix="transport", data=data) from None


def load_pipeline(path: str | Path, overrides: list[str] | None = None) -> LoadedPipeline:
    """Load, interpolate, override and validate a pipeline file.

    Args:
        path: The pipeline YAML file.
        overrides: ``PATH=VALUE`` strings applied before validation, exactly like file content.

    Returns:
        The validated pipeline with its persona loaded and every stage resolved.

    Raises:
        ConfigError: Anything is wrong; the message names the file, field and fix.
    """
    source_path = Path(path)
    source = str(source_path)
    data = read_yaml(source_path)
    data = apply_overrides(data, list(overrides or []))
    data = interpolate(data, source=source)
    spec = validate_model(data, PipelineSpec, source=source)
    base_dir = source_path.resolve().parent
    stages = resolve_stages(spec.stages, source=source, base_dir=base_dir)
    inserts = resolve_inserts(spec.insert, source=source, base_dir=base_dir)
    transport = _validate_transport(spec.transport, source=source)
    persona_path = spec.persona if spec.persona.is_absolute() else source_path.parent / spec.persona
    try:
        persona = load_persona(persona_path)
    except ConfigError as exc:
        if exc.source == str(persona_path) and not persona_path.is_file():
            raise ConfigError(
                f"persona file {persona_path} not found; fix the path (relative to the pipeline file)",
                source=source,
                field="persona",
            ) from None
        raise
    return LoadedPipeline(source_path.resolve(), spec, persona, stages, transport, inserts)
