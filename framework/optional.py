"""One guard for optional dependencies."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
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


def package_folder(package: str, folder: str) -> Path | None:
    """``folder`` inside an installed package (data a wheel ships), or None when either is absent.

    The package is located without importing it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / folder
    return path if path.is_dir() else None
