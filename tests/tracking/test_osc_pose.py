from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from drivers.tracking import osc_pose
from drivers.tracking.osc_pose import OscPose


def test_wire_format() -> None:
    dgram = osc_pose.encode(OscPose("cam-a", 1.0, 2.0, 3.0, 10.0, -5.0, 0.5))
    msg = OscMessage(dgram)
    assert msg.address == "/tracking/cam-a/pose"
    assert dgram[len("/tracking/cam-a/pose") + 4 :].startswith(b",ffffff\x00")
    assert msg.params == [1.0, 2.0, 3.0, 10.0, -5.0, 0.5]


def test_round_trip_with_lens_and_sample() -> None:
    pose = OscPose("A_1", 0.5, -4.0, 1.75, 20.0, 3.0, 0.0, zoom_norm=0.25, focus_norm=0.75)
    (back,) = osc_pose.decode(osc_pose.encode(pose))
    assert back == pose
    s = back.to_sample(3.0)
    assert s.protocol == "osc" and s.sequence is None and s.zoom_norm == 0.25
    assert s.rotation_deg == (20.0, 3.0, 0.0)


def test_ints_and_bundles_accepted() -> None:
    b = OscMessageBuilder("/tracking/x/pose")
    for v in (1, 2, 3, 4, 5, 6):
        b.add_arg(v)
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(b.build())
    bundle.add_content(OscMessage(osc_pose.encode(OscPose("y", 0, 0, 0, 0, 0, 0))))
    poses = osc_pose.decode(bundle.build().dgram)
    assert [p.source for p in poses] == ["x", "y"] and poses[0].z_m == 3.0


@pytest.mark.parametrize(
    ("address", "args", "match"),
    [
        ("/tracking/a/rot", [1.0] * 6, "address"),
        ("/tracking/a/pose", [1.0] * 5, "arguments"),
        ("/tracking/a/pose", [1.0] * 5 + ["s"], "not a number"),
        ("/tracking/a b/pose", [1.0] * 6, "address"),
    ],
)
def test_rejects(address: str, args: list[object], match: str) -> None:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    with pytest.raises(osc_pose.OscPoseError, match=match):
        osc_pose.decode(b.build().dgram)


def test_encode_validates() -> None:
    with pytest.raises(osc_pose.OscPoseError, match="source"):
        osc_pose.encode(OscPose("a/b", 0, 0, 0, 0, 0, 0))
    with pytest.raises(osc_pose.OscPoseError, match="both"):
        osc_pose.encode(OscPose("a", 0, 0, 0, 0, 0, 0, zoom_norm=0.5))
    with pytest.raises(osc_pose.OscPoseError, match="non-finite"):
        osc_pose.encode(OscPose("a", float("inf"), 0, 0, 0, 0, 0))


@settings(max_examples=300)
@given(st.binary(max_size=96))
def test_fuzz_clean_rejection(data: bytes) -> None:
    for candidate in (data, b"/tracking/a/pose\x00\x00\x00\x00" + data, b"#bundle\x00" + data):
        try:
            osc_pose.decode(candidate)
        except osc_pose.OscPoseError:
            pass
