from __future__ import annotations

import asyncio
import json
import socket

import pytest

from drivers.tracking import opentrackio, simulator
from drivers.tracking.ingest import TrackingIngest
from drivers.tracking.sample import TrackingSample
from drivers.tracking.simulator import CameraMove, Faults, TrackingSimulator

from .conftest import assert_no_stray_tasks

pytestmark = pytest.mark.usefixtures("no_leaks")


async def run_pair(sim_kwargs: dict, ing_kwargs: dict, samples: int):  # type: ignore[no-untyped-def]
    got: list[TrackingSample] = []
    async with TrackingIngest(on_sample=got.append, **ing_kwargs) as ing:
        host, port = (
            ing.local_address if ing.multicast_group is None else (ing.multicast_group, ing.port)
        )
        sim = TrackingSimulator(host=host, port=port, **sim_kwargs)
        report = await sim.run(samples=samples)
        await asyncio.sleep(0.05)
        snap = ing.snapshot()
    await assert_no_stray_tasks()
    return sim, report, snap, got


async def test_opentrackio_faults_match_sequence_stats() -> None:
    faults = Faults(
        loss_pct=4,
        burst_per_s=1.0,
        burst_length=4,
        bad_checksum_pct=3,
        reorder_pct=3,
        jitter_ms=1.0,
    )
    sim, report, snap, got = await run_pair(
        dict(protocol="opentrackio", rate_hz=200, faults=faults, seed=11, encoding="cbor"),
        dict(source="ot", protocol="opentrackio", port=0, host="127.0.0.1", nominal_rate_hz=200),
        samples=300,
    )
    assert report.lost > 0 and report.corrupted > 0 and report.reordered > 0
    assert snap.errors.get("checksum", 0) == report.corrupted
    assert snap.received == report.sent - report.corrupted == len(got)
    assert snap.lost == report.not_delivered
    assert report.reordered - report.corrupted - 1 <= snap.reordered <= report.reordered
    assert snap.rate_hz == pytest.approx(200 * (1 - report.not_delivered / 300), rel=0.3)


async def test_freed_faults_match_gap_stats_and_pose() -> None:
    faults = Faults(loss_pct=5, bad_checksum_pct=4)
    move = CameraMove(seed=3)
    sim, report, snap, got = await run_pair(
        dict(protocol="freed", rate_hz=100, faults=faults, seed=5, move=move, freed_profile="zcam"),
        dict(
            source="fd",
            protocol="freed",
            port=0,
            host="127.0.0.1",
            nominal_rate_hz=100,
            freed_profile="zcam",
        ),
        samples=200,
    )
    assert snap.errors == {"checksum": report.corrupted}
    assert snap.received == report.sent - report.corrupted
    # Z CAM carries an 8-bit sequence in spare: loss is counted exactly
    assert snap.lost == report.not_delivered
    # what arrived is the move, through FreeD quantisation and the axis mapping
    for s in got[::20]:
        assert s.sequence is not None
        # index modulo 256 is enough here: 200 samples
        pose = move.pose_at(s.sequence / 100)
        assert s.position_m == pytest.approx(pose.position_m, abs=1 / 64 / 1000)
        assert s.rotation_deg == pytest.approx(pose.rotation_deg, abs=1 / 32768)
        assert s.focal_length_mm == pytest.approx(pose.focal_length_mm, abs=0.01)


async def test_generic_freed_loss_from_arrival_gaps() -> None:
    _, report, snap, _ = await run_pair(
        dict(protocol="freed", rate_hz=100, faults=Faults(loss_pct=8), seed=2),
        dict(source="g", protocol="freed", port=0, host="127.0.0.1", nominal_rate_hz=100),
        samples=200,
    )
    # no sequence: estimated from gaps; scheduler hiccups on a shared CPU blur it
    assert abs(snap.lost - report.not_delivered) <= max(4, report.not_delivered // 4)


async def test_multicast_simulator_to_ingest() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, report, snap, got = await run_pair(
        dict(protocol="opentrackio", rate_hz=240, source_number=5, multicast_interface="127.0.0.1"),
        dict(
            source="m",
            protocol="opentrackio",
            port=port,
            multicast_group=opentrackio.multicast_group(5),
            interface="127.0.0.1",
        ),
        samples=60,
    )
    assert len(got) == 60 and snap.lost == 0 and got[0].camera_id == 5
    assert got[-1].timecode is None  # 240 Hz is no timecode rate


def test_move_is_smooth_and_pulls_lens() -> None:
    move = CameraMove()
    poses = [move.pose_at(i / 50) for i in range(50 * 20)]
    steps = [abs(b.position_m[0] - a.position_m[0]) for a, b in zip(poses, poses[1:], strict=False)]
    assert max(steps) < 0.05  # < 2.5 m/s at 50 Hz: a dolly, not a teleport
    focal = [p.focal_length_mm for p in poses]
    assert min(focal) == pytest.approx(24.0, abs=0.5) and max(focal) == pytest.approx(85, abs=0.5)
    assert move.pose_at(3.21) == CameraMove().pose_at(3.21)  # deterministic per seed


def test_validation() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        TrackingSimulator("freed", rate_hz=300)
    with pytest.raises(ValueError, match="loss_pct"):
        Faults(loss_pct=101)


def test_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(1.0)
        port = rx.getsockname()[1]
        rc = simulator.main(
            [
                "--protocol",
                "freed",
                "--port",
                str(port),
                "--rate",
                "50",
                "--duration",
                "0.2",
                "--profile",
                "sony",
            ]
        )
        assert rc == 0
        assert len(rx.recv(100)) == 29
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["protocol"] == "freed" and report["samples"] == 10
    assert simulator.main(["--rate", "500", "--duration", "0.1"]) == 2
