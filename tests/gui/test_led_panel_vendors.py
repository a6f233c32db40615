"""The console drives all four walls the same way: OSC, Tessera, HELIOS and NovaStar.

One stage with a processor of each kind, every one served by its vendor simulator on loopback
and driven by its production driver through a real engine. Each assertion on an action reads
the *simulator's* wall, so the path under test is widget -> bridge -> engine -> vendor driver
-> vendor HTTP API -> simulator; what a processor lacks must show as unsupported on its panel.
"""

# mypy: disallow-untyped-calls=False
# (pytest-qt's key and mouse helpers are untyped)

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from gui.app import MainWindow
from gui.bridge import EngineBridge
from gui.led_panel import LedPanel
from stagectl.config import parse_config
from stagectl.harness import StageHarness, free_port, free_port_config
from tests.gui.conftest import open_window, stop_bridge

VENDORS = ("tessera", "helios", "novastar")
NOT_REPORTED = "not reported by\nthis processor"  # two lines in the status column
WALLS = ("led-main", *(f"led-{v}" for v in VENDORS))


@pytest.fixture
def four_walls() -> Iterator[StageHarness]:
    data = free_port_config(stage="gui-four-walls").model_dump()
    for protocol in VENDORS:
        port = free_port()
        data["devices"].append({"name": f"led-{protocol}", "kind": "led", "driver": protocol,
                                "address": f"127.0.0.1:{port}", "max_brightness_nits": 1500})
        sim: dict[str, Any] = {"name": f"led-{protocol}-sim", "kind": "led",
                               "protocol": protocol, "listen": f"127.0.0.1:{port}",
                               "max_brightness_nits": 1500}
        if protocol == "tessera":
            sim["groups"] = 3
        data["simulators"].append(sim)
    harness = StageHarness(parse_config(data)).start(wait_online_s=8)
    try:
        yield harness
    finally:
        harness.stop()


def wall_values(harness: StageHarness, device: str) -> dict[str, Any]:
    """What the simulated processor of ``device`` shows now."""
    assert harness.sims is not None
    sim = next(s for s in harness.sims.simulators if s.name == f"{device}-sim")
    holder: Any = getattr(sim, "wall", sim)  # vendor simulators hold a Wall; OSC its values
    values: dict[str, Any] = holder.values
    return values


@pytest.fixture
def console(qtbot: QtBot, four_walls: StageHarness) -> Iterator[tuple[MainWindow, EngineBridge]]:
    window, bridge = open_window(qtbot, four_walls)
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=5000)
        def ready() -> bool:
            return all(p.capabilities is not None and "brightness_nits" in p.reported
                       and p.brightness_spin.isEnabled()
                       for p in (window.led_panels[name] for name in WALLS))

        qtbot.waitUntil(ready, timeout=5000)
        yield window, bridge
    finally:
        stop_bridge(bridge)
        window.close()


def type_into(qtbot: QtBot, spin: Any, text: str) -> None:
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text)
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    spin.clearFocus()


def test_brightness_drives_every_wall_the_same_way(
        qtbot: QtBot, console: tuple[MainWindow, EngineBridge], four_walls: StageHarness) -> None:
    window, _ = console
    for nits, name in zip((610, 620, 630, 640), WALLS, strict=True):
        panel = window.led_panels[name]
        type_into(qtbot, panel.brightness_spin, str(nits))

        def wall_shows(name: str = name, nits: float = nits) -> bool:
            return bool(abs(float(wall_values(four_walls, name)["brightness_nits"]) - nits)
                        <= 1.5)  # NovaStar is written in 0.1 % steps of the wall's maximum

        def panel_shows(panel: LedPanel = panel, nits: float = nits) -> bool:
            reported = panel.reported.get("brightness_nits")
            return isinstance(reported, (int, float)) and abs(reported - nits) <= 1.5

        qtbot.waitUntil(wall_shows, timeout=5000)
        qtbot.waitUntil(panel_shows, timeout=5000)


def test_tessera_input_and_group_from_the_console(
        qtbot: QtBot, console: tuple[MainWindow, EngineBridge], four_walls: StageHarness) -> None:
    window, _ = console
    panel: LedPanel = window.led_panels["led-tessera"]
    assert panel.processor_label.text().startswith("Processor: Brompton Tessera · ")
    assert "firmware" in panel.processor_label.text()
    assert panel.input_button.isEnabled()
    line = panel.input_combo.lineEdit()
    assert line is not None
    line.selectAll()
    qtbot.keyClicks(line, "sdi:2")
    qtbot.mouseClick(panel.input_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: wall_values(four_walls, "led-tessera")["input"] == "sdi:2",
                    timeout=5000)
    qtbot.waitUntil(lambda: panel.reported_labels["input"].text() == "sdi:2", timeout=5000)

    assert list(panel.group_spins) == ["1", "2", "3"]
    type_into(qtbot, panel.group_spins["2"], "800")
    qtbot.waitUntil(lambda: wall_values(four_walls, "led-tessera")["group_brightness.2"]
                    == pytest.approx(800.0, abs=1.0), timeout=5000)
    qtbot.waitUntil(lambda: panel.group_reported_labels["2"].text() == "800 nits",
                    timeout=5000)
    assert panel.output_label.text() == NOT_REPORTED


def test_what_each_vendor_lacks_shows_as_unsupported(
        console: tuple[MainWindow, EngineBridge]) -> None:
    window, _ = console
    for name in WALLS:
        panel = window.led_panels[name]
        caps = panel.capabilities
        assert caps is not None
        offered = [panel.pattern_combo.itemData(i) for i in range(panel.pattern_combo.count())]
        assert offered == caps["test_patterns"], name  # exactly the processor's patterns
        groups = "group_brightness" in caps["unsupported"]
        assert (panel.groups_note.text() == "unsupported") == groups, name
        if groups:
            assert panel.group_spins == {}
            assert panel.groups_note.toolTip().startswith(
                f"Not supported by {panel.vendor}: "), name
        inputs = "input" in caps["unsupported"]
        assert panel.input_button.isEnabled() is not inputs, name
        assert (panel.reported_labels["input"].text() == "unsupported") == inputs, name
        for feature, label in (("brightness_output", panel.output_label),
                               ("temperature", panel.processor_temperature_label)):
            lacks = feature in caps["unsupported"]
            assert (label.text() == NOT_REPORTED) == lacks, (name, feature)
            assert label.property("stale") is False
    # the vendors' own declarations, as their drivers make them
    vendors = {name: window.led_panels[name].vendor for name in WALLS}
    assert vendors == {"led-main": "stagectl OSC", "led-tessera": "Brompton Tessera",
                       "led-helios": "Megapixel HELIOS", "led-novastar": "NovaStar COEX"}
    assert window.led_panels["led-helios"].groups_note.text() == "unsupported"
    assert window.led_panels["led-novastar"].pattern_combo.findData("colour_bars") == -1
