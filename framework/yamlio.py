"""Reading YAML into pydantic models with errors that name the file, the field and the fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from presence.framework.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def parse_yaml(text: str, *, source: str, field: str | None = None, lenient: bool = False) -> Any:
    """Parse YAML text (a file's, or a ``--set`` value) into plain data.

    Args:
        text: The YAML.
        source: The file (or ``--set``) it came from, for errors.
        field: The field it is the value of (``--set``), for errors.
        lenient: Text that is not YAML at all is returned as it is (a ``--set`` prompt with a
            colon in it); values YAML cannot build and cycles are still refused.

    Raises:
        ConfigError: The text is not YAML, holds a value YAML cannot build (``2026-02-30``,
            ``!!int x``), nests too deeply, or an alias refers to its own parent (a cycle).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        if lenient:
            return text
        raise ConfigError(f"malformed YAML{_yaml_problem(exc)}", source=source) from None
    except RecursionError:
        raise ConfigError(
            "YAML nested too deeply; flatten it", source=source, field=field
        ) from None
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for values they cannot build
        raise ConfigError(
            f"YAML value cannot be read ({exc}); quote it to keep it as text",
            source=source,
            field=field,
        ) from None
    _check_acyclic(data, source=source, field=field)
    return data


def _check_acyclic(data: Any, *, source: str, field: str | None) -> None:
    """Refuse YAML whose alias refers to its own parent (``a: &x [*x]``): no value can hold it."""
    stack = [(data, ())]
    while stack:
        node, parents = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in parents:
            raise ConfigError(
                "a YAML alias (*name) refers to a value that contains it; remove the cycle",
                source=source,
                field=field,
            )
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, (*parents, id(node))) for child in children)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Raises:
        ConfigError: The file does not exist, is not UTF-8 YAML, or is not a mapping.
    """
    if not path.is_file():
        raise ConfigError("file not found; check the path", source=str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); save the file as UTF-8", source=str(path)
        ) from None
    data = parse_yaml(text, source=str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys to values at the top level, got {type(data).__name__}",
            source=str(path),
        )
    return data


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what, in one line, for a YAML parse error."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        return (
            f" at position {exc.position}: character #x{exc.character:04x} is not allowed in "
            "YAML; remove it"
        )
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where}: {problem}"


def _shown(value: Any, limit: int = 80) -> str:
    """``value`` for an error message: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


_UNION_MEMBER = re.compile(r"^(?:function-\w+\[.*\]|[A-Z]\w*|bool|int|float|str)$")


def field_path(loc: tuple[Any, ...], data: Any) -> list[Any]:
    """The keys of ``loc`` a user can find in ``data``.

    pydantic puts a tagged union's tag in the error location (``transport.webrtc.video``), and
    the member of a plain union it tried (``floor.function-after[_check(), FloorParams]``); the
    file has no such key (it says ``kind: webrtc``, or nothing), so both are left out.
    """
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(part, str) and not (isinstance(node, dict) and part in node):
            tags = (
                [v for v in node.values() if isinstance(v, str)] if isinstance(node, dict) else []
            )
            if part in tags or _UNION_MEMBER.match(part):
                continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def describe_validation_error(
    exc: ValidationError, *, source: str, prefix: str = "", data: Any = None
) -> ConfigError:
    """Turn the first pydantic error into a ``ConfigError`` naming field, problem and fix.

    Args:
        exc: The validation error.
        source: The file (or ``--set``) the data came from.
        prefix: Dotted path of the validated data inside the file.
        data: The validated data (lets the field path leave out tagged-union tags).
    """
    err = exc.errors()[0]
    parts = (prefix.split(".") if prefix else []) + (
        [str(p) for p in field_path(tuple(err["loc"]), data)]
        if data is not None
        else [str(p) for p in err["loc"]]
    )
    loc = ".".join(parts)
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = ".".join(parts[:-1])
        return ConfigError(
            f"unknown key {_shown(parts[-1])}"
            + (f" under '{parent}'" if parent else "")
            + "; remove it or check its spelling",
            source=source,
            field=loc,
        )
    if kind == "missing":
        return ConfigError("required field is missing; add it", source=source, field=loc)
    ctx = err.get("ctx") or {}
    if kind == "union_tag_not_found":  # e.g. a transport without `kind`
        key = str(ctx.get("discriminator", "")).strip("'")
        return ConfigError(
            "required field is missing; add it", source=source, field=f"{loc}.{key}" if loc else key
        )
    if kind == "union_tag_invalid":
        key = str(ctx.get("discriminator", "")).strip("'")
        return ConfigError(
            f"{_shown(ctx.get('tag'))} is not allowed; allowed: {ctx.get('expected_tags')}",
            source=source,
            field=f"{loc}.{key}" if loc else key,
        )
    got = err.get("input")
    if got is None:
        shown = " (got an empty value)"
    elif isinstance(got, dict):
        shown = ""
    else:
        shown = f" (got {_shown(got)})"
    return ConfigError(f"{err['msg']}{shown}", source=source, field=loc)


def validate_model(data: dict[str, Any], model: type[M], *, source: str, prefix: str = "") -> M:
    """Validate ``data`` as ``model``, mapping the first problem to a ``ConfigError``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, source=source, prefix=prefix, data=data) from None


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``."""
    return validate_model(read_yaml(path), model, source=str(path))
