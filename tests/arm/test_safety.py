"""Stage safety and cues through the engine: e-stop fan-out, interlocks, roles, audit, cues."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.arm.simulator import ArmSimulator
from drivers.led.simulator import LedSimulator
from stagectl.client import EngineError
from stagectl.harness import StageHarness, free_port_config
from tests.arm.conftest import READY_POSE, client, wait_for
from tests.stage_toml import cue_stage_config


def sims(h: StageHarness) -> tuple[ArmSimulator, LedSimulator]:
    assert h.sims is not None
    arm, led = h.sims.by_name("arm-a-sim"), h.sims.by_name("led-main-sim")
    assert isinstance(arm, ArmSimulator) and isinstance(led, LedSimulator)
    return arm, led


def audit(h: StageHarness, event: str | None = None) -> list[dict[str, object]]:
    with client(h, "viewer") as c:
        rows: list[dict[str, object]] = c.call("audit.tail", {"event": event} if event else {})
    return rows


def test_motion_refused_until_armed_and_while_talent_on_stage(stage: StageHarness) -> None:
    arm_sim, _ = sims(stage)
    with client(stage) as op:
        with pytest.raises(EngineError) as info:
            op.call("arm.move_joints", {"joints_deg": READY_POSE})
        assert info.value.code == "interlock"
        assert info.value.details["interlock"] == "not_armed"
        assert "not armed" in str(info.value)
        op.call("safety.arm")
        op.call("safety.talent", {"on": True})
        with pytest.raises(EngineError, match="talent on stage") as info:
            op.call("arm.home")
        assert info.value.details["interlock"] == "talent_on_stage"
        op.call("safety.talent", {"on": False})
        result = op.call("arm.move_joints", {"joints_deg": READY_POSE, "profile": "scurve"})
        assert result["state"] == "MOVING"
    wait_for(lambda: arm_sim.state == "MOVING")
    rows = audit(stage, "refused_move")
    assert [(r["user"], r["role"], r["device"]) for r in rows] == [("ana", "operator", "arm-a")] * 2
    assert "not armed" in str(rows[0]["reason"]) and "talent" in str(rows[1]["reason"])


def test_talent_on_stage_stops_a_moving_arm(stage: StageHarness) -> None:
    arm_sim, _ = sims(stage)
    with client(stage) as op, client(stage, "viewer", "vic") as viewer:
        op.call("safety.arm")
        op.call("arm.move_joints", {"joints_deg": [150.0, -60, 90, -30, 0, 0],
                                    "speed_scale": 0.3})
        wait_for(lambda: arm_sim.state == "MOVING")
        viewer.call("safety.talent", {"on": True})  # anyone may make the stage safer
        wait_for(lambda: arm_sim.state == "IDLE")
        with pytest.raises(EngineError) as info:
            viewer.call("safety.talent", {"on": False})  # ...but only control clears it
        assert info.value.code == "forbidden"
    assert arm_sim.position[0] < 150.0


@pytest.mark.parametrize("role", ["viewer", "producer"])
def test_roles_that_may_not_move_or_reset(stage: StageHarness, role: str) -> None:
    with client(stage, role, "pat") as c:
        for cmd, args in (("safety.arm", {}), ("arm.home", {}), ("arm.reset", {}),
                          ("cue.go", {}), ("arm.set_limits", {"velocity_scale": 0.5})):
            with pytest.raises(EngineError) as info:
                c.call(cmd, args)
            assert info.value.code == "forbidden", cmd
        assert c.call("safety.status")["armed"] is False
    refused = audit(stage, "refused_move")
    assert {r["reason"] for r in refused} >= {f"safety.arm: role {role!r} not allowed"}
    assert all((r["user"], r["role"]) == ("pat", role) for r in refused)


def test_estop_by_a_viewer_stops_the_arm_freezes_the_wall_and_latches(
        stage: StageHarness) -> None:
    arm_sim, led_sim = sims(stage)
    with client(stage) as op, client(stage, "viewer", "vic") as viewer:
        op.call("safety.arm")
        op.call("arm.move_joints", {"joints_deg": [150.0, -60, 90, -30, 0, 0]})
        wait_for(lambda: arm_sim.state == "MOVING" and abs(arm_sim.velocity[0]) > 5)
        result = viewer.call("estop", {"reason": "boom in shot"})
        assert result["motion_devices"] == {"arm-a": True} and not result["unreachable"]
        wait_for(lambda: arm_sim.state == "ESTOP", 0.5)
        assert arm_sim.velocity == [0.0] * 6
        wait_for(lambda: led_sim.values["freeze"] is True)
        with pytest.raises(EngineError) as info:
            op.call("arm.home")
        assert "e-stop latched" in str(info.value)
        with pytest.raises(EngineError) as info:
            viewer.call("arm.reset")
        assert info.value.code == "forbidden"
        reset = op.call("arm.reset", {"reason": "boom cleared"})
        assert reset["devices"] == {"arm-a": "ESTOP -> IDLE"}
        wait_for(lambda: arm_sim.state == "IDLE")
        assert reset["armed"] is False  # the e-stop disarmed the stage; reset does not re-arm
        with pytest.raises(EngineError) as info:
            op.call("arm.home")
        assert info.value.details["interlock"] == "not_armed"
        op.call("safety.arm")  # re-arming is a separate act (ISO 13850)
        op.call("arm.home")
    rows = audit(stage)
    estop = next(r for r in rows if r["event"] == "estop")
    assert (estop["user"], estop["role"], estop["reason"]) == ("vic", "viewer", "boom in shot")
    assert estop["details"]["led"] == {"led-main": "freeze"}  # type: ignore[index]
    reset_row = next(r for r in rows if r["event"] == "reset")
    assert (reset_row["user"], reset_row["role"], reset_row["reason"]) == \
        ("ana", "operator", "boom cleared")


def test_reset_sent_straight_after_an_estop_resets_the_arm(stage: StageHarness) -> None:
    """The e-stop's reply leaves before the arm's next sample; a reset right behind it must
    wait for the arm to show it stopped, not skip it as "MOVING: nothing to reset"."""
    arm_sim, _ = sims(stage)
    for _ in range(5):
        with client(stage) as op:
            op.call("safety.arm")
            op.call("arm.move_joints", {"joints_deg": [150.0, -60, 90, -30, 0, 0]})
            wait_for(lambda: arm_sim.state == "MOVING" and abs(arm_sim.velocity[0]) > 5)
            op.call("estop", {"reason": "race"})
            reset = op.call("safety.reset")
            assert reset["devices"] == {"arm-a": "ESTOP -> IDLE"}, reset
            assert reset["estop_was_latched"] is True
            wait_for(lambda: arm_sim.state == "IDLE")
            op.call("safety.arm")
            op.call("arm.home")
            wait_for(lambda: arm_sim.state == "IDLE", 10.0)


def test_watchdog_trip_is_audited(stage: StageHarness) -> None:
    arm_sim, _ = sims(stage)
    assert stage.engine is not None
    driver = stage.engine.devices["arm-a"]
    with client(stage) as op:
        op.call("safety.arm")
        op.call("arm.move_joints", {"joints_deg": [150.0, -60, 90, -30, 0, 0],
                                    "speed_scale": 0.2})
        wait_for(lambda: arm_sim.state == "MOVING")
        stage.loop.call(lambda: setattr(driver, "heartbeats_enabled", False))
        wait_for(lambda: arm_sim.state == "FAULT", 2.0)
        stage.loop.call(lambda: setattr(driver, "heartbeats_enabled", True))
        wait_for(lambda: bool(audit(stage, "watchdog_trip")))
        row = audit(stage, "watchdog_trip")[0]
        assert (row["user"], row["device"]) == ("system", "arm-a")
        assert "no heartbeat" in str(row["reason"])
        status = op.call("arm.status")
        assert status["state"]["state"] == "FAULT"
        assert any("FAULT" in p["message"] for p in status["motion_problems"])


def test_audit_log_is_a_wal_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "var" / "audit.sqlite"
    h = StageHarness(free_port_config(stage="audit-stage", arms=1,
                                      safety={"audit_db": str(db)})).start()
    try:
        with client(h, "engineer", "eve") as c:
            c.call("estop", {"reason": "drill"})
    finally:
        h.stop()
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT event, user, role, reason FROM audit").fetchall()
    assert rows == [("estop", "eve", "engineer", "drill")]


@pytest.fixture
def cue_stage(tmp_path: Path) -> Iterator[StageHarness]:
    with StageHarness(cue_stage_config(tmp_path, "cue-stage")) as h:
        yield h


def test_cue_go_back_jump_and_preconditions(cue_stage: StageHarness) -> None:
    arm_sim, led_sim = sims(cue_stage)
    with client(cue_stage) as op:
        listing = op.call("cue.list")
        assert [c["number"] for c in listing["cues"]] == [1, 2, 5]
        assert any("not armed" in p["message"] for p in listing["cues"][0]["problems"])
        with pytest.raises(EngineError) as info:
            op.call("cue.go")
        assert info.value.code == "precondition_failed" and "not armed" in str(info.value)
        assert led_sim.state.preset == 0  # nothing fired
        op.call("safety.arm")
        fired = op.call("cue.go")
        assert fired["cue"] == 1 and "take marked: sc1 wide" in fired["fired"]
        wait_for(lambda: led_sim.state.preset == 2 and arm_sim.state == "MOVING")
        wait_for(lambda: arm_sim.state == "IDLE", 5.0)
        assert op.call("cue.go")["cue"] == 2
        wait_for(lambda: led_sim.values["brightness_nits"] == 700.0)
        with pytest.raises(EngineError) as info:
            op.call("cue.jump", {"number": 5})
        assert info.value.code == "precondition_failed"
        assert "j1" in str(info.value) and "soft_max" in str(info.value)
        assert op.call("cue.back")["cue"] == 1
        assert op.call("cue.list")["current"] == 1
        with pytest.raises(EngineError) as info:
            op.call("cue.jump", {"number": 9})
        assert info.value.code == "unknown_cue"


def test_device_lost_during_a_cue_fires_nothing(cue_stage: StageHarness) -> None:
    arm_sim, led_sim = sims(cue_stage)
    assert cue_stage.engine is not None
    driver = cue_stage.engine.devices["arm-a"]
    with client(cue_stage) as op:
        op.call("safety.arm")
        cue_stage.loop.run(arm_sim.stop())  # the arm controller drops off the network
        wait_for(lambda: not driver.online, 2.0)
        with pytest.raises(EngineError) as info:
            op.call("cue.go")
        assert info.value.code == "precondition_failed"
        assert "arm-a is offline" in str(info.value)
        assert info.value.details["problems"] == [p for p in info.value.details["problems"]
                                                  if "arm-a" in p["message"]]
    assert led_sim.state.preset == 0  # the LED part of the cue did not fire either
    refused = audit(cue_stage, "refused_move")
    assert refused and "cue 1" in str(refused[-1]["reason"])
