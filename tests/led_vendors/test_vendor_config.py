"""Config keys of the vendor LED drivers and simulators, and how the engine reads credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.led.http import read_credentials
from stagectl.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def stage(device: str, simulator: str = "") -> dict[str, object]:
    import tomllib

    return tomllib.loads(f"""
[stage]
name = "s"
[[devices]]
name = "wall"
kind = "led"
{device}
{simulator}
""")


def test_vendor_stage_loads_with_one_wall_per_driver() -> None:
    cfg = load_config(REPO / "configs/sim-stage-vendors.toml")
    leds = {d.name: d for d in cfg.devices if d.kind == "led"}
    assert {d.driver for d in leds.values()} == {"osc", "tessera", "helios", "novastar"}
    sims = {s.listen: s for s in cfg.simulators if s.kind == "led"}
    for device in leds.values():
        assert sims[device.address].protocol == device.driver  # each wall has its simulator
    helios = leds["led-helios"]
    assert helios.credentials_file and helios.credentials_env is None
    secret = (REPO / helios.credentials_file).read_text().strip().partition(":")[2]
    assert secret and secret not in (REPO / "configs/sim-stage-vendors.toml").read_text()


@pytest.mark.parametrize("device,expected", [
    ('driver = "tessera"\naddress = "127.0.0.1:80"\npoll_interval_s = 0.5',
     "faster than the tessera API allows (at least 1 s)"),
    ('driver = "helios"\naddress = "127.0.0.1:80"\npoll_interval_s = 0.2',
     "at least 0.5 s"),
    ('driver = "tessera"\naddress = "127.0.0.1:80"\nscreens = ["a"]',
     "screens is a novastar setting; this device's driver is 'tessera'"),
    ('driver = "osc"\naddress = "127.0.0.1:9000"\nwebsocket = false',
     "websocket is a helios setting"),
    ('driver = "osc"\naddress = "127.0.0.1:9000"\ncredentials_env = "X"',
     "credentials are for the vendor HTTP drivers"),
    ('driver = "helios"\naddress = "127.0.0.1:80"\ncredentials_env = "X"\n'
     'credentials_file = "f"', "not both"),
    ('driver = "helios"\naddress = "127.0.0.1:80"\npassword = "hunter2"', "unknown key"),
    ('driver = "helios"\naddress = "127.0.0.1:80"\ncredentials_env = "1BAD"', "pattern"),
    ('driver = "artnet"\naddress = "127.0.0.1:80"', "novastar"),
])
def test_bad_vendor_keys_are_refused_with_the_reason(device: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(stage(device))
    assert expected in str(err.value)


def test_link_timeout_defaults_per_driver() -> None:
    osc = parse_config(stage('driver = "osc"\naddress = "127.0.0.1:9000"')).devices[0]
    tessera = parse_config(stage('driver = "tessera"\naddress = "127.0.0.1:80"\n'
                                 'poll_interval_s = 2')).devices[0]
    helios = parse_config(stage('driver = "helios"\naddress = "127.0.0.1:80"')).devices[0]
    assert osc.link_timeout_s == 1.5  # type: ignore[union-attr]
    assert tessera.link_timeout_s == 6.0  # type: ignore[union-attr]  (three polls)
    assert helios.link_timeout_s == 3.0  # type: ignore[union-attr]


def test_simulator_protocols_and_their_keys() -> None:
    cfg = parse_config(stage('driver = "novastar"\naddress = "127.0.0.1:8001"', """
[[simulators]]
name = "sim"
kind = "led"
protocol = "novastar"
listen = "127.0.0.1:8001"
groups = 2
"""))
    assert cfg.simulators[0].protocol == "novastar"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="not osc"):
        parse_config(stage('driver = "osc"\naddress = "127.0.0.1:9000"', """
[[simulators]]
name = "sim"
kind = "led"
listen = "127.0.0.1:9000"
credentials_env = "X"
"""))


def test_credentials_from_a_file_or_a_variable(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "creds"
    path.write_text("operator:s3cret:with:colons\nignored second line\n")
    assert read_credentials(str(path), None) == ("operator", "s3cret:with:colons")
    monkeypatch.setenv("HELIOS_CREDS", "admin:pa ss")
    assert read_credentials(None, "HELIOS_CREDS") == ("admin", "pa ss")
    assert read_credentials(None, None) is None


@pytest.mark.parametrize("content", ["", "no-colon-here", ":password-without-user"])
def test_bad_credentials_name_the_source_never_the_secret(tmp_path: Path, content: str) -> None:
    path = tmp_path / "creds"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        read_credentials(str(path), None)
    assert str(path) in str(err.value) and "user:password" in str(err.value)
    if content:
        assert content not in str(err.value)


def test_missing_credentials_file_and_variable(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="credentials file .*missing"):
        read_credentials(str(tmp_path / "missing"), None)
    monkeypatch.delenv("NO_SUCH_CREDS_VAR", raising=False)
    with pytest.raises(ValueError, match="environment variable NO_SUCH_CREDS_VAR"):
        read_credentials(None, "NO_SUCH_CREDS_VAR")
