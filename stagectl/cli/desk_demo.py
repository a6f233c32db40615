"""The producer desk inside ``stagectl demo``: a seeded month on SQLite, served, its URL printed.

The desk's database lives in the demo's own folder (removed with the demo's logs), seeded with a
month of bookings from this week (:func:`stagectl.desk.seed.seed_month`) and one producer login
whose password is made up for this run and printed once. ``stagectl desk serve`` runs as one
more child of the demo, so it stops with it.

The desk's farm view needs a farm: a real ``stagectl farm controller`` and the agents of
``stagectl farm demo`` run as children too, with that demo's small 8K plate job set submitted,
so the page shows jobs rendering, then finished against their deadlines (without them the
farm view could only say that no controller is configured).
"""

from __future__ import annotations

import secrets
import socket
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stagectl.cli.lifecycle import ChildGroup

if TYPE_CHECKING:
    from scheduler.booking.store import BookingStore

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


SECOND_HOLDERS = ("Car advert", "Music video", "Pop promo", "Fashion film")
"""Productions that stack a second hold on a slot already held (the seeded month has none)."""


def second_holds(store: BookingStore, now: datetime) -> list[str]:
    """Hold rank 2 behind some of the coming first holds, as a competing producer would.

    The seeded month places each request once, so every hold is a first hold and the page's
    "holds by rank" had nothing to show. Each competitor asks for the same slot through the
    store (request, then hold at its wished-for placement), so the store ranks it.
    """
    from scheduler.booking.model import Status
    from scheduler.booking.parse import BookingInputError
    from scheduler.booking.store import BookingRefused

    first = sorted((r for r in store.records()
                    if r.status is Status.HOLD and r.booking.hold_rank == 1
                    and r.booking.start is not None and r.booking.start > now),
                   key=lambda r: r.booking.start or now)
    made: list[str] = []
    for rec, production in zip(first, SECOND_HOLDERS, strict=False):
        b = rec.booking
        if b.start is None:
            continue
        spec = {"production": production, "priority": b.priority,
                "duration_minutes": b.duration_minutes,
                "earliest_start": b.earliest_start.isoformat(),
                "latest_end": b.latest_end.isoformat(), "requires": sorted(b.requires),
                "stage": b.stage, "start": b.start.isoformat()}
        try:
            held = store.hold(store.request(spec, "demo-seed", "demo month").id, "demo-seed",
                              reason="demo month: a second producer wants this slot")
        except (BookingRefused, BookingInputError):
            continue
        made.append(held.id)
    return made


def prepare(folder: Path, farm_controller: str = "") -> tuple[Path, str, str]:
    """Seed the desk's database in ``folder``; returns (config path, URL, password).

    ``farm_controller``: the ``tcp://`` address of the farm the desk's farm view shows.
    """
    from scheduler.booking.store import BookingStore
    from stagectl.desk import auth
    from stagectl.desk.seed import seed_month

    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "booking.sqlite"
    password = secrets.token_urlsafe(9)
    store = BookingStore(db)
    try:
        now = datetime.now(UTC)
        seed_month(store, now)
        second_holds(store, now)
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

[farm]
controller = "{farm_controller}"
""", encoding="utf-8")
    return config, f"http://127.0.0.1:{port}/", password


FARM_SCALE = 16
"""8K divided by this for the demo farm's plates (480x270: a few seconds of CPU in all)."""


def start_farm(group: ChildGroup, folder: Path) -> str:
    """Spawn a farm controller and the farm demo's agents in ``group``; returns its address."""
    from stagectl.cli.farm_demo import AGENTS

    folder.mkdir(parents=True, exist_ok=True)
    address = f"tcp://127.0.0.1:{_port(0)}"
    group.spawn("farm-controller", ["farm", "controller", "--db", str(folder / "farm.sqlite"),
                                    "--bind", address, "--heartbeat-s", "0.5",
                                    "--node-timeout-s", "3"], stop_wait_s=1.0)
    for node_id, slots, vram, speed in AGENTS:
        group.spawn(f"farm-{node_id}", ["farm", "agent", "--controller", address,
                                        "--node-id", node_id, "--slots", str(slots),
                                        "--vram-gb", str(vram), "--speed", str(speed)],
                    stop_wait_s=0.5)
    return address


def submit_farm_jobs(address: str, frames: Path, timeout_s: float = 20.0) -> list[str]:
    """Submit ``farm demo``'s job set once the controller answers; returns the job ids."""
    from scheduler.dispatch.client import ControllerUnavailable, FarmClient
    from scheduler.dispatch.render import UHD_8K
    from stagectl.cli.farm_demo import demo_jobs

    width, height = UHD_8K[0] // FARM_SCALE, UHD_8K[1] // FARM_SCALE
    # deadlines a few minutes out: the page shows them met (the renders take seconds)
    jobs = demo_jobs(frames, width, height, time.time() + 300.0)
    with FarmClient(address, timeout_s=2.0) as client:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                client.request("ping")
                break
            except ControllerUnavailable:
                if time.monotonic() > deadline:
                    raise
        client.request("submit", jobs=[j.to_wire() for j in jobs])
    return [j.id for j in jobs]


def start(group: ChildGroup, timeout_s: float = 20.0) -> tuple[str, str]:
    """Seed, spawn the farm and ``stagectl desk serve`` in ``group``, wait until it answers."""
    farm = start_farm(group, group.log_dir / "farm")
    config, url, password = prepare(group.log_dir / "desk", farm)
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
    submit_farm_jobs(farm, group.log_dir / "farm" / "frames",
                     max(deadline - time.monotonic(), 5.0))
    return url, password
