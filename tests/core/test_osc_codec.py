import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.osc import OscDecodeError, OscEncodeError, decode_packet, encode_message


def test_known_vector_float() -> None:
    # "/led/brightness" padded to 16, ",f" padded to 4, big-endian float32 800.0
    expected = b"/led/brightness\x00" + b",f\x00\x00" + struct.pack(">f", 800.0)
    assert encode_message("/led/brightness", (("f", 800),)) == expected


def test_known_vector_int_and_string() -> None:
    data = encode_message("/led/test_pattern", (("s", "grid"),))
    assert data == b"/led/test_pattern\x00\x00\x00" + b",s\x00\x00" + b"grid\x00\x00\x00\x00"
    msg = decode_packet(encode_message("/led/colour_temperature", (("i", 5600),)))[0]
    assert msg.address == "/led/colour_temperature" and msg.args == (5600,)
    assert isinstance(msg.args[0], int)


def test_round_trip_many_args() -> None:
    data = encode_message("/x/y", (("i", -3), ("f", 1.5), ("s", "二"), ("i", 2**31 - 1)))
    (msg,) = decode_packet(data)
    assert msg.args == (-3, 1.5, "二", 2**31 - 1)


@pytest.mark.parametrize("address,args", [
    ("no-slash", ()),
    ("/a", (("i", 1.5),)),
    ("/a", (("i", 2**31),)),
    ("/a", (("f", "x"),)),
    ("/a", (("s", 3),)),
])
def test_encode_rejects(address: str, args: tuple[tuple[str, Any], ...]) -> None:
    with pytest.raises(OscEncodeError):
        encode_message(address, args)


@pytest.mark.parametrize("dgram", [b"", b"abc", b"#bundle\x00\x00\x00", b"/a\x00\x00,q\x00\x00"])
def test_decode_rejects_malformed(dgram: bytes) -> None:
    with pytest.raises(OscDecodeError):
        decode_packet(dgram)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_decode_any_bytes_never_escapes(data: bytes) -> None:
    try:
        messages = decode_packet(data)
    except OscDecodeError:
        return
    for msg in messages:
        assert msg.address.startswith("/")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7e,
                                      exclude_characters="#,"), min_size=1, max_size=30),
       st.lists(st.one_of(st.integers(-(2**31), 2**31 - 1).map(lambda v: ("i", v)),
                          st.text(max_size=20).filter(lambda s: "\x00" not in s)
                          .map(lambda v: ("s", v))), max_size=5))
def test_round_trip_property(path: str, args: list[tuple[str, Any]]) -> None:
    address = "/" + path
    (msg,) = decode_packet(encode_message(address, tuple(args)))
    assert msg.address == address
    assert msg.args == tuple(v for _, v in args)


def _s(text: str) -> bytes:
    raw = text.encode() + b"\x00"
    return raw + b"\x00" * (-len(raw) % 4)


def test_decode_keeps_type_tags_as_received() -> None:
    # Built from the OSC 1.0 layout: address, ",tags", big-endian arguments, 4-byte padding.
    data = (_s("/x") + _s(",ifsSTFhdb") + struct.pack(">i", -7) + struct.pack(">f", 0.5)
            + _s("ab") + _s("sym") + struct.pack(">q", 2**40) + struct.pack(">d", 0.25)
            + struct.pack(">i", 3) + b"xyz\x00")
    (msg,) = decode_packet(data)
    assert msg.tags == "ifsSTFhdb"
    assert msg.args == (-7, 0.5, "ab", "sym", True, False, 2**40, 0.25, b"xyz")


def test_message_without_type_tag_string_is_tolerated() -> None:
    # OSC 1.0: be robust to old senders that omit the type tag string.
    (msg,) = decode_packet(_s("/led/dump"))
    assert msg.args == () and msg.tags == ""


def test_type_tags_derived_for_messages_built_in_code() -> None:
    from drivers.osc import OscMessage

    assert OscMessage("/a", (1, 1.0, "s", True)).type_tags == "ifsT"
    assert OscMessage("/a", (1.0,), "i").type_tags == "i"  # as received wins


@pytest.mark.parametrize("tag", ["N", "I", "[", "x"])
def test_unsupported_tags_refused_naming_the_address(tag: str) -> None:
    with pytest.raises(OscDecodeError, match="unsupported") as info:
        decode_packet(_s("/led/gamma") + _s("," + tag))
    assert info.value.address == "/led/gamma"
