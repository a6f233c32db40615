"""CURVE: an agent without keys is refused when the controller requires CURVE."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from scheduler.dispatch.client import ControllerUnavailable, FarmClient
from scheduler.dispatch.config import ControllerConfig
from scheduler.dispatch.controller import Controller
from stagectl.keys import generate
from tests.dispatch.conftest import Farm


def make_keys(keys: Path) -> None:
    generate(keys, "server")
    generate(keys, "n1", role="agent")
    generate(keys, "client", role="operator")


def test_agent_without_keys_refused_when_curve_required(farm: Farm, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    farm.start_controller("--curve", "--keys-dir", str(keys))
    stranger = farm.start_agent("stranger", "--register-timeout-s", "2")
    _, err = stranger.communicate(timeout=15)
    assert stranger.returncode == 1
    assert "CURVE" in err and "--keys-dir" in err
    farm.start_agent("n1", "--keys-dir", str(keys))
    with FarmClient(farm.address, timeout_s=5, keys_dir=keys, key_name="client") as client:
        deadline_nodes: list[str] = []
        for _ in range(100):
            deadline_nodes = [n["id"] for n in client.request("nodes")["nodes"]]
            if deadline_nodes:
                break
            time.sleep(0.1)
        assert deadline_nodes == ["n1"]
    with FarmClient(farm.address, timeout_s=1) as plain, pytest.raises(ControllerUnavailable):
        plain.request("nodes")


def test_controller_off_loopback_needs_keys(tmp_path: Path) -> None:
    cfg = ControllerConfig(bind="tcp://0.0.0.0:0")
    with pytest.raises(ValueError, match="CURVE keys are required"):
        Controller(tmp_path / "f.sqlite", cfg)
