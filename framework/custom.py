"""Custom stages and inserted processors by import path: ``provider: mypackage.module:factory``.

Any importable callable that returns a pipecat ``FrameProcessor`` can stand in for a stage or be
inserted at a named point of the data path, with no change to presence and no registration::

    stages:
      tts: {provider: "mypackage.voices:make_tts", voice: alto}
    insert:
      - {at: after_stt, provider: "mypackage.filters:Redact", words: [password]}

The callable's other keys are validated before anything starts, from:

- a pydantic model it declares as ``Params`` (a class attribute or a function attribute); the
  callable is then called with the validated model as its one argument; or
- its signature: each named parameter becomes a field of its annotated type, required when it has
  no default (``*args``/``**kwargs`` are ignored); it is called with them as keywords.

A parameter named ``ctx`` (or annotated ``BuildContext``) receives the build context (persona,
video size, audio rates, the pipeline file's folder) and is not a config key.

Insert points (``INSERT_POINTS``, in data-path order; ``INSERT_ALIASES`` gives other names)::

    transport.input ─ after_input ─ stt ─ after_stt ─ user aggregator ─ after_user_aggregator
      ─ perception ─ before_llm ─ llm ─ before_tts ─ tts ─ before_renderer ─ renderer
      ─ after_renderer ─ transport.output ─ assistant aggregator

Several entries at one point keep their file order.

Module lookup: a top-level module is first looked for as ``<name>.py`` beside the pipeline file
(as Python looks in a script's folder first), so a pipeline and its processor can sit in one
folder; otherwise ``importlib.import_module``. Every failure is a ``ConfigError`` naming the
file, the field and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, create_model

from presence.framework.errors import ConfigError
from presence.framework.registry import BuildContext, Provider, StageParams
from presence.framework.yamlio import validate_model

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

INSERT_POINTS = (
    "after_input",
    "after_stt",
    "after_user_aggregator",
    "before_llm",
    "before_tts",
    "before_renderer",
    "after_renderer",
)
"""Where ``insert:`` entries go, in data-path order (see ``presence.framework.builder``)."""

INSERT_ALIASES = {
    "before_stt": "after_input",
    "after_perception": "before_llm",
    "after_llm": "before_tts",
    "after_tts": "before_renderer",
    "before_output": "after_renderer",
}
"""Other names for the same points (``after_llm`` is ``before_tts``, and so on)."""

# FrameProcessor's own plumbing, not config keys (``name`` stays: it names the processor)
_PROCESSOR_PLUMBING = ("enable_direct_mode", "metrics")


class ImportedParams(StageParams):
    """Base of the parameter models derived from a callable's signature (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


@dataclass
class InsertConfig:
    """One ``insert:`` entry: a processor placed at a named point of the data path.

    Attributes:
        at: The point, one of ``INSERT_POINTS`` (aliases resolved).
        provider: The imported callable as a provider.
        params: Its validated parameters.
        field: Dotted path of the entry in the file, e.g. ``insert.0`` (for errors).
    """

    at: str
    provider: Provider
    params: StageParams
    field: str


def is_import_path(name: object) -> bool:
    """Whether ``name`` looks like ``module.path:attribute`` rather than a registered name."""
    return isinstance(name, str) and ":" in name


def _import_module(module: str, *, base_dir: Path | None, source: str, field: str):
    beside = base_dir / f"{module}.py" if base_dir is not None and "." not in module else None
    if beside is not None and beside.is_file():  # like a script's folder: first on the path
        return _load_file(module, beside, source=source, field=field)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        top = module.split(".")[0]
        if exc.name not in (module, top):  # the module exists; one of its own imports is missing
            raise ConfigError(
                f"importing '{module}' failed: {exc}; install what it needs",
                source=source,
                field=field,
            ) from exc
        where = f" or {beside}" if beside is not None else ""
        raise ConfigError(
            f"cannot import module '{module}' ({exc}); install it, put it on PYTHONPATH{where}, "
            "or fix the path (written module.path:attribute)",
            source=source,
            field=field,
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"importing '{module}' raised {type(exc).__name__}: {exc}", source=source, field=field
        ) from exc


def _load_file(module: str, path: Path, *, source: str, field: str):
    if module in sys.modules and getattr(sys.modules[module], "__file__", None) == str(path):
        return sys.modules[module]
    spec = importlib.util.spec_from_file_location(module, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[module] = loaded  # dataclasses and pickling look their module up by name
    try:
        spec.loader.exec_module(loaded)
    except ModuleNotFoundError as exc:
        sys.modules.pop(module, None)
        raise ConfigError(
            f"importing {path} failed: {exc}; install what it needs", source=source, field=field
        ) from exc
    except Exception as exc:
        sys.modules.pop(module, None)
        raise ConfigError(
            f"loading {path} raised {type(exc).__name__}: {exc}", source=source, field=field
        ) from exc
    return loaded


def load_callable(
    path: str, *, source: str, field: str, base_dir: Path | None = None
) -> typing.Callable[..., Any]:
    """Import ``module.path:attribute`` and return the attribute (a class or function).

    Raises:
        ConfigError: The text is malformed, the module cannot be imported, the attribute is
            missing, or it is not callable.
    """
    if not _PATH.match(path):
        raise ConfigError(
            f"'{path}' is not an import path; write module.path:attribute, e.g. "
            "mypackage.filters:Redact",
            source=source,
            field=field,
        )
    module_name, attribute = path.split(":", 1)
    target: Any = _import_module(module_name, base_dir=base_dir, source=source, field=field)
    for part in attribute.split("."):
        if not hasattr(target, part):
            found = sorted(
                n for n, v in vars(target).items() if callable(v) and not n.startswith("_")
            )[:12]
            raise ConfigError(
                f"'{module_name}' has no attribute '{attribute}'"
                + (f"; it has: {', '.join(found)}" if found else ""),
                source=source,
                field=field,
            )
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(
            f"'{path}' is a {type(target).__name__}, not a callable; name a FrameProcessor class "
            "or a function that returns one",
            source=source,
            field=field,
        )
    return target


def _wants_context(name: str, annotation: Any) -> bool:
    return name == "ctx" or annotation is BuildContext


def _declared_model(target: Any) -> type[BaseModel] | None:
    model = getattr(target, "Params", None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _signature(target: Any) -> tuple[list[inspect.Parameter], dict[str, Any]]:
    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return [], {}
    func = target.__init__ if isinstance(target, type) else target
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable annotations: validate those parameters as Any
        hints = {}
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in signature.parameters.values() if p.kind in kinds], hints


def params_model(target: Any, path: str) -> tuple[type[BaseModel], bool, bool]:
    """The parameter model of ``target``, whether it takes the model whole, and whether it takes ctx.

    Returns:
        ``(model, takes_model, takes_ctx)``: ``takes_model`` when ``target`` declares ``Params``
        (it is called with the validated model), else it is called with keywords.
    """
    parameters, hints = _signature(target)
    takes_ctx = any(_wants_context(p.name, hints.get(p.name)) for p in parameters)
    declared = _declared_model(target)
    if declared is not None:
        return declared, True, takes_ctx
    fields: dict[str, Any] = {}
    for p in parameters:
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        if _wants_context(p.name, annotation) or (
            p.name in _PROCESSOR_PLUMBING and default is not ...
        ):
            continue
        fields[p.name] = (annotation, default)
    name = re.sub(r"\W", "_", path.split(":")[-1]) + "Params"
    return create_model(name, __base__=ImportedParams, **fields), False, takes_ctx


def import_provider(
    stage: str, path: str, *, source: str, field: str, base_dir: Path | None = None
) -> Provider:
    """A ``Provider`` for the callable at ``path``, usable like a registered one.

    Args:
        stage: The stage it builds (or ``insert`` for an inserted processor).
        path: ``module.path:attribute``.
        source: The pipeline file (for errors).
        field: The dotted field that named it (for errors), e.g. ``insert.0.provider``.
        base_dir: Folder of the pipeline file, searched for a top-level module.

    Raises:
        ConfigError: The callable cannot be loaded (see ``load_callable``).
    """
    target = load_callable(path, source=source, field=field, base_dir=base_dir)
    model, takes_model, takes_ctx = params_model(target, path)

    def factory(params: BaseModel, ctx: BuildContext) -> Any:
        extra = {"ctx": ctx} if takes_ctx else {}
        if takes_model:
            return target(params, **extra)
        values = {name: getattr(params, name) for name in type(params).model_fields}
        return target(**values, **extra)

    summary = (inspect.getdoc(target) or "").split("\n")[0]
    return Provider(stage, path, model, factory, summary)  # type: ignore[arg-type]


def resolve_inserts(
    entries: list[Any], *, source: str, base_dir: Path | None = None
) -> list[InsertConfig]:
    """Validate ``insert:`` entries: each ``{at: POINT, provider: module:factory, ...params}``.

    Raises:
        ConfigError: An entry is not a mapping, its point is unknown, its provider is not an
            importable callable, or a parameter does not fit the callable.
    """
    points = ", ".join(INSERT_POINTS)
    resolved = []
    for i, raw in enumerate(entries):
        prefix = f"insert.{i}"
        if not isinstance(raw, dict):
            raise ConfigError(
                f"expected a mapping like {{at: after_stt, provider: module:factory}}, "
                f"got {type(raw).__name__}",
                source=source,
                field=prefix,
            )
        at = raw.get("at")
        at = INSERT_ALIASES.get(at, at) if isinstance(at, str) else at
        if at not in INSERT_POINTS:
            problem = "missing 'at'" if at is None else f"unknown point {raw.get('at')!r}"
            raise ConfigError(
                f"{problem}; points are: {points}", source=source, field=f"{prefix}.at"
            )
        name = raw.get("provider")
        if not is_import_path(name):
            raise ConfigError(
                "an inserted processor names an importable callable as module.path:attribute, "
                f"e.g. mypackage.filters:Redact (got {name!r})",
                source=source,
                field=f"{prefix}.provider",
            )
        provider = import_provider(
            "insert", str(name), source=source, field=f"{prefix}.provider", base_dir=base_dir
        )
        data = {k: v for k, v in raw.items() if k not in ("at", "provider")}
        params = validate_model(data, provider.params, source=source, prefix=prefix)
        resolved.append(InsertConfig(at, provider, params, prefix))
    return resolved
