"""The arm panel: translated state and pose, unknown when not live, controls gated by the
engine's ``controls`` snapshot with a reason, a Reset that asks, no CLI hints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from gui import i18n
from gui.arm_i18n import tr_role
from gui.arm_panel import JOINTS, ArmPanel
from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness
from tests.gui.conftest import wait_for
from tests.gui.test_safety_bar import (
    FORBIDDEN,
    IN_ESTOP,
    LATCHED,
    NOT_ARMED,
    NOTHING,
    Asked,
    Sent,
    SnapshotControls,
    snapshot,
)

REPORTED = {"state": "IDLE", "fault": "", "joints_deg": [1.0, -60.0, 90.0, -30.0, 0.0, -0.001],
            "velocities_deg_s": [0.0] * 6,
            "tool_pose": {"x_mm": -1184.3, "y_mm": -256.1, "z_mm": 11.6, "roll_deg": 90.0,
                          "pitch_deg": -0.0, "yaw_deg": 12.5}}
STATES_ZH = {"IDLE": "空闲", "MOVING": "运动中", "HOMING": "回原点中", "STOPPING": "停止中",
             "ESTOP": "急停", "FAULT": "故障", "DISCONNECTED": "未连接"}


@pytest.fixture(params=["en", "zh"])
def lang(request: pytest.FixtureRequest) -> Iterator[str]:
    i18n.set_language(request.param)
    yield request.param
    i18n.set_language("en")


def make_panel(qtbot: QtBot, controls: SnapshotControls | None = None,
               reported: dict[str, Any] | None = None) -> tuple[ArmPanel, Sent]:
    panel = ArmPanel("arm-a", JOINTS + ("track",), controls)
    qtbot.addWidget(panel)
    sent: Sent = []
    panel.intent.connect(lambda cmd, args: sent.append((cmd, args)))
    panel.apply_snapshot({"name": "arm-a", "state": REPORTED if reported is None else reported})
    return panel, sent


def gated(panel: ArmPanel) -> dict[str, QPushButton]:
    """The controls that need the role and the interlocks (Stop needs neither)."""
    return {"jog": panel.jog_buttons[("j1", 1)], "home": panel.home_button,
            "path": panel.path_button, "reset": panel.reset_button}


def texts(panel: ArmPanel) -> list[str]:
    """Every label's and button's text (rich text without its tags)."""
    widgets = [*panel.findChildren(QLabel), *panel.findChildren(QPushButton)]
    return [re.sub(r"<[^>]+>", "", w.text()) for w in widgets]


def test_state_and_pose_are_translated(qtbot: QtBot, lang: str) -> None:
    panel, _ = make_panel(qtbot)
    for state, zh in STATES_ZH.items():
        panel.apply_reported({"state": state})
        assert panel.state_label.text() == (zh if lang == "zh" else state)
    panel.apply_reported({"state": "IDLE"})
    pose = panel.pose_label.text()
    if lang == "zh":
        assert pose.startswith("末端位姿：") and "横滚 90.0°" in pose and "俯仰 0.0°" in pose
        assert "偏航 12.5°" in pose and "x -1184.3 mm" in pose
        shown = " ".join(texts(panel))
        assert "状态：" in shown and "回原点" in shown and "轨道位置" in shown
        # nothing English but axis names (j1..j6), units and the pose's x/y/z
        left = re.sub(r"\bj[1-6]\b|\bmm\b|\b[xyz]\b", "", shown)
        assert not re.search(r"[A-Za-z]", left), left
        assert not re.search(r"[\u4e00-\u9fff]:", shown)  # full-width colon after Chinese
    else:
        assert pose == ("Tool pose: x -1184.3 mm  y -256.1 mm  z 11.6 mm  roll 90.0°  "
                        "pitch 0.0°  yaw 12.5°")
    assert panel.position_labels["j6"].text().strip() == "0.00"  # never "-0.00"


def test_not_live_greys_every_readout_and_disables_every_control(qtbot: QtBot,
                                                                 lang: str) -> None:
    controls = SnapshotControls("operator", snapshot())
    panel, sent = make_panel(qtbot, controls)
    assert panel.position_labels["j1"].text().strip() == "1.00"
    assert panel.stop_button.isEnabled() and panel.home_button.isEnabled()
    panel.set_live(False)
    assert panel.state_label.text() == {"en": "unknown", "zh": "未知"}[lang]
    assert "#e0e0e0" in panel.state_label.styleSheet()
    for name in JOINTS + ("track",):
        for label in (panel.position_labels[name], panel.velocity_labels[name]):
            assert label.text() == "—" and "#9e9e9e" in label.styleSheet()
    assert panel.pose_label.text().endswith("—")
    buttons = [*gated(panel).values(), *panel.jog_buttons.values(), panel.stop_button]
    for button in buttons:
        assert not button.isEnabled()
        assert button.toolTip() == i18n.tr("console_engine_offline")
    for button in buttons:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert sent == []
    # back: still unknown until the engine sends the arm's state again
    panel.set_live(True)
    assert panel.state_label.text() == i18n.tr("arm_state_unknown")
    assert panel.position_labels["j1"].text() == "—" and not panel.home_button.isEnabled()
    assert panel.stop_button.isEnabled()  # Stop needs nothing but a live engine
    panel.apply_snapshot({"state": REPORTED})
    assert panel.home_button.isEnabled() and panel.position_labels["j1"].text().strip() == "1.00"


@pytest.mark.parametrize("role", ["viewer", "producer"])
def test_viewer_and_producer_see_motion_disabled_with_a_reason(qtbot: QtBot, lang: str,
                                                               role: str) -> None:
    devices = {"arm-a": {"device_ready": None, "device_resettable": None}}
    panel, sent = make_panel(qtbot, SnapshotControls(role, snapshot(resettable=None,
                                                                    devices=devices)))
    expected = FORBIDDEN[lang].format(role=tr_role(role))
    for name, button in gated(panel).items():
        assert not button.isEnabled(), name
        assert button.toolTip() == expected, name
    assert all(not b.isEnabled() for b in panel.jog_buttons.values())
    assert panel.stop_button.isEnabled()  # stopping is every role's
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    assert sent == [("arm.stop", {"device": "arm-a"})]


def test_operator_controls_follow_the_interlocks(qtbot: QtBot) -> None:
    controls = SnapshotControls("operator", snapshot())
    panel, sent = make_panel(qtbot, controls)
    for name in ("jog", "home", "path"):
        assert gated(panel)[name].isEnabled() and gated(panel)[name].toolTip() == "", name
    assert not panel.reset_button.isEnabled()
    assert panel.reset_button.toolTip() == NOTHING["message"]
    qtbot.mouseClick(panel.jog_buttons[("j2", -1)], Qt.MouseButton.LeftButton)
    qtbot.mouseClick(panel.home_button, Qt.MouseButton.LeftButton)
    assert sent == [("arm.jog", {"device": "arm-a", "axis": "j2", "velocity": -10.0,
                                 "duration_s": 0.3}),
                    ("arm.home", {"device": "arm-a"})]
    controls.update(snapshot(armed=NOT_ARMED))
    for name in ("jog", "home", "path"):
        assert not gated(panel)[name].isEnabled()
        assert gated(panel)[name].toolTip() == "interlock: stage not armed", name  # no CLI
    devices = {"arm-a": {"device_ready": IN_ESTOP, "device_resettable": None}}
    controls.update(snapshot(estop_clear=LATCHED, armed=NOT_ARMED, resettable=None,
                             devices=devices))
    assert gated(panel)["jog"].toolTip().startswith(LATCHED["message"])
    assert IN_ESTOP["message"] in gated(panel)["jog"].toolTip()
    assert panel.reset_button.isEnabled()


def test_reset_asks_as_the_safety_bar_does(qtbot: QtBot, lang: str) -> None:
    devices = {"arm-a": {"device_ready": IN_ESTOP, "device_resettable": None}}
    controls = SnapshotControls("operator", snapshot(estop_clear=LATCHED, armed=NOT_ARMED,
                                                     resettable=None, devices=devices))
    panel, sent = make_panel(qtbot, controls, {**REPORTED, "state": "ESTOP"})
    panel.apply_safety({"armed": False, "talent_on_stage": False, "estop_latched": True,
                        "estop_reason": "console E-STOP", "estop_by": "ana (operator)"})
    panel.confirm = asked = Asked(False)
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert sent == [] and len(asked.questions) == 1
    text = asked.questions[0][1]
    assert "arm-a" in text and "ana" in text
    assert ("运动未使能" if lang == "zh" else "DISARMED") in text
    panel.confirm = Asked(True)
    qtbot.mouseClick(panel.reset_button, Qt.MouseButton.LeftButton)
    assert sent == [("arm.reset", {"device": "arm-a"})]


def test_a_fault_is_shown_without_cli_hints(qtbot: QtBot, lang: str) -> None:
    panel, _ = make_panel(qtbot, reported={**REPORTED, "state": "FAULT",
                                           "fault": "limit j2 (stagectl arm reset)"})
    assert panel.fault_label.text() == {"en": "Fault: limit j2",
                                        "zh": "故障：limit j2"}[lang]
    assert "stagectl" not in " ".join(texts(panel))
    # the fault an arm reports after the engine's e-stop is ours to translate
    panel.apply_reported({"state": "ESTOP", "fault": "e-stop: console E-STOP (ana)"})
    assert panel.fault_label.text() == {"en": "Fault: e-stop: console E-STOP (ana)",
                                        "zh": "故障：急停：控制台急停（ana）"}[lang]


# ---- against the real engine ---------------------------------------------------------------

def test_the_engine_snapshot_gates_the_panel_by_role_and_arming(qtbot: QtBot,
                                                                arm_stage: StageHarness) -> None:
    clients = {role: EngineClient(arm_stage.config, ClientIdentity(f"{role}-1", role),
                                  timeout_s=3.0) for role in ("operator", "viewer")}
    try:
        operator = clients["operator"]
        wait_for(lambda: operator.call("arm.status")["state"].get("state") == "IDLE")
        status = operator.call("status")
        arm = next(d for d in status["devices"] if d["name"] == "arm-a")
        panels = {}
        for role, client in clients.items():
            controls = SnapshotControls(role, client.call("controls"))
            panel, _ = make_panel(qtbot, controls, arm["state"])
            panels[role] = (panel, controls)
        viewer, _ = panels["viewer"]
        assert viewer.state_label.text() == "IDLE"
        assert not viewer.jog_buttons[("j1", 1)].isEnabled() and viewer.stop_button.isEnabled()
        panel, controls = panels["operator"]

        def only_disarmed() -> bool:  # the engine's snapshot follows the arm coming online
            controls.update(operator.call("controls"))
            return panel.home_button.toolTip() == "interlock: stage not armed"
        wait_for(only_disarmed)  # the stage starts disarmed
        assert not panel.home_button.isEnabled()
        operator.call("safety.arm")

        def movable() -> bool:
            controls.update(operator.call("controls"))
            return panel.home_button.isEnabled()
        wait_for(movable)
        assert panel.jog_buttons[("j1", 1)].isEnabled() and panel.path_button.isEnabled()
    finally:
        for client in clients.values():
            client.close()
