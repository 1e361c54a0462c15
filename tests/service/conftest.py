"""Fixtures for the service tests (helpers in ``tests/helpers/service.py``)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from helpers.service import KEY_A, PipecatLauncher, Receiver, make_settings

from presence.service.app import create_app


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.down()


@pytest.fixture
def launcher(request):
    """A ``PipecatLauncher``; parametrize indirectly with ``None`` for one where nobody joins."""
    join = getattr(request, "param", True) is not None
    return PipecatLauncher(join=join)


@pytest.fixture
def service(tmp_path, launcher):
    """A TestClient on a fresh app (lifespan running) with key A's header set."""
    app = create_app(make_settings(tmp_path), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        yield client
