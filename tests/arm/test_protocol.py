"""The arm codec, kinematics and planner as pure functions: known vectors and fuzz."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.arm import protocol as p
from drivers.arm.kinematics import UR10_DH, IkError, Pose, forward, inverse
from drivers.arm.motion import check_trajectory, default_axes, plan_move, plan_path
from drivers.arm.planner import Envelope, plan


def test_request_round_trip_and_known_reply_vectors() -> None:
    wire = p.encode_request("7", "move_joints", {"joints_deg": [1, 2, 3, 4, 5, 6]})
    assert wire == (b'{"id":"7","cmd":"move_joints","args":{"joints_deg":[1,2,3,4,5,6]}}')
    req = p.decode_request(wire)
    assert (req.id, req.cmd) == ("7", "move_joints")
    assert p.ok_reply("7", {"state": "MOVING"}) == \
        b'{"id":"7","ok":true,"result":{"state":"MOVING"}}'
    err = json.loads(p.error_reply("7", "soft_limit", "j1 beyond", axis="j1", value=float("inf")))
    assert err == {"id": "7", "ok": False,
                   "error": {"code": "soft_limit", "message": "j1 beyond", "axis": "j1"}}
    reply = p.decode_reply(p.error_reply("9", "busy", "arm is MOVING", state="MOVING"))
    assert (reply.ok, reply.code, reply.details) == (False, "busy", {"state": "MOVING"})


@pytest.mark.parametrize("payload,code", [
    (b"{not json", "bad_json"), (b"\xff\xfe", "bad_json"), (b"[1,2]", "bad_request"),
    (b'{"cmd":"home"}', "bad_request"), (b'{"id":true,"cmd":"home"}', "bad_request"),
    (b'{"id":1,"cmd":"fly"}', "unknown_command"), (b'{"id":1,"cmd":"home","args":[]}',
                                                   "bad_request"),
    (b'{"id":1,"cmd":"home","args":{"x":NaN}}', "bad_json"),
    (b"[" * 100000, "bad_json"),
])
def test_malformed_requests_get_a_code(payload: bytes, code: str) -> None:
    with pytest.raises(p.ArmProtocolError) as info:
        p.decode_request(payload)
    assert info.value.code == code


@pytest.mark.parametrize("cmd,args,param", [
    ("move_joints", {"joints_deg": [0, 0, 0]}, "joints_deg"),
    ("move_joints", {"joints_deg": [0, 0, "9", 0, 0, 0]}, "joints_deg[2]"),
    ("move_joints", {"joints_deg": [0, 0, 1e300, 0, 0, 0]}, "joints_deg[2]"),
    ("move_joints", {"joints_deg": [0, 0, 10**400, 0, 0, 0]}, "joints_deg[2]"),
    ("move_joints", {"joints_deg": [0] * 6, "speed_scale": 2}, "speed_scale"),
    ("move_joints", {"joints_deg": [0] * 6, "profile": "wobbly"}, "profile"),
    ("jog", {"axis": "j7", "velocity": 1}, "axis"),
    ("jog", {"axis": "j1", "velocity": True}, "velocity"),
    ("run_path", {"keyframes": [{"t_s": 1, "joints_deg": [0] * 6},
                                {"t_s": 1, "joints_deg": [0] * 6}]}, "keyframes[1].t_s"),
    ("move_pose", {"pose": {"x_mm": 1}}, "pose.y_mm"),
    ("set_limits", {"watchdog_s": 0}, "watchdog_s"),
])
def test_invalid_arguments_name_the_field(cmd: str, args: dict[str, object], param: str) -> None:
    with pytest.raises(p.ArmProtocolError) as info:
        p.validate_args(cmd, args, track=False)
    assert info.value.code == "invalid_value"
    assert info.value.details["param"] == param
    assert param in str(info.value)


def test_unknown_arguments_are_refused() -> None:
    with pytest.raises(p.ArmProtocolError, match="unknown argument.*speed"):
        p.validate_args("home", {"speed": 3}, track=False)


def test_forward_kinematics_known_answer_and_ik_round_trip() -> None:
    home = forward(UR10_DH, [0.0] * 6)
    # UR10 at all-zero joints: arm stretched along -x, flange at the wrist offsets
    assert home.x_mm == pytest.approx(-612.0 - 572.3, abs=1e-6)
    assert home.y_mm == pytest.approx(-(163.9 + 92.2), abs=1e-6)
    assert home.z_mm == pytest.approx(127.3 - 115.7, abs=1e-6)
    q = np.array([10.0, -60.0, 40.0, -20.0, 30.0, 5.0])
    pose = forward(UR10_DH, q)
    solved = inverse(UR10_DH, pose, q + 4.0)
    assert forward(UR10_DH, solved).x_mm == pytest.approx(pose.x_mm, abs=0.1)
    np.testing.assert_allclose(solved, q, atol=0.01)
    with pytest.raises(IkError, match="out of reach"):
        inverse(UR10_DH, Pose(5000.0, 0, 0, 0, 0, 0), q, max_iterations=50)


@pytest.mark.parametrize("profile", ["trapezoid", "scurve"])
def test_profiles_are_synchronised_and_within_caps(profile: str) -> None:
    axes = default_axes(False)
    traj = plan_move(axes, np.zeros(6), np.array([90.0, -45, 30, 0, 0, 10]), profile)
    check_trajectory(axes, traj)
    pos, vel = traj.sample(np.array([0.0, traj.duration_s]))
    np.testing.assert_allclose(pos[1], [90, -45, 30, 0, 0, 10])
    np.testing.assert_allclose(vel, 0.0, atol=1e-9)
    # j1 (120 deg/s) is the limiting axis of a trapezoid: it reaches its cap
    _, v = traj.sample(np.linspace(0, traj.duration_s, 500))
    assert np.max(np.abs(v[:, 0])) <= 120.0 * 1.001


def test_soft_limit_on_a_move_names_axis_limit_and_value() -> None:
    env = Envelope()
    with pytest.raises(p.ArmProtocolError) as info:
        plan(env, "move_joints", p.validate_args("move_joints", {
            "joints_deg": [0, 0, 0, 0, 124, 0]}, False), env.home)
    exc = info.value
    assert exc.code == "soft_limit"
    assert exc.details == {"axis": "j5", "limit": "soft_max", "limit_value": 120.0,
                           "value": 124.0, "at_s": 0.0}
    assert "j5" in str(exc) and "120" in str(exc) and "124" in str(exc)


def test_path_overshoot_between_keyframes_is_caught() -> None:
    env = Envelope()
    # keyframes inside the soft range, but the spline overshoots past j5's 120 deg
    frames = [{"t_s": 1.0, "joints_deg": [0, 0, 0, 0, 119.5, 0]},
              {"t_s": 1.3, "joints_deg": [0, 0, 0, 0, 119.9, 0]},
              {"t_s": 2.5, "joints_deg": [0, 0, 0, 0, 0, 0]}]
    with pytest.raises(p.ArmProtocolError) as info:
        plan(env, "run_path", {"keyframes": frames}, env.home)
    assert info.value.details["axis"] == "j5"
    assert info.value.code in ("soft_limit", "velocity_limit", "acceleration_limit")


def test_path_too_fast_is_refused_and_spline_passes_keyframes() -> None:
    env = Envelope()
    with pytest.raises(p.ArmProtocolError) as info:
        plan(env, "run_path", {"keyframes": [{"t_s": 0.1, "joints_deg": [90, 0, 0, 0, 0, 0]}]},
             env.home)
    assert info.value.code in ("velocity_limit", "acceleration_limit")
    path = plan_path(np.zeros(6), [2.0, 4.0], [np.full(6, 10.0), np.zeros(6)])
    pos, _ = path.sample(np.array([2.0]))
    np.testing.assert_allclose(pos[0], 10.0)


def test_telemetry_round_trip() -> None:
    pose = {k: 1.0 for k in p.POSE_KEYS}
    sample = p.Telemetry(3, 1.5, p.ArmState.MOVING, [1.0] * 6, [0.5] * 6, pose, 1.62,
                         [1.1] * 6, pose)
    topic, body = p.encode_telemetry(sample)
    assert topic == b"telemetry"
    assert p.decode_telemetry(body) == sample


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=6),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(cmd=st.sampled_from(p.COMMANDS), args=st.dictionaries(
    st.sampled_from(["joints_deg", "pose", "keyframes", "axis", "velocity", "duration_s",
                     "profile", "speed_scale", "soft_min", "watchdog_s", "t_s", "x",
                     "lease", "holder", "ttl_s", "interlocks"]),
    json_values, max_size=4))
def test_fuzz_validate_args_only_raises_protocol_errors(cmd: str, args: dict[str, object]
                                                        ) -> None:
    try:
        clean = p.validate_args(cmd, args, track=False)
    except p.ArmProtocolError as exc:
        assert exc.code in ("invalid_value", "bad_request") and str(exc)
        return
    json.dumps(clean, allow_nan=False)  # what passes is wire-clean
    for value in clean.values():
        if isinstance(value, float):
            assert math.isfinite(value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_fuzz_decode_request_never_crashes(payload: bytes) -> None:
    try:
        p.decode_request(payload)
    except p.ArmProtocolError as exc:
        assert exc.code in ("bad_json", "bad_request", "unknown_command")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["armed", "talent_on_stage", "estop_latched", "x"]),
                       json_values, max_size=4))
def test_fuzz_interlock_push_is_all_three_flags_or_refused(locks: dict[str, object]) -> None:
    try:
        clean = p.validate_args("heartbeat", {"interlocks": locks}, track=False)
    except p.ArmProtocolError as exc:
        assert exc.code in ("invalid_value", "bad_request") and str(exc)
        return
    assert set(clean["interlocks"]) == set(p.INTERLOCK_KEYS)
    assert all(isinstance(v, bool) for v in clean["interlocks"].values())


def test_lease_envelope_and_quick_id_vectors() -> None:
    payload = p.encode_request("arm-a-7", "heartbeat", {}, "f" * 32)
    request = p.decode_request(payload)
    assert (request.id, request.cmd, request.lease) == ("arm-a-7", "heartbeat", "f" * 32)
    assert p.quick_id(payload) == "arm-a-7" and p.quick_id(b'{"id": 12, "cmd"') == "12"
    with pytest.raises(p.ArmProtocolError) as info:
        p.decode_request(b'{"id":1,"cmd":"home","lease":7}')
    assert info.value.code == "bad_request" and "lease" in str(info.value)
    with pytest.raises(p.ArmProtocolError) as info:
        p.validate_args("acquire", {"lease": "short", "holder": "x"}, track=False)
    assert info.value.details["param"] == "lease"
