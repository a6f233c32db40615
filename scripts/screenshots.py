"""Screenshots of the console, one per panel per language, for the README (docs/screenshots/).

Runs the demo stage (``configs/sim-stage.toml``: an LED wall, a camera arm, a FreeD tracking
source and the cue list, all simulated on loopback) with an engine, opens the console
offscreen at 1366x768, puts the stage into states worth showing (armed, a cue running, an
e-stop latched, the engine gone) and saves what each panel looks like. The terminal dashboard
is saved as SVG beside them. Use ``scripts/screenshots.sh``.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import argparse
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication, QTabWidget, QWidget
from rich.console import Console

from gui import i18n
from gui.app import MainWindow
from gui.bridge import EngineBridge
from gui.event_log import EventLog
from gui.health_panel import DeviceHealthPanel
from gui.safety_bar import SafetyBar
from stagectl.cli import dashboard
from stagectl.client import ClientIdentity, EngineClient
from stagectl.config import StageConfig, parse_config
from stagectl.harness import StageHarness

ROOT = Path(__file__).resolve().parent.parent
SIZE = (1366, 768)
PANEL_NAMES = {"ArmPanel": "arm", "LedPanel": "led", "CuePanel": "cues",
               "TrackingPanel": "tracking"}


def demo_config() -> StageConfig:
    """The demo stage, with the audit log in memory and no MQTT (nothing left behind)."""
    data: dict[str, Any] = tomllib.loads((ROOT / "configs/sim-stage.toml").read_text("utf-8"))
    data["safety"]["audit_db"] = ":memory:"
    data["mqtt"]["enabled"] = False
    data["cues"]["file"] = str(ROOT / data["cues"]["file"])
    return parse_config(data)


def vendor_config() -> StageConfig:
    """The four-wall vendor stage, LED walls only (OSC, Tessera, HELIOS, NovaStar)."""
    data: dict[str, Any] = tomllib.loads(
        (ROOT / "configs/sim-stage-vendors.toml").read_text("utf-8"))
    data["safety"]["audit_db"] = ":memory:"
    data["mqtt"]["enabled"] = False
    data["cues"]["file"] = ""
    data["devices"] = [d for d in data["devices"] if d["kind"] == "led"]
    data["simulators"] = [s for s in data["simulators"] if s["kind"] == "led"]
    for entry in (*data["devices"], *data["simulators"]):
        if "credentials_file" in entry:
            entry["credentials_file"] = str(ROOT / entry["credentials_file"])
    return parse_config(data)


def shoot_vendors(lang: str, out: Path, app: QApplication) -> None:
    """Each vendor wall's LED panel (what its processor cannot do shown as unsupported)."""
    i18n.set_language(lang)
    config = vendor_config()
    harness = StageHarness(config, base_dir=ROOT).start(wait_online_s=8)
    op = EngineClient(config, ClientIdentity("ana", "operator"), timeout_s=3.0)
    bridge = EngineBridge(config, identity=ClientIdentity("ana", "operator"), base_dir=ROOT)
    window = MainWindow(config, bridge)
    window.resize(*SIZE)
    window.show()
    bridge.start()
    try:
        pump(app, 5.0, lambda: bridge.connected)
        for device in ("led-tessera", "led-helios", "led-novastar"):
            op.call("led.set", {"device": device, "key": "brightness_nits", "value": 900.0})
        op.call("led.set", {"device": "led-tessera", "key": "input", "value": "hdmi:1"})
        pump(app, 6.0)  # a status resync brings every processor's identity
        for name, panel in window.led_panels.items():
            if name == "led-main":
                continue
            tabs = window.findChild(QTabWidget)
            if tabs is not None:
                tabs.setCurrentWidget(panel)
            pump(app, 0.6)
            save(panel, out, name, lang)
    finally:
        op.close()
        bridge.stop()
        window.close()
        window.deleteLater()
        pump(app, 0.2)
        harness.stop()


def pump(app: QApplication, seconds: float, until: Callable[[], bool] | None = None) -> None:
    """Run the Qt loop for ``seconds`` (or until ``until()`` holds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        if until is not None and until():
            return
        time.sleep(0.02)


def save(widget: QWidget, out: Path, name: str, lang: str) -> None:
    """Save ``widget`` as ``out/<name>-<lang>.png``."""
    path = out / f"{name}-{lang}.png"
    widget.grab().save(str(path))
    print(f"  {path.relative_to(ROOT)}")


def shoot(lang: str, out: Path, app: QApplication) -> None:
    """Every panel of the console in ``lang``, through a scripted show."""
    i18n.set_language(lang)
    config = demo_config()
    harness = StageHarness(config, base_dir=ROOT).start()
    op = EngineClient(config, ClientIdentity("ana", "operator"), timeout_s=3.0)
    bridge = EngineBridge(config, identity=ClientIdentity("ana", "operator"), base_dir=ROOT)
    window = MainWindow(config, bridge)
    window.resize(*SIZE)
    window.show()
    bridge.start()
    stopped = False
    try:
        pump(app, 5.0, lambda: bridge.connected)
        op.call("led.set", {"key": "brightness_nits", "value": 1200.0})
        op.call("safety.arm")
        op.call("cue.go")  # cue 1: the arm moves, the wall recalls a preset
        pump(app, 1.5)
        tabs = window.findChild(QTabWidget)
        assert tabs is not None, "the console has no tab widget"
        for index in range(tabs.count()):
            tabs.setCurrentIndex(index)
            pump(app, 0.6)
            panel = tabs.widget(index)
            assert panel is not None
            name = PANEL_NAMES.get(type(panel).__name__, f"tab{index}")
            save(panel, out, name, lang)
        tabs.setCurrentIndex(0)
        pump(app, 0.4)
        save(window, out, "console", lang)
        for kind, file in ((SafetyBar, "safety-armed"), (DeviceHealthPanel, "devices"),
                           (EventLog, "event-log")):
            widget = window.findChild(kind)
            if widget is not None:
                save(widget, out, file, lang)
        op.call("estop", {"reason": "console screenshot drill" if lang == "en" else "截图演练"})
        pump(app, 1.0)
        bar = window.findChild(SafetyBar)
        if bar is not None:
            save(bar, out, "safety-estop", lang)
        save(window, out, "console-estop", lang)
        record = Console(width=100, height=40, record=True, file=open(os.devnull, "w"))
        model = dashboard.StageModel(config)
        for cmd in ("status", "safety.status", "cue.list"):
            model.load(cmd, op.call(cmd))
        model.heard()
        record.print(dashboard.render(model, 100, 40, lang=lang))
        svg = out / f"dashboard-{lang}.svg"
        record.save_svg(str(svg), title="stagectl watch")
        print(f"  {svg.relative_to(ROOT)}")
        harness.stop()  # the engine goes away: everything it said turns unknown
        stopped = True
        pump(app, 1.5)
        save(window, out, "console-stale", lang)
    finally:
        op.close()
        bridge.stop()
        window.close()
        window.deleteLater()
        pump(app, 0.2)
        if not stopped:
            harness.stop()


def main(argv: list[str] | None = None) -> int:
    """Shoot every language asked for (both by default); returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshots")
    parser.add_argument("--lang", choices=("en", "zh"), action="append")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    for lang in args.lang or ["en", "zh"]:
        print(f"{lang}:")
        shoot(lang, args.out, app)
        shoot_vendors(lang, args.out, app)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
