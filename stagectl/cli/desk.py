"""``stagectl desk ...``: the producer desk (docs/desk-api.md).

``serve`` runs the HTTP service; ``user add`` and ``token create`` manage who may use it.
Exit codes: 0 ok, 1 failure, 2 bad input (config, name, role, password).
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from stagectl.config import ConfigError
from stagectl.desk.config import DEFAULT_DESK_CONFIG, DeskConfig, load_desk_config

if TYPE_CHECKING:
    from stagectl.desk.bookings import StorePool

app = typer.Typer(help="The producer desk: bookings and the render farm over HTTP.",
                  no_args_is_help=True)
user_app = typer.Typer(help="Desk users (stored in the booking database).", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for scripts (shown once).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

ConfigOpt = Annotated[Path, typer.Option("--config", help="The desk's TOML file.")]
PASSWORD_ENV = "STAGECTL_DESK_PASSWORD"


def _fail(message: str, code: int) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {escape(message)}",
                                                soft_wrap=True)
    raise typer.Exit(code)


def _config(path: Path) -> DeskConfig:
    try:
        return load_desk_config(path)
    except ConfigError as exc:
        _fail(str(exc), 2)


def _actor() -> str:
    """Who runs the command (the audit's actor): ``cli:<login name>``."""
    try:
        return "cli:" + (os.environ.get("STAGECTL_ACTOR") or getpass.getuser())
    except (KeyError, OSError):
        return "cli:unknown"


def _password() -> str:
    """From STAGECTL_DESK_PASSWORD, else stdin (asked twice on a terminal); never argv."""
    env = os.environ.get(PASSWORD_ENV)
    if env is not None:
        return env
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            _fail("the two passwords differ", 2)
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _pool(config: DeskConfig) -> StorePool:
    from scheduler.dbfile import DatabaseFileError
    from stagectl.desk.app import open_pool

    try:
        return open_pool(config)
    except DatabaseFileError as exc:
        _fail(str(exc), 1)
    except ConfigError as exc:
        _fail(str(exc), 2)


@app.command()
def serve(config: ConfigOpt = DEFAULT_DESK_CONFIG) -> None:
    """Serve the desk until Ctrl-C (SIGINT) or SIGTERM."""
    from scheduler.dbfile import DatabaseFileError
    from stagectl.desk.server import serve as run

    cfg = _config(config)
    try:
        run(cfg, on_ready=lambda url: typer.echo(f"desk: serving {url} (API docs {url}/docs)"))
    except DatabaseFileError as exc:
        _fail(str(exc), 1)
    except ConfigError as exc:
        _fail(str(exc), 2)
    except OSError as exc:
        _fail(f"cannot serve on {cfg.bind}: {exc.strerror or exc}", 1)


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="viewer, producer, engineer or admin.")] = "producer",
    config: ConfigOpt = DEFAULT_DESK_CONFIG,
) -> None:
    """Add a user; the password comes from stdin or STAGECTL_DESK_PASSWORD."""
    from stagectl.desk import auth

    cfg = _config(config)
    try:
        auth.check_name(name)
        auth.check_role(role)
    except auth.UserError as exc:
        _fail(str(exc), 2)
    password = _password()
    pool = _pool(cfg)
    try:
        with pool.store() as s:
            auth.add_user(s.conn, name, role, password)
            auth.audit(s.conn, _actor(), "user add", name, role=role)
    except auth.UserError as exc:
        _fail(str(exc), 2)
    finally:
        pool.close()
    typer.echo(f"added {role} {name} to {cfg.db}")


@user_app.command("disable")
def user_disable(
    name: Annotated[str, typer.Argument(help="User name.")],
    config: ConfigOpt = DEFAULT_DESK_CONFIG,
) -> None:
    """Disable a user: sessions end, tokens and feeds stop working."""
    from stagectl.desk import auth

    pool = _pool(_config(config))
    try:
        with pool.store() as s:
            if not auth.disable_user(s.conn, name):
                _fail(f"no user {name!r}", 1)
            auth.audit(s.conn, _actor(), "user disable", name)
    finally:
        pool.close()
    typer.echo(f"disabled {name}")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="User the token acts as.")],
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
    config: ConfigOpt = DEFAULT_DESK_CONFIG,
) -> None:
    """Print a new API token once (only its SHA-256 is stored)."""
    from stagectl.desk import auth

    pool = _pool(_config(config))
    try:
        with pool.store() as s:
            token = auth.create_token(s.conn, name, label)
            auth.audit(s.conn, _actor(), "token create", name, label=label)
    except auth.UserError as exc:
        _fail(str(exc), 1)
    finally:
        pool.close()
    typer.echo(token)
