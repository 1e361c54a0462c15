"""A throwaway PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

The server listens on 127.0.0.1 on a free port, trusts local connections, and is stopped (and its
folder removed) when the test session ends. Binaries come from ``PATH`` or Debian's
``/usr/lib/postgresql/<version>/bin`` (the ``postgresql`` package; ``make test`` installs it).
PostgreSQL refuses to run as root: as root the server runs as the ``postgres`` user (created by
the Debian package) through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

from helpers.service import free_port

START_TIMEOUT_SECS = 60


def find_bin(name: str) -> str | None:
    """The path of a PostgreSQL server binary, or ``None`` when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


class PostgresServer:
    """A PostgreSQL cluster of its own; ``url(db)`` gives SQLAlchemy URLs for fresh databases."""

    def __init__(self):
        self.initdb, self.pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if self.initdb is None or self.pg_ctl is None:
            raise RuntimeError(
                "PostgreSQL server binaries not found; install Debian's postgresql package "
                "(make test does) or put initdb and pg_ctl on PATH"
            )
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="presence-pg-"))
        self.data = self.root / "data"
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._prefix, *args],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_SECS,
            cwd=self.root,
        )

    def start(self) -> PostgresServer:
        """Create the cluster and start the server (returns when it accepts connections)."""
        self._run(self.initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c max_connections=200"
        self._run(
            self.pg_ctl, "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w",
            "-t", str(START_TIMEOUT_SECS), "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop the server now and remove its folder."""
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
