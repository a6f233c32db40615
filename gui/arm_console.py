"""Wires the arm panels, the cue panel and the safety bar into the main window.

Kept apart from :mod:`gui.app` so the window itself changes by three lines: the safety bar
goes above everything (always visible), one tab per arm and a cue tab join the LED tabs, and
the bridge's signals are routed here. Like the rest of the console it only renders engine
state and forwards intents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QShortcut
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.arm_panel import JOINTS, ArmPanel
from gui.cue_panel import CuePanel
from gui.i18n import tr
from gui.safety_bar import SafetyBar

if TYPE_CHECKING:
    from gui.app import MainWindow

SAFETY_SOURCE = "stage.safety"  # stagectl.engine.safety.SAFETY_TOPIC
CUES_SOURCE = "stage.cues"  # stagectl.engine.cues.CUES_TOPIC
SAFETY_RESULTS = frozenset({"safety.status", "safety.arm", "safety.disarm", "safety.talent"})


class ArmConsole:
    """The arm, cue and safety widgets of one main window."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        bridge = window.bridge
        self.safety_bar = SafetyBar()
        self.safety_bar.intent.connect(bridge.command)
        self.shortcut: QShortcut = self.safety_bar.install_shortcut(window)
        self.arm_panels: dict[str, ArmPanel] = {}
        for device in window.config.devices:
            if device.kind != "arm":
                continue
            axes = JOINTS + (("track",) if getattr(device, "track", False) else ())
            panel = ArmPanel(device.name, axes)
            panel.intent.connect(bridge.command)
            self.arm_panels[device.name] = panel
            window.led_tabs.addTab(panel, tr("arm_title", device=device.name))
        self.cue_panel = CuePanel()
        self.cue_panel.intent.connect(bridge.command)
        window.led_tabs.addTab(self.cue_panel, tr("cue_title"))

        central = window.takeCentralWidget()
        container = QWidget()
        layout = QVBoxLayout(container)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.safety_bar)
        if central is not None:
            layout.addWidget(central, 1)
        window.setCentralWidget(container)

        bridge.status_received.connect(self._on_status)
        bridge.device_delta.connect(self._on_delta)
        bridge.command_succeeded.connect(self._on_result)
        bridge.connection_changed.connect(self._on_connection)

    def _on_connection(self, connected: bool) -> None:
        if connected:
            self.window.bridge.command("safety.status")
            self.cue_panel.refresh()

    def _on_status(self, status: dict[str, Any]) -> None:
        for snapshot in status.get("devices", []):
            panel = self.arm_panels.get(str(snapshot.get("name")))
            if panel is not None:
                panel.apply_snapshot(snapshot)

    def _on_delta(self, source: str, delta: dict[str, Any]) -> None:
        if source == SAFETY_SOURCE:
            self.safety_bar.apply_status(delta)
        elif source == CUES_SOURCE:
            self.cue_panel.refresh()
        else:
            panel = self.arm_panels.get(source)
            if panel is not None:
                panel.apply_reported(delta)

    def _on_result(self, cmd: str, result: object) -> None:
        if not isinstance(result, dict):
            return
        if cmd in SAFETY_RESULTS:
            self.safety_bar.apply_status(result)
        elif cmd == "cue.list":
            self.cue_panel.apply_listing(result)


def attach_arm_console(window: MainWindow) -> ArmConsole:
    """Add the safety bar, arm tabs and cue tab to ``window``."""
    return ArmConsole(window)
