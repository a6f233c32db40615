import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.led import protocol as p
from drivers.led.driver import OscLedProcessor
from drivers.osc import OscMessage, decode_packet


@pytest.mark.parametrize("key,value,normalised", [
    ("brightness_nits", 1200, 1200.0),
    ("brightness_nits", 0, 0.0),
    ("colour_temperature_k", 2000, 2000),
    ("colour_temperature_k", 11000.0, 11000),
    ("gamma", 2.2, 2.2),
    ("blackout", "on", True),
    ("freeze", 0, False),
    ("test_pattern", "grid", "grid"),
    ("output_frame_rate_hz", 59.94, 59.94),
    ("output_frame_rate_hz", 23.98, 23.976),
    ("genlock_phase_deg", -360, -360.0),
    ("genlock_source", "sdi", "sdi"),
])
def test_valid_values(key: str, value: object, normalised: object) -> None:
    assert p.PARAMS[key].validate(value) == normalised


@pytest.mark.parametrize("key,value,expected_fragment", [
    ("brightness_nits", -1, "0..10000 nits"),
    ("brightness_nits", math.nan, "nits"),
    ("brightness_nits", "bright", "a number"),
    ("colour_temperature_k", 1999, "2000..11000 K"),
    ("colour_temperature_k", 11001, "2000..11000 K"),
    ("colour_temperature_k", 5600.5, "integer"),
    ("gamma", 0.5, "1..4"),
    ("blackout", 2, "0/1"),
    ("test_pattern", "plaid", "one of off"),
    ("output_frame_rate_hz", 26, "one of"),
    ("genlock_phase_deg", 361, "-360..360 deg"),
    ("genlock_source", "gps", "internal"),
])
def test_invalid_values_name_param_value_and_range(key: str, value: object,
                                                   expected_fragment: str) -> None:
    with pytest.raises(p.ValidationError) as info:
        p.PARAMS[key].validate(value, "led-main")
    text = str(info.value)
    assert text.startswith(f"led-main: setting {key} to {value!r}")
    assert expected_fragment in text


def test_driver_refuses_above_wall_maximum_before_sending() -> None:
    dev = OscLedProcessor("led-main", ("127.0.0.1", 9), max_brightness_nits=1500)
    with pytest.raises(p.ValidationError, match="wall's maximum"):
        dev.validate("brightness_nits", 1600)
    assert dev.counters["commands_sent"] == 0
    assert dev._transport.counters.sent == 0


def test_presets() -> None:
    assert p.validate_preset(128) == 128
    for bad in (0, 129, "3", 1.5):
        with pytest.raises(p.ValidationError):
            p.validate_preset(bad)


def test_contract_addresses() -> None:
    # These addresses are contracts other tools (Companion, oscsend scripts) rely on.
    assert p.PARAMS["brightness_nits"].address == "/led/brightness"
    assert p.PARAMS["brightness_nits"].tag == "f"
    assert p.PARAMS["colour_temperature_k"].address == "/led/colour_temperature"
    assert p.PARAMS["colour_temperature_k"].tag == "i"
    assert p.PARAMS["blackout"].address == "/led/blackout"
    assert p.PARAMS["freeze"].address == "/led/freeze"
    assert p.PARAMS["test_pattern"].address == "/led/test_pattern"
    assert p.PRESET_RECALL == "/led/preset/recall"


def test_encode_uses_declared_type_tag() -> None:
    (msg,) = decode_packet(p.PARAMS["colour_temperature_k"].encode(5600))
    assert msg.args == (5600,) and isinstance(msg.args[0], int)
    (msg,) = decode_packet(p.PARAMS["blackout"].encode(True))
    assert msg.args == (1,)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(p.BY_ADDRESS)),
       st.lists(st.one_of(st.integers(-(2**31), 2**31 - 1), st.floats(allow_nan=True),
                          st.text(max_size=10), st.booleans()), max_size=3))
def test_coerce_wire_only_raises_validation_error(address: str, args: list[Any]) -> None:
    param = p.BY_ADDRESS[address]
    try:
        value = p.coerce_wire(param, OscMessage(address, tuple(args)))
    except p.ValidationError:
        return
    assert param.validate(value) == value


@pytest.mark.parametrize("key,tags,args,expected", [
    ("brightness_nits", "f", (800.0,), 800.0),
    ("brightness_nits", "i", (800,), 800.0),  # i for f: tolerated
    ("colour_temperature_k", "i", (3200,), 3200),
    ("blackout", "T", (True,), True),
    ("freeze", "F", (False,), False),
    ("blackout", "i", (1,), True),
    ("test_pattern", "S", ("grid",), "grid"),  # symbol for string
])
def test_wire_type_tags_accepted(key: str, tags: str, args: tuple[Any, ...],
                                 expected: object) -> None:
    param = p.PARAMS[key]
    assert p.coerce_wire(param, OscMessage(param.address, args, tags)) == expected


@pytest.mark.parametrize("key,tags,args", [
    ("colour_temperature_k", "f", (5600.0,)),  # f for i: refused, never rounded
    ("blackout", "f", (1.0,)),
    ("brightness_nits", "d", (800.0,)),
    ("brightness_nits", "s", ("800",)),
    ("test_pattern", "i", (1,)),
    ("gamma", "ff", (2.2, 2.2)),
])
def test_wire_type_tags_refused(key: str, tags: str, args: tuple[Any, ...]) -> None:
    param = p.PARAMS[key]
    with pytest.raises(p.WireTypeError, match="OSC type|exactly one"):
        p.coerce_wire(param, OscMessage(param.address, args, tags))


def test_wire_preset_and_ttl() -> None:
    assert p.coerce_wire_preset(OscMessage(p.PRESET_RECALL, (2,), "i")) == 2
    with pytest.raises(p.WireTypeError, match="got 'f'"):
        p.coerce_wire_preset(OscMessage(p.PRESET_RECALL, (2.0,), "f"))
    with pytest.raises(p.ValidationError, match="1..128"):
        p.coerce_wire_preset(OscMessage(p.PRESET_RECALL, (500,), "i"))
    assert p.coerce_wire_ttl(OscMessage(p.SUBSCRIBE, (), ""), 5.0) == 5.0
    assert p.coerce_wire_ttl(OscMessage(p.SUBSCRIBE, (10,), "i")) == 10.0
    for args, tags in (((0.0,), "f"), ((60.5,), "f"), ((math.inf,), "f"), (("x",), "s"),
                       ((1.0, 2.0), "ff")):
        with pytest.raises(p.ValidationError):
            p.coerce_wire_ttl(OscMessage(p.SUBSCRIBE, args, tags))
