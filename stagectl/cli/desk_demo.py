"""The producer desk inside ``stagectl demo``: a seeded month on SQLite, served, its URL printed.

The desk's database lives in the demo's own folder (removed with the demo's logs), seeded with a
month of bookings from this week (:func:`stagectl.desk.seed.seed_month`) and one producer login
whose password is made up for this run and printed once. ``stagectl desk serve`` runs as one
more child of the demo, so it stops with it.
"""

from __future__ import annotations

import secrets
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from stagectl.cli.lifecycle import ChildGroup

DESK_PORT = 8470
DEMO_USER = "demo"


def _port(preferred: int = DESK_PORT) -> int:
    """``preferred`` if it is free on loopback, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            found: int = sock.getsockname()[1]
            return found
    raise OSError("no free loopback port for the desk")


def prepare(folder: Path) -> tuple[Path, str, str]:
    """Seed the desk's database in ``folder``; returns (config path, URL, password)."""
    from scheduler.booking.store import BookingStore
    from stagectl.desk import auth
    from stagectl.desk.seed import seed_month

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "booking.sqlite"
    password = secrets.token_urlsafe(9)
    store = BookingStore(db)
    try:
        seed_month(store, datetime.now(UTC))
        auth.ensure_schema(store.conn)
        auth.add_user(store.conn, DEMO_USER, "producer", password)
    finally:
        store.close()
    port = _port()
    config = folder / "desk.toml"
    config.write_text(f"""# the demo's producer desk (made by stagectl demo)
[desk]
bind = "127.0.0.1:{port}"
db = "{db}"
""", encoding="utf-8")
    return config, f"http://127.0.0.1:{port}/", password


def start(group: ChildGroup, timeout_s: float = 20.0) -> tuple[str, str]:
    """Seed, spawn ``stagectl desk serve`` in ``group`` and wait until it answers."""
    config, url, password = prepare(group.log_dir / "desk")
    group.spawn("desk", ["desk", "serve", "--config", str(config)], stop_wait_s=2.0)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "api/v1/sites", timeout=1):
                break
        except urllib.error.HTTPError:
            break  # it answers (401 without a login): up
        except OSError:
            time.sleep(0.2)
    return url, password
