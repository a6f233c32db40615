"""The operator console's main window and the ``stagectl.console`` entry point.

``stagectl gui`` and ``stagectl demo`` find :func:`run_console` through the
``stagectl.console`` entry point, so the engine package never imports Qt. The window composes
every panel and wires them to an :class:`~gui.bridge.EngineBridge`: bridge signals feed the
panels, panel intents go to :meth:`~gui.bridge.EngineBridge.command`. Panels never import this
module (an import-linter contract in ``pyproject.toml`` checks it).

Layout, sized for 1366x768 and up: the safety bar with the E-STOP on top (always visible);
below it a horizontal splitter with the device table (every device visible up to eight)
above the event log on the left, and tabs for the arms, LED walls, cues and tracking on the
right. Liveness (``docs/protocols/console-state.md``) reaches every panel through
``set_live`` and the shared :class:`~gui.controls.Controls`.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QGroupBox,
    QLabel,
    QMainWindow,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gui.arm_panel import JOINTS, ArmPanel
from gui.bridge import EngineBridge
from gui.controls import Controls
from gui.cue_panel import CuePanel
from gui.event_log import EventLog
from gui.health_panel import DeviceHealthPanel
from gui.i18n import add_strings, tr, tr_health, tr_reason
from gui.led_panel import LedPanel
from gui.messages import render_error, render_message
from gui.safety_bar import SafetyBar
from gui.tracking_panel import TrackingPanel
from stagectl import bus
from stagectl.config import StageConfig

add_strings({
    "source_engine": {"en": "engine", "zh": "引擎"},
    "log_health_reason": {"en": "{state}: {reason}", "zh": "{state}：{reason}"},  # gui.i18n
})
CONNECTED_STYLE = "color: #1b5e20; font-weight: bold;"
DISCONNECTED_STYLE = "color: #b71c1c; font-weight: bold;"
DEFAULT_SIZE = (1366, 768)
LEFT_WIDTH = 540  # of DEFAULT_SIZE's width; the tabs get the rest


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(widget)
    return box


class MainWindow(QMainWindow):
    """Safety bar, device table, event log and one tab per arm, LED wall, cues and tracking.

    Args:
        config: the stage (title, devices and their limits).
        bridge: the engine connection; started by the caller, stopped when the window closes.
        parent: the Qt parent.

    Attributes:
        controls: what this desk may do now (fed from the engine; shared by every panel).
        safety_bar, health_panel, event_log, cue_panel: the panels.
        arm_panels, led_panels: one panel per arm / LED device, by name.
        tracking_panel: the tracking tab, None without tracking sources.
        tabs: the right-hand tab widget (``led_tabs`` is the old name).
    """

    def __init__(self, config: StageConfig, bridge: EngineBridge,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.bridge = bridge
        self.setWindowTitle(tr("window_title", stage=config.stage.name))
        self.resize(*DEFAULT_SIZE)
        self.controls = Controls(bridge.identity, self)

        self.safety_bar = SafetyBar(controls=self.controls)
        self.safety_bar.intent.connect(bridge.command)
        self.estop_shortcut: QShortcut = self.safety_bar.install_shortcut(self)

        self.health_panel = DeviceHealthPanel()
        self.event_log = EventLog(timezone=config.stage.timezone)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("panel_tabs")
        self.led_tabs = self.tabs
        self.arm_panels: dict[str, ArmPanel] = {}
        self.led_panels: dict[str, LedPanel] = {}
        tracking_sources: list[str] = []
        for device in config.devices:
            self.health_panel.add_device(device.name, device.kind)
            if device.kind == "arm":
                axes = JOINTS + (("track",) if getattr(device, "track", False) else ())
                arm = ArmPanel(device.name, axes, controls=self.controls)
                arm.intent.connect(bridge.command)
                self.arm_panels[device.name] = arm
            elif device.kind == "led":
                led = LedPanel(device.name, device.max_brightness_nits, controls=self.controls)
                led.intent.connect(bridge.command)
                self.led_panels[device.name] = led
            elif device.kind == "tracking":
                tracking_sources.append(device.name)
        for name, arm in self.arm_panels.items():
            self.tabs.addTab(arm, tr("arm_title", device=name))
        for name, led in self.led_panels.items():
            self.tabs.addTab(led, tr("led_title", device=name))
        self.cue_panel = CuePanel(controls=self.controls)
        self.cue_panel.intent.connect(bridge.command)
        self.tabs.addTab(self.cue_panel, tr("cue_title"))
        self.tracking_panel: TrackingPanel | None = None
        if tracking_sources:
            self.tracking_panel = TrackingPanel()
            for name in tracking_sources:
                self.tracking_panel.add_source(name)
            self.tabs.addTab(self.tracking_panel, tr("tracking_title"))

        left = QSplitter(Qt.Orientation.Vertical)
        left.setObjectName("left_column")
        left.addWidget(_boxed(tr("devices"), self.health_panel))
        left.addWidget(_boxed(tr("event_log"), self.event_log))
        left.setStretchFactor(0, 0)
        left.setStretchFactor(1, 1)
        left.setChildrenCollapsible(False)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("main_splitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([LEFT_WIDTH, DEFAULT_SIZE[0] - LEFT_WIDTH])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.safety_bar)
        layout.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.connection_label = QLabel()
        self.connection_label.setObjectName("connection_label")
        self.identity_label = QLabel()
        self.identity_label.setObjectName("identity_label")
        self.statusBar().addWidget(self.connection_label, 1)
        self.statusBar().addPermanentWidget(self.identity_label)
        self._show_identity()
        self._set_live(bridge.connected)

        self.controls.changed.connect(self._show_identity)
        bridge.status_received.connect(self._on_status)
        bridge.device_delta.connect(self._on_delta)
        bridge.desired_changed.connect(self._on_desired)
        bridge.health_changed.connect(self._on_health)
        bridge.event_received.connect(self._on_event)
        bridge.command_error.connect(self._on_command_error)
        bridge.connection_changed.connect(self._on_connection)
        bridge.safety_changed.connect(self._on_safety)
        bridge.controls_changed.connect(self.controls.apply_snapshot)
        bridge.cues_changed.connect(self.cue_panel.apply_listing)
        if self.tracking_panel is not None:
            bridge.tracking_samples.connect(self.tracking_panel.add_samples)

    def live_panels(self) -> list[Any]:
        """Every panel that shows engine state (each has ``set_live``)."""
        panels: list[Any] = [self.safety_bar, self.health_panel, self.cue_panel,
                             *self.arm_panels.values(), *self.led_panels.values()]
        if self.tracking_panel is not None:
            panels.append(self.tracking_panel)
        return panels

    # ---- bridge -> panels -------------------------------------------------------------

    def _on_status(self, status: dict[str, Any]) -> None:
        self.health_panel.apply_status(status)
        for snapshot in status.get("devices", []):
            name = str(snapshot.get("name"))
            panel: ArmPanel | LedPanel | None = self.led_panels.get(name) \
                or self.arm_panels.get(name)
            if panel is not None:
                panel.apply_snapshot(snapshot)
        if self.tracking_panel is not None:
            self.tracking_panel.apply_status(status)

    def _on_delta(self, device: str, delta: dict[str, Any]) -> None:
        led = self.led_panels.get(device)
        if led is not None:
            led.apply_reported(delta)
        arm = self.arm_panels.get(device)
        if arm is not None:
            arm.apply_reported(delta)
            self.cue_panel.apply_reported(device, delta)
        if self.tracking_panel is not None and self.tracking_panel.is_source(device):
            self.tracking_panel.apply_delta(device, delta)

    def _on_desired(self, device: str, delta: dict[str, Any]) -> None:
        panel = self.led_panels.get(device)
        if panel is not None:
            panel.apply_desired(delta)

    def _on_health(self, device: str, health: dict[str, Any]) -> None:
        self.health_panel.apply_health(device, health)
        if self.tracking_panel is not None:
            self.tracking_panel.apply_health(device, health)
        state = str(health.get("state", "unknown"))
        level = {"online": "info", "degraded": "warning"}.get(state, "error")
        reason = tr_reason(health).strip()
        self.event_log.add(device, tr("log_health_reason", state=tr_health(state), reason=reason)
                           if reason else tr_health(state), level)

    def _on_safety(self, status: dict[str, Any]) -> None:
        self.safety_bar.apply_status(status)
        for arm in self.arm_panels.values():
            arm.apply_safety(status)

    def _on_event(self, source: str, event: dict[str, Any]) -> None:
        t = event.get("t")
        if source == bus.ENGINE_TOPIC:
            source = tr("source_engine")
        self.event_log.add(source, render_message(event), str(event.get("level", "info")),
                           float(t) if isinstance(t, (int, float)) else None)

    def _on_command_error(self, cmd: str, error: dict[str, Any]) -> None:
        text = render_error(cmd, error)
        self.event_log.add(tr("console"), text, "error")
        self.statusBar().showMessage(text, 8000)
        for panel in self.led_panels.values():
            panel.refresh()  # put a refused control back where the wall is

    def _on_connection(self, live: bool) -> None:
        self._set_live(live)
        self.event_log.add(tr("console"), tr("log_connected" if live else "log_disconnected"),
                           "info" if live else "warning")

    def _set_live(self, live: bool) -> None:
        """Tell the controls and every panel whether the engine is live."""
        self.controls.set_live(live)
        for panel in self.live_panels():
            panel.set_live(live)
        address = self.config.engine.command
        self.connection_label.setText(tr("engine_connected" if live
                                         else "engine_disconnected", address=address))
        self.connection_label.setStyleSheet(CONNECTED_STYLE if live else DISCONNECTED_STYLE)
        self.connection_label.setProperty("connected", live)

    def _show_identity(self) -> None:
        """The user and role the engine resolved for this desk (translated role)."""
        self.identity_label.setText(tr("identity", user=self.controls.user,
                                       role=self.controls.role))

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the window stops listening; the wall keeps its look (nothing is sent)."""
        self.bridge.stop()
        super().closeEvent(event)


def run_console(config: StageConfig, config_path: Path, duration_s: float | None = None) -> int:
    """Show the console for ``config`` until the window closes (or ``duration_s`` passes).

    Args:
        config: the validated stage.
        config_path: the file it came from (shown to the operator; the CURVE keys dir is
            resolved against the working directory, as ``stagectl serve`` does).
        duration_s: quit after this many seconds (demos, smoke tests).

    Returns:
        The exit code: 0 when the window closed normally.
    """
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    bridge = EngineBridge(config, base_dir=Path.cwd())
    window = MainWindow(config, bridge)
    window.show()
    bridge.start()
    if duration_s is not None:
        QTimer.singleShot(max(0, int(duration_s * 1000)), app.quit)
    # Qt's loop holds the interpreter; a tick lets Python see Ctrl-C and quit cleanly.
    previous = signal.signal(signal.SIGINT, lambda *_: app.quit())
    tick = QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    try:
        code = app.exec()
    finally:
        tick.stop()
        signal.signal(signal.SIGINT, previous)
        bridge.stop()
        window.close()
        window.deleteLater()
        # closing the last window posts a quit that no loop is left to take; the next event
        # loop in this process (a test's wait, say) would end at once, and all after it
        QCoreApplication.removePostedEvents(app, QEvent.Type.Quit)
    return int(code)
