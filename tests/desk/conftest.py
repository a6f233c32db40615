"""The ``desk`` fixture: a running desk (uvicorn, port 0), seeded and with users, on SQLite and
on PostgreSQL: every test that uses it runs once on each backend.

The database (stages from configs/booking/stages.json, four users, one API token each) is
made once per session and backend and copied for each test (a file copy, or CREATE DATABASE
with TEMPLATE), so a test pays for no argon2 hashing unless it logs in. Users and passwords
are in :data:`PASSWORDS`; ``desk.client(user)`` is an httpx client with the user's Bearer
token, ``desk.session(user)`` one logged in with a cookie (and its CSRF header set unless
``csrf=False``).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from stagectl.desk import auth
from stagectl.desk.app import open_pool
from stagectl.desk.config import DeskConfig
from stagectl.desk.server import DeskServer
from tests.conftest import require_tool
from tests.pg import PgServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser

#: Chromium's flags for the page tests (no sandbox as root in CI, nothing phoned home).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "configs" / "booking" / "stages.json"
PASSWORDS = {
    "admin": "admin-secret-1",
    "producer": "producer-secret-1",
    "engineer": "engineer-secret-1",
    "viewer": "viewer-secret-1",
}


@dataclass
class Template:
    """The seeded database and the API token of each user."""

    path: Path | str
    tokens: dict[str, str]
    server: PgServer | None = None

    @property
    def backend(self) -> str:
        return "sqlite" if self.server is None else "postgresql"

    def copy(self, folder: Path) -> Path | str:
        """A fresh copy of the template database (dropped or deleted after the run)."""
        if self.server is None:
            assert isinstance(self.path, Path)
            db = folder / "booking.sqlite"
            shutil.copyfile(self.path, db)
            return db
        name = urlsplit(str(self.path)).path.lstrip("/")
        return self.server.database(template=name)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def desk_template(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Template:
    server: PgServer | None = None
    if request.param == "sqlite":
        db: Path | str = tmp_path_factory.mktemp("desk-template") / "booking.sqlite"
    else:
        server = request.getfixturevalue("pg_server")
        db = server.database()
    config = DeskConfig(db=db, seed=SEED, port=0)
    pool = open_pool(config)
    tokens = {}
    try:
        with pool.store() as s:
            for name, password in PASSWORDS.items():
                auth.add_user(s.conn, name, name, password)
                tokens[name] = auth.create_token(s.conn, name, "tests")
    finally:
        pool.close()
    return Template(config.db, tokens, server)


@dataclass
class Desk:
    """A running desk and helpers to talk to it as each user."""

    server: DeskServer
    tokens: dict[str, str]
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def config(self) -> DeskConfig:
        return self.server.config

    def token(self, user: str) -> str:
        """The user's API token."""
        return self.tokens[user]

    def anonymous(self) -> httpx.Client:
        """A client with no credentials."""
        client = httpx.Client(base_url=self.url, timeout=30.0)
        self.clients.append(client)
        return client

    def client(self, user: str) -> httpx.Client:
        """A client that sends ``Authorization: Bearer <user's token>``."""
        client = self.anonymous()
        client.headers["Authorization"] = f"Bearer {self.tokens[user]}"
        return client

    def session(self, user: str, *, csrf: bool = True) -> tuple[httpx.Client, str]:
        """A client logged in with a session cookie, and the session's CSRF token."""
        client = self.anonymous()
        r = client.post("/api/v1/session", json={"user": user, "password": PASSWORDS[user]})
        assert r.status_code == 200, r.text
        token = r.json()["csrf"]
        if csrf:
            client.headers["X-CSRF-Token"] = token
        return client, token

    def close_clients(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()


def start_desk(template: Template, folder: Path, **changes: object) -> DeskServer:
    """A DeskServer on a copy of the template database (``changes``: DeskConfig fields)."""
    db = template.copy(folder)
    config = replace(DeskConfig(db=db, seed=SEED, port=0), **changes)  # type: ignore[arg-type]
    return DeskServer(config).start()


@pytest.fixture
def desk(desk_template: Template, tmp_path: Path) -> Iterator[Desk]:
    server = start_desk(desk_template, tmp_path)
    d = Desk(server, dict(desk_template.tokens))
    try:
        yield d
    finally:
        d.close_clients()
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright, one per test module (the page tests)."""
    from playwright.sync_api import sync_playwright

    chromium = require_tool("chromium", ("/usr/bin",))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
        try:
            yield b
        finally:
            b.close()
