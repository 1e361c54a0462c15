"""Fixtures for the service tests (helpers in ``tests/helpers/service.py``).

``database_url`` is SQLite by default; a module that sets ``DATABASE_KINDS = DATABASES`` runs each
of its tests that uses the database (the ``service`` or ``database_url`` fixture) on PostgreSQL
too: a fresh database on a throwaway PostgreSQL server started once per test session.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from helpers.service import KEY_A, PipecatLauncher, Receiver, make_settings

from presence.service.app import create_app


def pytest_generate_tests(metafunc):
    kinds = getattr(metafunc.module, "DATABASE_KINDS", None)
    if kinds and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", kinds, indirect=True)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server on 127.0.0.1 for the whole test session (``helpers.postgres``)."""
    from helpers.postgres import PostgresServer

    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def database_url(request, tmp_path):
    """``None`` (the SQLite file in the data folder) or, with param ``postgresql``, a fresh database."""
    kind = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        return request.getfixturevalue("postgres").new_database()
    return None


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
def service(tmp_path, launcher, database_url):
    """A TestClient on a fresh app (lifespan running) with key A's header set."""
    app = create_app(make_settings(tmp_path, database_url=database_url), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        yield client
