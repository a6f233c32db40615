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
from stagectl.harness import StageHarness, free_port
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


def vendor_stage_toml(tmp_path: Path) -> Path:
    """The OSC stage plus a Tessera, a HELIOS and a NovaStar processor, each simulated."""
    path = stage_toml(tmp_path, name="cli-vendor-stage")
    text = path.read_text(encoding="utf-8")
    for protocol, extra in (("tessera", "groups = 3\n"), ("helios", ""), ("novastar", "")):
        port = free_port()
        text += f"""
[[devices]]
name = "led-{protocol}"
kind = "led"
driver = "{protocol}"
address = "127.0.0.1:{port}"
max_brightness_nits = 1500

[[simulators]]
name = "led-{protocol}-sim"
kind = "led"
protocol = "{protocol}"
listen = "127.0.0.1:{port}"
max_brightness_nits = 1500
{extra}"""
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def vendor_stage(tmp_path: Path) -> Iterator[tuple[Path, StageHarness]]:
    path = vendor_stage_toml(tmp_path)
    harness = StageHarness(load_config(path)).start(wait_online_s=8)
    try:
        yield path, harness
    finally:
        harness.stop()


def vendor_wall(harness: StageHarness, device: str) -> dict[str, object]:
    assert harness.sims is not None
    sim = next(s for s in harness.sims.simulators if s.name == f"{device}-sim")
    values: dict[str, object] = sim.wall.values  # type: ignore[attr-defined]
    return values


def wait_wall(harness: StageHarness, device: str, key: str, value: object,
              within: float = 0.0) -> None:
    """Until the simulated wall shows ``value`` (a number within ``within``)."""
    def shows() -> bool:
        now = vendor_wall(harness, device).get(key)
        if within and isinstance(now, (int, float)) and isinstance(value, (int, float)):
            return abs(float(now) - float(value)) <= within
        return bool(now == value)

    deadline = time.monotonic() + 5
    while not shows():
        assert time.monotonic() < deadline, (key, vendor_wall(harness, device).get(key))
        time.sleep(0.05)


def test_led_drives_vendor_walls_the_same_way(
        vendor_stage: tuple[Path, StageHarness]) -> None:
    config, harness = vendor_stage
    cfg = ("--config", str(config))
    done = run("led", "input", "sdi:2", "--device", "led-tessera", *cfg)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "led-tessera: input = sdi:2"
    wait_wall(harness, "led-tessera", "input", "sdi:2")
    assert run("led", "group", "2", "800", "--device", "led-tessera", *cfg).returncode == 0
    wait_wall(harness, "led-tessera", "group_brightness.2", 800.0)
    assert run("led", "set", "group_brightness.3", "700", "--device", "led-tessera",
               *cfg).returncode == 0
    wait_wall(harness, "led-tessera", "group_brightness.3", 700.0)
    # an input named with a space, in the processor's own words, stays one text
    listed = run("led", "input", "HDMI 2.0", "--device", "led-novastar", *cfg)
    assert listed.returncode == 0, listed.stderr
    wait_wall(harness, "led-novastar", "input", "HDMI 2.0")
    for device in ("led-tessera", "led-helios", "led-novastar"):
        assert run("led", "set", "brightness", "640", "--device", device, *cfg).returncode == 0
        # HELIOS and NovaStar are written in percent of the wall's maximum: within 1.5 nits
        wait_wall(harness, device, "brightness_nits", 640.0, within=1.5)
    assert run("led", "set", "brightness", "640", *cfg).returncode == 0  # led-main (OSC)
    # NovaStar without configured cabinet groups has none: refused as unsupported
    refused = run("led", "group", "1", "500", "--device", "led-novastar", *cfg)
    assert refused.returncode == 1
    assert "group_brightness is not supported by NovaStar COEX" in refused.stderr
    assert "NovaStar COEX cannot do group_brightness: nothing was sent" in refused.stderr


def test_status_names_each_vendor_and_what_it_lacks(
        vendor_stage: tuple[Path, StageHarness]) -> None:
    config, _ = vendor_stage
    data = json.loads(run("status", "--json", "--config", str(config)).stdout)
    caps = {d["name"]: d["capabilities"] for d in data["devices"]}
    table = run("status", "--config", str(config))
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "vendor: Brompton Tessera (tessera)" in out
    assert "vendor: NovaStar COEX (novastar)" in out
    assert "processor: model" in out  # the identity the vendor processors report
    assert "vendor: Megapixel HELIOS (helios)" in out
    for name in ("led-tessera", "led-helios", "led-novastar", "led-main"):
        line = "unsupported: " + ", ".join(caps[name]["unsupported"])
        assert line in " ".join(out.split()), name  # (rich may wrap a long line)
    assert "group_brightness" in caps["led-novastar"]["unsupported"]
    assert "group_brightness" not in caps["led-tessera"]["unsupported"]
