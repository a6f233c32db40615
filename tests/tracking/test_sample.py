from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.tracking import freed, rotation
from drivers.tracking.freed import FreeDPacket
from drivers.tracking.sample import (
    FreeDAxisMap,
    SampleFormatError,
    compose_transforms,
    freed_to_stage,
    sample_from_freed,
    sample_from_opentrackio,
    stage_to_freed_angles,
    stage_to_freed_position_mm,
)


def test_freed_to_stage_default_mapping() -> None:
    pkt = FreeDPacket(
        2,
        pan_deg=30.0,
        tilt_deg=-5.0,
        roll_deg=1.5,
        x_mm=1200.0,
        y_mm=-3400.0,
        z_mm=1650.0,
        zoom=100,
        focus=200,
    )
    pos, rot = freed_to_stage(pkt)
    assert pos == pytest.approx((1.2, -3.4, 1.65))
    # FreeD pans right-positive, the stage frame (right-handed about Z up) left-positive
    assert rot == (-30.0, -5.0, 1.5)


def test_mapped_direction_matches_freed_definition() -> None:
    # FreeD: pan +90 = camera turned right (clockwise from above) = looking along +X.
    _, rot = freed_to_stage(FreeDPacket(1, 90.0, 0, 0, 0, 0, 0, 0, 0))
    forward = rotation.euler_zxy_to_matrix(rot) @ np.array([0.0, 1.0, 0.0])
    assert forward == pytest.approx([1.0, 0.0, 0.0], abs=1e-12)
    # FreeD: tilt +30 = looking up.
    _, rot = freed_to_stage(FreeDPacket(1, 0, 30.0, 0, 0, 0, 0, 0, 0))
    forward = rotation.euler_zxy_to_matrix(rot) @ np.array([0.0, 1.0, 0.0])
    assert forward[2] == pytest.approx(0.5)
    # FreeD: roll +10 = clockwise seen from behind: the camera's up vector leans to +X.
    _, rot = freed_to_stage(FreeDPacket(1, 0, 0, 10.0, 0, 0, 0, 0, 0))
    up = rotation.euler_zxy_to_matrix(rot) @ np.array([0.0, 0.0, 1.0])
    assert up[0] > 0.1


@given(
    st.floats(-179, 179),
    st.floats(-89, 89),
    st.floats(-179, 179),
    st.floats(-1e5, 1e5),
    st.floats(-1e5, 1e5),
    st.floats(-1e5, 1e5),
)
def test_custom_axis_map_inverts(pan, tilt, roll, x, y, z) -> None:
    amap = FreeDAxisMap(
        position_axes=(1, 0, 2), position_signs=(-1.0, 1.0, 1.0), pan_sign=1.0, pan_offset_deg=90.0
    )
    pkt = FreeDPacket(1, pan, tilt, roll, x, y, z, 0, 0)
    pos, rot = freed_to_stage(pkt, amap)
    assert pos[0] == pytest.approx(-y / 1000) and pos[1] == pytest.approx(x / 1000)
    assert stage_to_freed_angles(rot, amap) == pytest.approx((pan, tilt, roll))
    assert stage_to_freed_position_mm(pos, amap) == pytest.approx((x, y, z))


def test_axis_map_validation() -> None:
    with pytest.raises(ValueError, match="permutation"):
        FreeDAxisMap(position_axes=(0, 0, 2))
    with pytest.raises(ValueError, match="signs"):
        FreeDAxisMap(pan_sign=2.0)


def test_sample_from_freed_zcam() -> None:
    pkt = FreeDPacket(4, 10, 0, 0, 1000, 2000, 3000, zoom=5000, focus=12000, spare=0x30FE)
    s = sample_from_freed(pkt, source="cam-b", arrival_s=12.5, freed_profile=freed.profile("zcam"))
    assert (s.protocol, s.source, s.camera_id, s.sequence) == ("freed", "cam-b", 4, 0xFE)
    assert s.focal_length_mm == 50.0 and s.focus_distance_m == 1.2 and s.zoom_raw == 5000
    assert s.position_m == (1.0, 2.0, 3.0) and s.arrival_s == 12.5


def test_compose_transforms_chain() -> None:
    # A dolly at (1, 0, 0) panned 90 degrees left; a camera 2 m forward on its arm.
    tfs = [
        {
            "translation": {"x": 1.0, "y": 0.0, "z": 0.0},
            "rotation": {"pan": 90.0, "tilt": 0.0, "roll": 0.0},
        },
        {
            "translation": {"x": 0.0, "y": 2.0, "z": 0.5},
            "rotation": {"pan": 0.0, "tilt": 10.0, "roll": 0.0},
        },
    ]
    pos, rot = compose_transforms(tfs)
    assert pos == pytest.approx((-1.0, 0.0, 0.5))  # +Y of a left-panned dolly is -X
    assert rot == pytest.approx((90.0, 10.0, 0.0))


def test_compose_transforms_single_and_any_mapping() -> None:
    # one transform: the sender's values as they are (ints become floats); any Mapping
    # works, not only the dicts the decoders make
    tf = {"translation": MappingProxyType({"x": 1, "y": 2.5, "z": 0}),
          "rotation": {"pan": 10.0, "tilt": -5, "roll": 0.25}}
    pos, rot = compose_transforms([MappingProxyType(tf)])
    assert pos == (1.0, 2.5, 0.0) and rot == (10.0, -5.0, 0.25)
    assert all(type(v) is float for v in (*pos, *rot))


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        [1],
        [{"translation": {}}],
        [{"translation": {"x": "a"}, "rotation": {}}],
        [{"translation": {"x": True}, "rotation": {}}],
        [{"translation": {"x": float("nan")}, "rotation": {}}],
        [{"translation": {}, "rotation": {"pan": float("inf")}}],
        [{"translation": {}, "rotation": {}}, {"translation": {"z": None}, "rotation": {}}],
    ],
)
def test_compose_transforms_rejects(bad: object) -> None:
    with pytest.raises(SampleFormatError):
        compose_transforms(bad)


@given(st.lists(st.floats(-720, 720), min_size=3, max_size=3))
def test_rotation_round_trip(e: list[float]) -> None:
    m = rotation.euler_zxy_to_matrix(e)
    back = rotation.matrix_to_euler_zxy(m)
    assert np.allclose(rotation.euler_zxy_to_matrix(back), m, atol=1e-9)
    q = rotation.euler_zxy_to_quaternion(e)
    assert np.allclose(rotation.quaternion_to_matrix(q), m, atol=1e-9)


def test_sample_from_opentrackio_optional_fields_by_type() -> None:
    tf = [{"translation": {"x": 1.0}, "rotation": {"pan": 2.0}}]
    doc = {
        "transforms": tf,
        "sourceNumber": True,  # a bool is not a number here
        "lens": {
            "rawEncoders": {"zoom": 7, "focus": 1.5},  # focus not an integer
            "encoders": {"zoom": 1, "focus": "x"},
            "pinholeFocalLength": False,
            "focusDistance": 3,
        },
        "timing": {"sequenceNumber": 9, "timecode": {"hours": 1, "minutes": 2, "seconds": 3,
                                                     "frames": 4, "dropFrame": True}},
    }
    s = sample_from_opentrackio(doc, source="cam", arrival_s=5.0)
    assert (s.zoom_raw, s.focus_raw, s.zoom_norm, s.focus_norm) == (7, None, 1.0, None)
    assert type(s.zoom_norm) is float
    assert (s.focal_length_mm, s.focus_distance_m, s.camera_id) == (None, 3.0, None)
    assert (s.sequence, s.timecode) == (9, "01:02:03;04")
    bare = sample_from_opentrackio({"transforms": tf, "lens": 5, "timing": [1]},
                                   source="cam", arrival_s=5.0)
    assert (bare.zoom_raw, bare.focal_length_mm, bare.sequence, bare.timecode) == (
        None, None, None, None)
