"""CURVE on the arm link: refused without keys off loopback, and a working secured link."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from drivers.arm import protocol as p
from drivers.arm.driver import ArmCurveKeys
from stagectl.arm_keys import driver_keys, simulator_settings
from stagectl.config import ArmDeviceConfig, ArmSimulatorConfig, ConfigError, parse_config
from stagectl.keys import generate
from tests.security.arm_peers import READY_POSE, driver, raw_client, simulator, until


def stage(device: dict[str, Any], sim: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"stage": {"name": "curve-stage"},
            "devices": [{"name": "arm-a", "kind": "arm", **device}],
            "simulators": [] if sim is None else [{"name": "arm-a-sim", "kind": "arm", **sim}]}


@pytest.mark.parametrize("endpoints", [
    {"command": "tcp://10.1.2.3:5570", "telemetry": "tcp://127.0.0.1:5571"},
    {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://arm.stage.lan:5571"},
    {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://127.0.0.1:5571", "curve": True},
])
def test_config_refuses_an_arm_link_off_loopback_without_keys(endpoints: dict[str, Any]
                                                              ) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(stage(endpoints))
    text = str(info.value)
    assert "devices[0]" in text and "CURVE" in text and "server_key" in text
    keyed = parse_config(stage({**endpoints, "server_key": "keys/arm-a-controller.key",
                                "client_key": "keys/arm-a-engine.key_secret"}))
    device = keyed.devices[0]
    assert isinstance(device, ArmDeviceConfig) and device.needs_curve


def test_config_refuses_a_simulated_controller_bound_off_loopback_without_keys() -> None:
    loopback = {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://127.0.0.1:5571"}
    with pytest.raises(ConfigError, match="secret_key"):
        parse_config(stage(loopback, {"command": "tcp://0.0.0.0:5570",
                                      "telemetry": "tcp://0.0.0.0:5571"}))
    plain = parse_config(stage(loopback, loopback))
    assert not plain.devices[0].needs_curve  # type: ignore[union-attr]


async def test_a_curve_secured_link_works_and_keeps_strangers_out(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generate(keys, "arm-a-controller")
    generate(keys, "arm-a-engine", role="engineer")  # also copied into keys/authorized/
    generate(tmp_path / "other", "stranger", role="viewer")
    cfg = parse_config({**stage(
        {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://127.0.0.1:5571",
         "curve": True, "server_key": "keys/arm-a-controller.key",
         "client_key": "keys/arm-a-engine.key_secret"},
        {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://127.0.0.1:5571",
         "curve": True, "secret_key": "keys/arm-a-controller.key_secret",
         "authorized_dir": "keys/authorized"})})
    device, sim_cfg = cfg.devices[0], cfg.simulators[0]
    assert isinstance(device, ArmDeviceConfig) and isinstance(sim_cfg, ArmSimulatorConfig)
    engine_keys = driver_keys(device, tmp_path)
    assert engine_keys is not None
    async with simulator(**simulator_settings(sim_cfg, tmp_path)) as sim:
        async with driver(sim, curve=engine_keys) as arm:
            assert (await arm.move_joints(READY_POSE))["state"] == "MOVING"
            await until(lambda: arm.reported.get("state") == "MOVING")
            # no keys, or a key the controller does not know: no answer, no telemetry
            async with raw_client(sim.command_endpoint) as plain:
                await plain.send("estop")
                with pytest.raises(TimeoutError):
                    await plain.recv(0.3)
            stranger = driver_keys(device.model_copy(update={
                "client_key": "other/stranger.key_secret"}), tmp_path)
            assert stranger is not None
            async with raw_client(sim.command_endpoint, stranger) as other:
                await other.send("estop")
                with pytest.raises(TimeoutError):
                    await other.recv(0.3)
            assert sim.state == "MOVING"
            ctx = zmq.asyncio.Context()
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, p.TELEMETRY_TOPIC)
            sub.connect(sim.telemetry_endpoint)
            try:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(sub.recv_multipart(), 0.3)
            finally:
                sub.close(0)
                ctx.term()
            # the authorised client with the engine's keys is heard
            async with raw_client(sim.command_endpoint, engine_keys) as friend:
                assert (await friend.call("heartbeat"))["ok"] is True


def test_missing_key_file_is_one_clear_error(tmp_path: Path) -> None:
    cfg = parse_config(stage({"command": "tcp://10.0.0.9:5570",
                              "telemetry": "tcp://10.0.0.9:5571",
                              "server_key": "keys/nope.key", "client_key": "keys/me.key_secret"}))
    device = cfg.devices[0]
    assert isinstance(device, ArmDeviceConfig)
    with pytest.raises(ValueError, match=r"nope\.key.*not found.*stagectl keys generate"):
        driver_keys(device, tmp_path)
    assert isinstance(ArmCurveKeys(b"a", b"b", b"c"), ArmCurveKeys)


def test_an_empty_authorized_dir_refuses_to_start_instead_of_letting_any_key_in(
        tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    generate(keys, "arm-a-controller")
    (keys / "authorized").mkdir(exist_ok=True)
    cfg = parse_config({**stage(
        {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://127.0.0.1:5571"},
        {"command": "tcp://127.0.0.1:5570", "telemetry": "tcp://127.0.0.1:5571",
         "curve": True, "secret_key": "keys/arm-a-controller.key_secret",
         "authorized_dir": "keys/authorized"})})
    sim_cfg = cfg.simulators[0]
    assert isinstance(sim_cfg, ArmSimulatorConfig)
    with pytest.raises(ValueError, match="holds no client certificates"):
        simulator_settings(sim_cfg, tmp_path)
