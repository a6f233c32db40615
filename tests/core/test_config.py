from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stagectl.config import ConfigError, StageConfig, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_loads() -> None:
    cfg = load_config(REPO / "configs/sim-stage.toml")
    assert cfg.stage.name == "sim-stage"
    assert cfg.stage.timezone == "Asia/Shanghai"
    (led,) = [d for d in cfg.devices if d.kind == "led"]
    assert (led.name, led.kind, led.driver, led.address) == ("led-main", "led", "osc",
                                                            "127.0.0.1:9000")
    assert [s.listen for s in cfg.simulators if s.kind == "led"] == [led.address]
    (arm,) = [d for d in cfg.devices if d.kind == "arm"]
    assert [s.command for s in cfg.simulators if s.kind == "arm"] == [arm.command]
    assert cfg.cues.file and (REPO / cfg.cues.file).exists()
    assert not cfg.engine.needs_curve


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stage.toml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
[stage]
name = "s"
[[devices]]
name = "led-main"
kind = "led"
driver = "osc"
address = "127.0.0.1:9000"
"""


@pytest.mark.parametrize("edit,path_part,value_part,expected_part", [
    (("127.0.0.1:9000", "127.0.0.1:nine"), "devices[0].address", "'127.0.0.1:nine'",
     "host:port"),
    (('kind = "led"', 'kind = "laser"'), "devices[0].kind", "'laser'", "'led'"),
    (('driver = "osc"', 'driver = "artnet"'), "devices[0].driver", "'artnet'", "osc"),
    (('name = "s"', 'name = "s"\nframe_rate = 26'), "stage.frame_rate", "26", "25"),
    (('name = "s"', 'name = "s"\ntimezone = "Mars/Olympus"'), "stage.timezone",
     "'Mars/Olympus'", "Asia/Shanghai"),
    (('name = "s"', 'name = "s"\nbrightness = 1'), "stage.brightness", "", "unknown key"),
    (('address = "127.0.0.1:9000"', 'address = "127.0.0.1:9000"\nmax_brightness_nits = -5'),
     "devices[0].max_brightness_nits", "-5", "greater than 0"),
])
def test_bad_config_names_file_path_value_expected(tmp_path: Path, edit: tuple[str, str],
                                                   path_part: str, value_part: str,
                                                   expected_part: str) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert path_part in message
    assert value_part in message
    assert expected_part in message


def test_missing_section_and_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stage: missing"):
        load_config(write(tmp_path, "[[devices]]\nname='a'\nkind='led'\naddress='1.2.3.4:5'\n"))
    with pytest.raises(ConfigError, match="TOML syntax error.*line 2"):
        load_config(write(tmp_path, "[stage]\nname = \n"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_duplicate_device_names(tmp_path: Path) -> None:
    text = GOOD + GOOD.split("[stage]\nname = \"s\"")[1]
    with pytest.raises(ConfigError, match="used twice"):
        load_config(write(tmp_path, text))


def test_non_loopback_needs_curve() -> None:
    cfg = parse_config({"stage": {"name": "s"},
                        "engine": {"command": "tcp://10.1.2.3:5560"}})
    assert cfg.engine.needs_curve
    cfg = parse_config({"stage": {"name": "s"}, "engine": {"command": "tcp://[::1]:5560",
                                                           "state": "ipc:///tmp/x"}})
    assert not cfg.engine.needs_curve


toml_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False,
                                                                allow_infinity=False),
                         st.text(max_size=20), st.booleans())
toml_tables = st.recursive(
    st.dictionaries(st.sampled_from(["name", "kind", "driver", "address", "listen", "site",
                                     "timezone", "frame_rate", "panels", "command", "state",
                                     "enabled", "broker", "curve"]), toml_scalars, max_size=5),
    lambda inner: st.dictionaries(st.sampled_from(["stage", "engine", "mqtt", "x"]), inner,
                                  max_size=3),
    max_leaves=10)


@settings(max_examples=200, deadline=None)
@given(toml_tables, st.lists(st.dictionaries(st.sampled_from(
    ["name", "kind", "driver", "address", "listen", "max_brightness_nits"]), toml_scalars,
    max_size=6), max_size=3))
def test_loader_fuzz_only_config_errors(data: dict, devices: list) -> None:
    document = dict(data)
    document["devices"] = devices
    try:
        cfg = parse_config(document, "fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        assert exc.problems
        return
    assert isinstance(cfg, StageConfig)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_loader_fuzz_raw_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "stage.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass
