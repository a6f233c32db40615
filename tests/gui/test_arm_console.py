"""The console's safety bar and arm panel in the main window, against a simulated stage with an
arm and the real :class:`gui.controls.Controls`: E-STOP and F12, a reset that asks and leaves
the stage disarmed, desks whose role may not move anything, and an engine that goes away."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from drivers.arm.simulator import ArmSimulator
from gui import i18n
from gui.app import MainWindow
from gui.arm_panel import ArmPanel
from gui.bridge import EngineBridge
from gui.safety_bar import SafetyBar
from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import open_window, stop_bridge
from tests.gui.test_safety_bar import Asked


@pytest.fixture
def arm_console(qtbot: QtBot) -> Iterator[tuple[MainWindow, ArmSimulator]]:
    harness = StageHarness(free_port_config(stage="gui-arm", arms=1)).start()
    window, bridge = open_window(qtbot, harness)
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        assert harness.sims is not None
        sim = harness.sims.by_name("arm-a-sim")
        assert isinstance(sim, ArmSimulator)
        yield window, sim
    finally:
        stop_bridge(bridge)
        window.close()
        harness.stop()


def test_estop_button_and_f12_stop_the_arm(qtbot: QtBot, arm_console) -> None:
    window, sim = arm_console
    console = window  # the safety bar and arm panels are the window's own
    panel = console.arm_panels["arm-a"]
    qtbot.waitUntil(lambda: panel.state_label.text() == "IDLE", timeout=3000)
    qtbot.waitUntil(lambda: console.safety_bar.arm_button.isEnabled(), timeout=3000)
    qtbot.mouseClick(console.safety_bar.arm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: console.safety_bar.status.get("armed") is True, timeout=3000)
    jog = panel.jog_buttons[("j1", 1)]
    qtbot.waitUntil(jog.isEnabled, timeout=3000)  # the engine's controls say: armed
    qtbot.mouseClick(jog, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim.state == "MOVING", timeout=3000)
    estop = window.findChild(type(console.safety_bar.estop_button), "estop_button")
    assert estop is console.safety_bar.estop_button and estop.isVisible()
    qtbot.mouseClick(estop, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim.state == "ESTOP", timeout=2000)
    assert sim.velocity == [0.0] * 6
    qtbot.waitUntil(lambda: panel.state_label.text() == "ESTOP", timeout=3000)
    qtbot.waitUntil(lambda: console.safety_bar.status.get("estop_latched") is True,
                    timeout=3000)
    # reset from the console (it asks first), then F12 from anywhere in the window
    console.safety_bar.confirm = asked = Asked(True)
    qtbot.waitUntil(lambda: not jog.isEnabled(), timeout=3000)  # latched: no motion
    qtbot.waitUntil(console.safety_bar.reset_button.isEnabled, timeout=3000)
    qtbot.mouseClick(console.safety_bar.reset_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sim.state == "IDLE", timeout=3000)
    assert len(asked.questions) == 1 and "DISARMED" in asked.questions[0][1]
    qtbot.waitUntil(lambda: console.safety_bar.motion_label.text() == "○ DISARMED",
                    timeout=3000)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_F12)
    qtbot.waitUntil(lambda: sim.state == "ESTOP", timeout=2000)


# ---- desks by role, and an engine that goes away --------------------------------------------

Desk = Callable[[str], MainWindow]


@pytest.fixture
def arm_stage() -> Iterator[StageHarness]:
    harness = StageHarness(free_port_config(stage="gui-arm-desks", arms=1)).start()
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture
def desk(qtbot: QtBot, arm_stage: StageHarness) -> Iterator[Desk]:
    """Opens a console window for a role; every one is closed at the end."""
    opened: list[tuple[MainWindow, EngineBridge]] = []

    def open_desk(role: str) -> MainWindow:
        bridge = EngineBridge(arm_stage.config, identity=ClientIdentity(f"{role}-desk", role))
        window = MainWindow(arm_stage.config, bridge)
        qtbot.addWidget(window)
        window.show()
        bridge.start()
        opened.append((window, bridge))
        qtbot.waitUntil(lambda: bridge.connected and window.controls.role == role, timeout=3000)
        arm = window.arm_panels["arm-a"]
        qtbot.waitUntil(lambda: arm.known and window.safety_bar.known, timeout=3000)
        return window

    try:
        yield open_desk
    finally:
        for window, bridge in opened:
            stop_bridge(bridge)
            window.close()


def motion_controls(bar: SafetyBar, arm: ArmPanel) -> dict[str, QPushButton]:
    """The controls a viewer or producer may not use."""
    return {"arm stage": bar.arm_button, "stage reset": bar.reset_button,
            "jog": arm.jog_buttons[("j1", 1)], "home": arm.home_button,
            "run path": arm.path_button, "arm reset": arm.reset_button}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("role", ["viewer", "producer"])
def test_a_desk_that_may_not_move_sees_why(qtbot: QtBot, arm_stage: StageHarness, desk: Desk,
                                           role: str, lang: str) -> None:
    i18n.set_language(lang)
    with EngineClient(arm_stage.config, ClientIdentity("ana", "operator")) as op:
        op.call("safety.arm")  # the interlocks are clear: only the role stands in the way
    window = desk(role)
    bar, arm = window.safety_bar, window.arm_panels["arm-a"]
    qtbot.waitUntil(lambda: bar.status.get("armed") is True, timeout=3000)
    role_word = {"en": role, "zh": {"viewer": "访客", "producer": "制片"}[role]}[lang]
    for name, button in motion_controls(bar, arm).items():
        assert not button.isEnabled(), name
        assert role_word in button.toolTip(), (name, button.toolTip())
        if lang == "zh":
            assert "viewer" not in button.toolTip() and "producer" not in button.toolTip()
    assert bar.estop_button.isEnabled() and arm.stop_button.isEnabled()
    assert bar.motion_label.text() == {"en": "● ARMED", "zh": "● 运动已使能"}[lang]
    # anyone may put talent on stage; only operator and engineer may clear it again
    assert bar.talent_button.isEnabled()
    qtbot.mouseClick(bar.talent_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bar.status.get("talent_on_stage") is True, timeout=3000)
    qtbot.waitUntil(lambda: not bar.talent_button.isEnabled(), timeout=3000)
    assert role_word in bar.talent_button.toolTip()


def test_an_operator_desk_follows_the_interlocks(qtbot: QtBot, desk: Desk) -> None:
    window = desk("operator")
    bar, arm = window.safety_bar, window.arm_panels["arm-a"]
    home = arm.home_button
    assert not home.isEnabled() and "not armed" in home.toolTip()
    assert "stagectl" not in home.toolTip()
    qtbot.mouseClick(bar.arm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(home.isEnabled, timeout=3000)
    qtbot.mouseClick(bar.estop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "e-stop" in home.toolTip().lower(), timeout=3000)
    assert not home.isEnabled() and not bar.arm_button.isEnabled()


def test_engine_gone_shows_unknown_and_leaves_only_estop(qtbot: QtBot, arm_stage: StageHarness,
                                                         desk: Desk) -> None:
    window = desk("operator")
    bar, arm = window.safety_bar, window.arm_panels["arm-a"]
    qtbot.mouseClick(bar.arm_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(arm.home_button.isEnabled, timeout=3000)
    assert bar.motion_label.text() == "● ARMED" and arm.state_label.text() == "IDLE"
    engine = arm_stage.engine
    assert engine is not None
    arm_stage.loop.run(engine.stop())
    arm_stage.engine = None  # stopped here; the fixture stops the rest
    qtbot.waitUntil(lambda: not bar.unknown_label.isHidden(), timeout=3000)
    assert bar.unknown_label.text() == "? UNKNOWN — engine not connected"
    assert bar.motion_label.isHidden()  # never the last state
    qtbot.waitUntil(lambda: arm.state_label.text() == "unknown", timeout=3000)
    assert all(label.text() == "—" for label in arm.position_labels.values())
    controls = [bar.arm_button, bar.talent_button, bar.reset_button, arm.home_button,
                arm.path_button, arm.reset_button, arm.stop_button, *arm.jog_buttons.values()]
    for button in controls:
        assert not button.isEnabled(), button.text()
        assert "not connected" in button.toolTip(), button.text()
    assert bar.estop_button.isEnabled()
