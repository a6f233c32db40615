"""`stagectl led` and `stagectl status` with processor capabilities: real engine, real CLI.

The engine and the OSC simulator run in-process (:class:`stagectl.harness.StageHarness`, real
loopback sockets) from the same TOML file the CLI reads; every command is the ``stagectl``
console script run as a child process, as an operator runs it. The OSC driver declares
``input`` and ``group_brightness`` unsupported, so those commands must be refused as
*unsupported* (exit 1, nothing sent) and ``status`` must say so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagectl.cli.main import LED_FAULTS
from stagectl.config import load_config
from stagectl.harness import StageHarness
from tests.core.test_cli import run, stage_toml

OSC_INPUT_WHY = "the stagectl LED OSC address space has no input selection"


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[tuple[Path, StageHarness]]:
    path = stage_toml(tmp_path, name="cli-led-stage")
    harness = StageHarness(load_config(path)).start()
    try:
        yield path, harness
    finally:
        harness.stop()


def sim_values(harness: StageHarness) -> dict[str, object]:
    assert harness.sims is not None
    values: dict[str, object] = harness.sims.simulators[0].values  # type: ignore[attr-defined]
    return values


def test_led_input_on_osc_is_refused_as_unsupported(
        stage: tuple[Path, StageHarness]) -> None:
    config, harness = stage
    before = dict(sim_values(harness))
    refused = run("led", "input", "sdi:1", "--config", str(config))
    assert refused.returncode == 1, refused.stderr
    assert refused.stdout == ""
    first, second = refused.stderr.strip().splitlines()[:2]
    assert first == (f"error: led-main: input is not supported by stagectl OSC: {OSC_INPUT_WHY} "
                     "[unsupported]")
    assert second.startswith("stagectl OSC cannot do input: nothing was sent")
    assert "not faulty" in refused.stderr
    # same refusal through `led set`, and the same exit code as any other refusal
    via_set = run("led", "set", "input", "hdmi1", "--config", str(config))
    assert via_set.returncode == 1 and "[unsupported]" in via_set.stderr
    by_role = run("led", "set", "brightness", "500", "--role", "viewer", "--config",
                  str(config))
    assert by_role.returncode == via_set.returncode
    assert sim_values(harness) == before  # nothing reached the processor


def test_led_group_on_osc_is_refused_as_unsupported(stage: tuple[Path, StageHarness]) -> None:
    config, _ = stage
    for args in (("led", "group", "2", "800"), ("led", "set", "group_brightness.2", "800")):
        refused = run(*args, "--config", str(config))
        assert refused.returncode == 1, (args, refused.stderr)
        assert "group_brightness is not supported by stagectl OSC" in refused.stderr
        assert "stagectl OSC cannot do group_brightness: nothing was sent" in refused.stderr
    no_group = run("led", "set", "group_brightness.", "800", "--config", str(config))
    assert no_group.returncode == 2 and "needs a group" in no_group.stderr
    unknown = run("led", "set", "sparkle", "1", "--config", str(config))
    assert unknown.returncode == 2 and "group_brightness.<group>" in unknown.stderr


def test_status_lists_vendor_and_unsupported_features(stage: tuple[Path, StageHarness]) -> None:
    config, _ = stage
    table = run("status", "--config", str(config))
    assert table.returncode == 0, table.stderr
    assert "vendor: stagectl OSC (osc)" in table.stdout
    assert "unsupported: input, group_brightness" in table.stdout
    assert "brightness_nits=" in table.stdout  # the state line is still there
    data = json.loads(run("status", "--json", "--config", str(config)).stdout)
    (dev,) = data["devices"]
    # the shape is the old one plus the new key
    assert set(dev) == {"name", "kind", "health", "health_reason", "state", "desired",
                        "capabilities"}
    caps = dev["capabilities"]
    assert (caps["protocol"], caps["vendor"]) == ("osc", "stagectl OSC")
    assert caps["unsupported"] == {
        "input": OSC_INPUT_WHY,
        "group_brightness": "the stagectl LED OSC address space has no groups"}
    assert "brightness_nits" in caps["supported"] and "input" not in caps["supported"]
    assert "colour_bars" in caps["test_patterns"]


def test_text_values_stay_text(stage: tuple[Path, StageHarness]) -> None:
    """`off` is a test pattern's name, not the flag false."""
    config, harness = stage
    assert run("led", "pattern", "grid", "--config", str(config)).returncode == 0
    done = run("led", "set", "test_pattern", "off", "--json", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["value"] == "off"
    deadline = time.monotonic() + 3
    while sim_values(harness)["test_pattern"] != "off":
        assert time.monotonic() < deadline, sim_values(harness)
        time.sleep(0.05)


def test_led_fault_takes_any_name_and_the_simulator_decides(
        stage: tuple[Path, StageHarness]) -> None:
    config, harness = stage
    done = run("led", "fault", "panels_offline", "7", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "led-main: fault panels_offline = 7"
    assert harness.engine is not None
    wall = harness.engine.devices["led-main"]
    deadline = time.monotonic() + 3
    while wall.reported.get("panels_online") != 233:  # the simulator dropped 7 of 240
        assert time.monotonic() < deadline, wall.reported
        time.sleep(0.05)
    # a vendor simulator's fault name reaches the device, which refuses what it lacks
    unknown = run("led", "fault", "ip_control_disabled", "1", "--config", str(config))
    assert unknown.returncode == 2, unknown.stderr
    assert "has no fault 'ip_control_disabled'" in unknown.stderr
    bad = run("led", "fault", "Not A Name!", "1", "--config", str(config))
    assert bad.returncode == 2 and "fault must be a fault name" in bad.stderr
    helped = run("led", "fault", "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    for names in LED_FAULTS.values():
        for name in names:
            assert name in text, name


def test_help_names_the_new_commands() -> None:
    helped = run("led", "--help")
    assert helped.returncode == 0
    assert "input" in helped.stdout and "group" in helped.stdout
    set_help = " ".join(run("led", "set", "--help").stdout.split())
    assert "group_brightness.<group>" in set_help and "input" in set_help
