"""Reading YAML into pydantic models with errors that name the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from presence.framework.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping from ``path``.

    Raises:
        ConfigError: The file does not exist, is not valid YAML, or is not a mapping.
    """
    if not path.is_file():
        raise ConfigError("file not found; check the path", source=str(path))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"malformed YAML{where}: {problem}", source=str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping of keys to values at the top level, got {type(data).__name__}",
            source=str(path),
        )
    return data


def describe_validation_error(
    exc: ValidationError, *, source: str, prefix: str = ""
) -> ConfigError:
    """Turn the first pydantic error into a ``ConfigError`` naming field, problem and fix."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in (prefix.split(".") if prefix else []) + list(err["loc"]))
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = ".".join(loc.split(".")[:-1])
        return ConfigError(
            f"unknown key '{loc.split('.')[-1]}'"
            + (f" under '{parent}'" if parent else "")
            + "; remove it or check its spelling",
            source=source,
            field=loc,
        )
    if kind == "missing":
        return ConfigError("required field is missing; add it", source=source, field=loc)
    got = err.get("input")
    shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
    return ConfigError(f"{err['msg']}{shown}", source=source, field=loc)


def validate_model(data: dict[str, Any], model: type[M], *, source: str, prefix: str = "") -> M:
    """Validate ``data`` as ``model``, mapping the first problem to a ``ConfigError``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise describe_validation_error(exc, source=source, prefix=prefix) from None


def load_model(path: Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``."""
    return validate_model(read_yaml(path), model, source=str(path))
