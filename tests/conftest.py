"""Shared test setup: puts ``tests/`` on sys.path (for ``helpers`` and ``fakes``) and quiets logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

os.environ.setdefault("PRESENCE_CACHE_DIR", str(TESTS.parent / ".presence-cache" / "tests"))

from loguru import logger  # noqa: E402

logger.remove()
logger.add(sys.stderr, level=os.environ.get("PRESENCE_TEST_LOG_LEVEL", "WARNING"))

REPO = TESTS.parent


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


# Property-based tests (hypothesis, schemathesis): the same examples on every run, no example
# database written into the tree, no per-example deadline on a noisy 2-core box.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # the dev extra is not installed: the property tests skip themselves
    pass
else:
    settings.register_profile(
        "presence",
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    settings.load_profile("presence")
