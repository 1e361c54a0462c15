"""One guard for optional dependencies."""

from __future__ import annotations

import importlib
from types import ModuleType

from presence.framework.errors import DependencyError


def require(module: str, *, extra: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise a ``DependencyError`` that names the extra to install.

    Args:
        module: Dotted module name to import.
        extra: The ``presence`` extra that provides it, e.g. ``local-audio``.
        package: The PyPI package name when it differs from the module name.

    Returns:
        The imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"'{package or module}' is not installed: run `pip install 'presence[{extra}]'`"
        ) from exc
