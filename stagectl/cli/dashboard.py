"""A live terminal view of the stage (rich): the console's stand-in with no display.

Used by ``stagectl watch`` and by ``stagectl demo`` when no display is available. It only
reads: state comes from the engine's PUB socket, resynchronised with ``status`` every 2 s.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stagectl.client import EngineClient, EngineError, EngineUnavailable, StateSubscriber
from stagectl.config import StageConfig

HEALTH_STYLE = {"online": "bold green", "degraded": "bold yellow", "offline": "bold red"}


class StageModel:
    """What the dashboard knows: device snapshots plus a short event log."""

    def __init__(self) -> None:
        self.devices: dict[str, dict[str, Any]] = {}
        self.events: deque[tuple[float, str, str, str]] = deque(maxlen=10)
        self.last_heartbeat = 0.0
        self.stage: dict[str, Any] = {}

    def load_status(self, status: dict[str, Any]) -> None:
        """Replace device snapshots with a full ``status`` reply."""
        self.stage = status.get("stage", {})
        self.devices = {d["name"]: d for d in status.get("devices", [])}

    def apply(self, topic: str, message: dict[str, Any]) -> None:
        """Apply one state-socket message."""
        kind, name, data = message.get("type"), message.get("device"), message.get("data", {})
        if kind == "heartbeat":
            self.last_heartbeat = time.monotonic()
            return
        if kind == "event":
            self.events.append((message.get("t", time.time()), name or "engine",
                                data.get("level", "info"), data.get("message", "")))
            return
        if not name:
            return
        dev = self.devices.setdefault(name, {"name": name, "kind": "?", "state": {},
                                             "desired": {}, "health": "offline"})
        if kind == "delta":
            dev.setdefault("state", {}).update(data)
        elif kind == "desired":
            dev.setdefault("desired", {}).update(data)
        elif kind == "health":
            dev["health"] = data.get("state", "offline")
            dev["health_reason"] = data.get("reason", "")
            self.events.append((message.get("t", time.time()), name, "info",
                                f"health {dev['health']} {dev['health_reason']}".strip()))

    @property
    def engine_alive(self) -> bool:
        """A heartbeat was seen in the last 3 s."""
        return time.monotonic() - self.last_heartbeat < 3.0


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "ON" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "—"
    return str(value)


def render(model: StageModel, config: StageConfig) -> Group:
    """The dashboard as rich renderables."""
    tz = ZoneInfo(config.stage.timezone)
    now = datetime.now(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
    engine = Text("engine connected", style="green") if model.engine_alive else \
        Text("engine not answering", style="bold red")
    header = Text.assemble((f"{config.stage.name}", "bold"), f"  {config.stage.site}  {now}  ",
                           engine)
    health = Table(title="Devices", expand=True)
    for col in ("device", "kind", "health", "reason"):
        health.add_column(col)
    for dev in model.devices.values():
        state = str(dev.get("health", "offline"))
        health.add_row(dev["name"], str(dev.get("kind", "")),
                       Text(state, style=HEALTH_STYLE.get(state, "")),
                       str(dev.get("health_reason", "")))
    parts: list[Any] = [header, health]
    for dev in model.devices.values():
        if dev.get("kind") != "led":
            continue
        state, desired = dev.get("state", {}), dev.get("desired", {})
        table = Table(title=f"LED {dev['name']}", expand=True)
        table.add_column("parameter")
        table.add_column("reported")
        table.add_column("desired")
        for key in ("brightness_nits", "brightness_output_nits", "colour_temperature_k",
                    "gamma", "blackout", "freeze", "test_pattern", "preset",
                    "output_frame_rate_hz", "genlock_source", "genlock_phase_deg"):
            rep, des = state.get(key), desired.get(key)
            style = "yellow" if des is not None and rep is not None and des != rep else ""
            table.add_row(key, Text(_fmt(rep), style=style), _fmt(des))
        online, total = state.get("panels_online"), state.get("panels_total")
        table.add_row("temperature_c", _fmt(state.get("temperature_c")), "")
        table.add_row("panels", f"{_fmt(online)}/{_fmt(total)}", "")
        alerts = state.get("alerts") or []
        table.add_row("alerts", Text(", ".join(alerts) or "none",
                                     style="bold red" if alerts else ""), "")
        parts.append(table)
    sources = [d for d in model.devices.values() if d.get("kind") == "tracking"]
    if sources:
        table = Table(title="Tracking", expand=True)
        for col in ("source", "health", "rate Hz", "jitter ms", "loss %", "timecode",
                    "position m", "pan/tilt/roll °"):
            table.add_column(col)
        for dev in sources:
            state = dev.get("state", {})
            src_health = str(dev.get("health", "offline"))
            pos, rot = state.get("position_m"), state.get("rotation_deg")
            table.add_row(dev["name"], Text(src_health, style=HEALTH_STYLE.get(src_health, "")),
                          _fmt(state.get("rate_hz")), _fmt(state.get("jitter_ms")),
                          _fmt(state.get("loss_pct")), _fmt(state.get("timecode")),
                          " ".join(f"{v:+.2f}" for v in pos) if pos else "—",
                          " ".join(f"{v:+.1f}" for v in rot) if rot else "—")
        parts.append(table)
    arms = [d for d in model.devices.values() if d.get("kind") == "arm"]
    if arms:
        table = Table(title="Camera arms", expand=True)
        for col in ("arm", "state", "joints °", "tool pose mm/°", "progress"):
            table.add_column(col)
        for dev in arms:
            state = dev.get("state", {})
            joints = state.get("joints_deg") or []
            pose = state.get("tool_pose") or {}
            table.add_row(dev["name"], _fmt(state.get("state")),
                          " ".join(f"{v:.1f}" for v in joints) or "—",
                          " ".join(f"{v:g}" for v in pose.values()) or "—",
                          _fmt(state.get("progress")))
        parts.append(table)
    log = Table(title="Events", expand=True, show_header=False)
    log.add_column("time", width=9)
    log.add_column("source", width=12)
    log.add_column("message")
    for t, source, level, message in model.events:
        style = {"warning": "yellow", "error": "red"}.get(level, "")
        log.add_row(datetime.fromtimestamp(t, tz).strftime("%H:%M:%S"), source,
                    Text(message, style=style))
    parts.append(log)
    return Group(*parts)


def run_dashboard(config: StageConfig, duration_s: float | None = None,
                  console: Console | None = None) -> int:
    """Show the live dashboard until Ctrl-C or ``duration_s``; returns an exit code."""
    console = console or Console()
    model = StageModel()
    sub = StateSubscriber(config)
    client = EngineClient(config, timeout_s=1.0)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    next_status = 0.0
    try:
        with Live(render(model, config), console=console, refresh_per_second=8,
                  screen=False) as live:
            while deadline is None or time.monotonic() < deadline:
                if time.monotonic() >= next_status:
                    try:
                        model.load_status(client.call("status"))
                    except (EngineUnavailable, EngineError) as exc:
                        model.events.append((time.time(), "dashboard", "warning", str(exc)))
                    next_status = time.monotonic() + 2.0
                message = sub.recv(0.1)
                while message is not None:
                    model.apply(*message)
                    message = sub.recv(0)
                live.update(render(model, config))
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
        sub.close()
    return 0
