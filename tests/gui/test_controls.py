"""Controls: what a console control may do, from hand-built engine ``controls`` data."""

from __future__ import annotations

from typing import Any

import shiboken6
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from gui import i18n
from gui.controls import Controls
from stagectl.client import ClientIdentity

NOT_ARMED = {"code": "interlock_not_armed", "params": {}, "message": "the stage is not armed"}
NOT_READY = {"code": "device_offline", "params": {"device": "arm-b"},
             "message": "arm-b is offline"}


def snapshot(you_role: str = "operator", armed: bool = False) -> dict[str, Any]:
    return {
        "you": {"user": "ana", "role": you_role},
        "commands": {
            "arm.jog": {"roles": ["engineer", "operator"],
                        "needs": ["estop_clear", "armed", "talent_clear", "device_ready"]},
            "estop": {"roles": ["engineer", "operator", "producer", "viewer"], "needs": []},
            "led.set": {"roles": ["engineer", "operator"], "needs": []},
        },
        "interlocks": {"estop_clear": None, "armed": None if armed else NOT_ARMED,
                       "talent_clear": None, "resettable": None},
        "devices": {"arm-a": {"device_ready": None, "resettable": None},
                    "arm-b": {"device_ready": NOT_READY, "resettable": None}},
    }


def live_controls(data: dict[str, Any] | None = None, role: str = "operator") -> Controls:
    controls = Controls(ClientIdentity(user="ana", role=role))
    controls.set_live(True)
    controls.apply_snapshot(snapshot() if data is None else data)
    return controls


def codes(problems: list[dict[str, Any]] | None) -> list[str]:
    assert problems is not None
    return [str(p["code"]) for p in problems]


def test_allowed_when_role_fits_and_interlocks_clear() -> None:
    controls = live_controls(snapshot(armed=True))
    assert controls.blocked("arm.jog", "arm-a") is None
    assert controls.reason("arm.jog", "arm-a") is None
    assert controls.blocked("estop") is None


def test_role_refused_uses_the_engine_resolved_role() -> None:
    # the console says operator, the engine resolved viewer (CURVE): the engine wins
    controls = live_controls(snapshot(you_role="viewer", armed=True), role="operator")
    assert controls.role == "viewer" and controls.user == "ana"
    problems = controls.blocked("led.set")
    assert codes(problems) == ["console_role"]
    assert problems is not None and problems[0]["params"]["roles"] == ["engineer", "operator"]
    assert controls.blocked("estop") is None
    assert controls.reason("led.set") == \
        "The viewer role may not use this control (allowed: engineer, operator)"
    i18n.set_language("zh")
    assert controls.reason("led.set") == "访客无权执行此操作（允许：工程师、操作员）"


def test_published_copy_keeps_the_resolved_identity() -> None:
    controls = live_controls(snapshot(you_role="producer"))
    published = snapshot(armed=True)
    del published["you"]
    controls.apply_snapshot(published)
    assert controls.role == "producer"
    assert codes(controls.blocked("arm.jog", "arm-a")) == ["console_role"]


def test_stage_interlock_blocks_with_the_engine_problem() -> None:
    controls = live_controls()
    assert controls.blocked("arm.jog", "arm-a") == [NOT_ARMED]
    assert controls.reason("arm.jog", "arm-a") == "the stage is not armed"
    assert controls.blocked("led.set") is None


def test_device_level_interlock_blocks_only_that_device() -> None:
    controls = live_controls(snapshot(armed=True))
    assert controls.blocked("arm.jog", "arm-a") is None
    assert controls.blocked("arm.jog", "arm-b") == [NOT_READY]
    # a device the engine did not report: unknown means blocked
    assert codes(controls.blocked("arm.jog", "arm-z")) == ["console_unknown_interlock"]


def test_not_live_blocks_everything_even_estop_data() -> None:
    controls = live_controls(snapshot(armed=True))
    controls.set_live(False)
    assert codes(controls.blocked("arm.jog", "arm-a")) == ["console_engine_offline"]
    assert codes(controls.blocked("led.set")) == ["console_engine_offline"]
    i18n.set_language("zh")
    assert controls.reason("led.set") == "引擎未连接，无法操作"


def test_no_snapshot_yet_is_blocked_and_unknown_commands_too() -> None:
    controls = Controls(ClientIdentity(user="ana", role="operator"))
    controls.set_live(True)
    assert codes(controls.blocked("led.set")) == ["console_no_controls"]
    assert controls.role == "operator"
    controls.apply_snapshot(snapshot())
    assert codes(controls.blocked("warp.drive")) == ["console_unknown_command"]


def test_bound_widget_follows_every_change(qtbot: QtBot) -> None:
    controls = Controls(ClientIdentity(user="ana", role="operator"))
    button = QPushButton("jog")
    qtbot.addWidget(button)
    button.setToolTip("jog joint 1")
    changes: list[None] = []
    controls.changed.connect(lambda: changes.append(None))
    controls.bind(button, "arm.jog", "arm-a")
    assert not button.isEnabled()
    assert "not connected" in button.toolTip()
    controls.set_live(True)
    controls.apply_snapshot(snapshot())
    assert not button.isEnabled() and button.toolTip() == "the stage is not armed"
    controls.apply_snapshot(snapshot(armed=True))
    assert button.isEnabled() and button.toolTip() == "jog joint 1"
    controls.set_live(False)
    assert not button.isEnabled()
    assert len(changes) == 4


def test_a_deleted_widget_is_dropped(qtbot: QtBot) -> None:
    controls = live_controls()
    button = QPushButton("x")
    controls.bind(button, "led.set")
    assert button.isEnabled()
    shiboken6.delete(button)
    controls.apply_snapshot(snapshot(armed=True))  # must not touch the deleted widget
    assert controls._bound == []
