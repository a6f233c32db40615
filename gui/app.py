"""The operator console's main window and the ``stagectl.console`` entry point.

``stagectl gui`` and ``stagectl demo`` find :func:`run_console` through the
``stagectl.console`` entry point, so the engine package never imports Qt. The window wires the
panels to an :class:`~gui.bridge.EngineBridge`: bridge signals feed the panels, panel intents go
to :meth:`~gui.bridge.EngineBridge.command`.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
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

from gui.arm_console import attach_arm_console
from gui.bridge import EngineBridge
from gui.event_log import EventLog
from gui.health_panel import DeviceHealthPanel
from gui.i18n import tr, tr_health, tr_reason
from gui.led_panel import LedPanel
from gui.tracking_panel import attach_tracking_panel
from stagectl.config import StageConfig

CONNECTED_STYLE = "color: #1b5e20; font-weight: bold;"
DISCONNECTED_STYLE = "color: #b71c1c; font-weight: bold;"


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box


class MainWindow(QMainWindow):
    """Health table, one LED panel per LED device, event log; engine link in the status bar.

    Args:
        config: the stage (title, devices and their limits).
        bridge: the engine connection; started by the caller, stopped when the window closes.
    """

    def __init__(self, config: StageConfig, bridge: EngineBridge,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.config = config
        self.bridge = bridge
        self.setWindowTitle(tr("window_title", stage=config.stage.name))
        self.resize(1180, 760)

        self.health_panel = DeviceHealthPanel()
        self.led_panels: dict[str, LedPanel] = {}
        self.led_tabs = QTabWidget()
        for device in config.devices:
            if device.kind != "led":
                continue
            panel = LedPanel(device.name, device.max_brightness_nits)
            panel.intent.connect(self.bridge.command)
            panel.setEnabled(False)  # until the engine is heard from
            self.led_panels[device.name] = panel
            self.led_tabs.addTab(panel, tr("led_title", device=device.name))
        self.event_log = EventLog(timezone=config.stage.timezone)

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(_boxed(tr("devices"), self.health_panel))
        splitter.addWidget(self.led_tabs)
        splitter.addWidget(_boxed(tr("event_log"), self.event_log))
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 3)
        splitter.setStretchFactor(2, 2)
        splitter.setSizes([130, 400, 200])
        self.setCentralWidget(splitter)

        self.connection_label = QLabel()
        self.connection_label.setObjectName("connection_label")
        identity = bridge.identity
        self.identity_label = QLabel(tr("identity", user=identity.user, role=identity.role))
        self.statusBar().addWidget(self.connection_label, 1)
        self.statusBar().addPermanentWidget(self.identity_label)
        self._show_connection(bridge.connected)

        bridge.status_received.connect(self._on_status)
        bridge.device_delta.connect(self._on_delta)
        bridge.desired_changed.connect(self._on_desired)
        bridge.health_changed.connect(self._on_health)
        bridge.event_received.connect(self._on_event)
        bridge.command_failed.connect(self._on_command_failed)
        bridge.connection_changed.connect(self._on_connection)
        # safety bar with the E-STOP (F12) on top, arm and cue tabs (gui/arm_console.py)
        self.arm_console = attach_arm_console(self)
        self.tracking_panel = attach_tracking_panel(self)

    # ---- bridge -> panels -------------------------------------------------------------

    def _on_status(self, status: dict[str, Any]) -> None:
        self.health_panel.apply_status(status)
        for snapshot in status.get("devices", []):
            panel = self.led_panels.get(str(snapshot.get("name")))
            if panel is not None:
                panel.apply_snapshot(snapshot)

    def _on_delta(self, device: str, delta: dict[str, Any]) -> None:
        panel = self.led_panels.get(device)
        if panel is not None:
            panel.apply_reported(delta)

    def _on_desired(self, device: str, delta: dict[str, Any]) -> None:
        panel = self.led_panels.get(device)
        if panel is not None:
            panel.apply_desired(delta)

    def _on_health(self, device: str, health: dict[str, Any]) -> None:
        self.health_panel.apply_health(device, health)
        state = str(health.get("state", "unknown"))
        level = {"online": "info", "degraded": "warning"}.get(state, "error")
        self.event_log.add(device, tr("log_health", state=tr_health(state),
                                      reason=tr_reason(health)).strip(), level)

    def _on_event(self, source: str, event: dict[str, Any]) -> None:
        t = event.get("t")
        self.event_log.add(source, str(event.get("message", "")),
                           str(event.get("level", "info")),
                           float(t) if isinstance(t, (int, float)) else None)

    def _on_command_failed(self, cmd: str, message: str) -> None:
        self.event_log.add(tr("console"), tr("log_command_failed", cmd=cmd, message=message),
                           "error")
        self.statusBar().showMessage(tr("log_command_failed", cmd=cmd, message=message), 8000)
        for panel in self.led_panels.values():
            panel.refresh()  # put a refused control back where the wall is

    def _on_connection(self, connected: bool) -> None:
        self._show_connection(connected)
        self.health_panel.set_engine_connected(connected)
        self.event_log.add(tr("console"), tr("log_connected" if connected
                                             else "log_disconnected"),
                           "info" if connected else "warning")

    def _show_connection(self, connected: bool) -> None:
        address = self.config.engine.command
        self.connection_label.setText(tr("engine_connected" if connected
                                         else "engine_disconnected", address=address))
        self.connection_label.setStyleSheet(CONNECTED_STYLE if connected
                                            else DISCONNECTED_STYLE)
        self.connection_label.setProperty("connected", connected)
        for panel in self.led_panels.values():
            panel.setEnabled(connected)

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
    return int(code)
