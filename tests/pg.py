"""A real PostgreSQL for the tests: one server per run, one fresh database per test.

The server is the one ``scripts/postgres-up.sh`` starts (Debian's PostgreSQL, a private
cluster on a Unix socket), or the one ``STAGECTL_TEST_POSTGRES`` names (a URL of a role that
may create databases; `.ci/run` sets it). Without either, PostgreSQL tests skip on a laptop and
fail under ``CI=true``. Each test gets its own database, made from a migrated template, and
dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REPO = Path(__file__).resolve().parents[1]
ENV = "STAGECTL_TEST_POSTGRES"


def _server_url() -> str:
    url = os.environ.get(ENV, "").strip()
    if url:
        return url
    have = shutil.which("initdb") or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not have:
        message = (f"PostgreSQL is not installed (apt-get install postgresql) and {ENV} is "
                   "not set")
        if IN_CI:
            pytest.fail(f"CI=true: {message}; .ci/run must install it")
        pytest.skip(message)
    env = dict(os.environ, STAGECTL_PG_NO_INSTALL="1")
    out = subprocess.run(["bash", str(REPO / "scripts" / "postgres-up.sh")], env=env,
                         capture_output=True, text=True, timeout=180, check=False)
    if out.returncode != 0:
        message = f"scripts/postgres-up.sh failed: {out.stderr.strip()[-500:]}"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    url = out.stdout.strip().splitlines()[-1]
    os.environ[ENV] = url  # child processes (CLI tests) and later tests reuse it
    return url


def with_database(url: str, name: str) -> str:
    """``url`` with its database name replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def admin(url: str, *statements: str) -> None:
    """Run statements on the server's own database (CREATE/DROP DATABASE need autocommit)."""
    import psycopg

    with psycopg.connect(_conninfo(url), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)  # type: ignore[arg-type]


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class PgServer:
    """The test server: new databases on demand."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []
        self._template: str | None = None

    def database(self, template: str | None = None) -> str:
        """A new, empty database (or a copy of ``template``), dropped after the run."""
        name = "t_" + secrets.token_hex(6)
        clause = f" TEMPLATE {template}" if template else ""
        admin(self.url, f"CREATE DATABASE {name}{clause}")
        self.made.append(name)
        return with_database(self.url, name)

    def migrated(self) -> str:
        """The name of a database holding the booking schema (made once per run)."""
        if self._template is None:
            from scheduler.booking.pg import ensure_schema

            url = self.database()
            ensure_schema(url, create=True)
            self._template = urlsplit(url).path.lstrip("/")
        return self._template

    def drop(self, url: str) -> None:
        """Drop a database this server made (its connections are ended); best effort."""
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        for _ in range(20):
            try:
                admin(self.url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            except psycopg.Error:
                time.sleep(0.1)  # a backend still ending; the end of the run tries again
                continue
            if name in self.made:
                self.made.remove(name)
            return


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer(_server_url())
    yield server
    for name in list(server.made):
        try:
            admin(server.url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except Exception:
            pass


@pytest.fixture(params=["sqlite", "postgresql"])
def booking_db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a test's booking store lives: an SQLite file, then a fresh PostgreSQL database.

    Every test that takes it runs once on each backend.
    """
    if request.param == "sqlite":
        return tmp_path / "booking.sqlite"
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.database(template=server.migrated())
    request.addfinalizer(lambda: server.drop(url))
    return url


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no schema yet) for one test."""
    url = pg_server.database()
    yield url
    pg_server.drop(url)
