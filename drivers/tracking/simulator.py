"""A simulated tracking source that speaks the real wire protocols over UDP.

The camera follows a believable move rather than a test pattern: a dolly track with
eased ends, a crane rising and falling, the operator panning after the action with a
tilt that follows the crane height, hand-held operator noise (a few incommensurate
sines, deterministic for a seed), and zoom and focus pulls with eased ramps. The pose
is a pure function of time, so a test can ask what was sent at any instant.

Faults are injected on the wire, per sample: random loss, bursts of consecutive
drops, send-time jitter, corrupted checksums and swapped (reordered) samples. The
report says exactly how many of each were injected, for tests to compare with what
the ingest counted.

Run ``python -m drivers.tracking.simulator --protocol freed --port 40000 --rate 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Final, Literal

from drivers.tracking import freed, opentrackio
from drivers.tracking.sample import (
    DEFAULT_AXIS_MAP,
    FreeDAxisMap,
    stage_to_freed_angles,
    stage_to_freed_position_mm,
)
from drivers.tracking.timecode import RATES, FrameRate, frames_to_timecode

MIN_RATE_HZ: Final = 23.976
MAX_RATE_HZ: Final = 240.0
SimProtocol = Literal["freed", "opentrackio"]


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True, slots=True)
class CameraPose:
    """What the simulated camera does at one instant (stage frame)."""

    position_m: tuple[float, float, float]
    rotation_deg: tuple[float, float, float]
    focal_length_mm: float
    focus_distance_m: float
    zoom_norm: float
    focus_norm: float


@dataclass(frozen=True, slots=True)
class CameraMove:
    """A crane-on-dolly move with operator noise and lens pulls.

    Attributes:
        seed: picks the noise phases (same seed, same move).
        dolly_length_m: travel along X.
        dolly_period_s: time for a full back-and-forth.
        start_y_m: distance from the wall (negative Y: in front of the wall at Y=0).
        crane_low_m: lowest lens height.
        crane_high_m: highest lens height.
        crane_period_s: time for a full up-and-down.
        pan_amplitude_deg: how far the operator pans each way.
        noise_position_mm: operator noise, position amplitude.
        noise_rotation_deg: operator noise, rotation amplitude.
        zoom_wide_mm: wide end of the zoom.
        zoom_tele_mm: long end of the zoom.
        focus_near_m: nearest focus distance.
        focus_far_m: farthest focus distance.
        pull_every_s: a zoom (and focus) pull starts this often.
        pull_duration_s: length of each pull.
    """

    seed: int = 1
    dolly_length_m: float = 4.0
    dolly_period_s: float = 24.0
    start_y_m: float = -5.0
    crane_low_m: float = 1.1
    crane_high_m: float = 2.8
    crane_period_s: float = 31.0
    pan_amplitude_deg: float = 30.0
    noise_position_mm: float = 2.0
    noise_rotation_deg: float = 0.08
    zoom_wide_mm: float = 24.0
    zoom_tele_mm: float = 85.0
    focus_near_m: float = 1.5
    focus_far_m: float = 8.0
    pull_every_s: float = 9.0
    pull_duration_s: float = 2.5
    _noise: tuple[tuple[float, float], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        # 6 channels x 3 sines each: (frequency Hz, phase rad), in the 0.2..3 Hz band
        noise = tuple((rng.uniform(0.2, 3.0), rng.uniform(0.0, 2.0 * math.pi)) for _ in range(18))
        object.__setattr__(self, "_noise", noise)

    def _wobble(self, channel: int, t: float) -> float:
        terms = self._noise[3 * channel : 3 * channel + 3]
        return sum(math.sin(2.0 * math.pi * f * t + ph) for f, ph in terms) / 3.0

    def _pull(self, t: float, offset_s: float) -> float:
        """0..1 lens position: holds, then eases to the other end on each pull."""
        cycle = (t + offset_s) / self.pull_every_s
        n = math.floor(cycle)
        into = (cycle - n) * self.pull_every_s
        ramp = _smoothstep(into / self.pull_duration_s)
        start = float(n % 2)
        return start + (1.0 - 2.0 * start) * ramp

    def pose_at(self, t: float) -> CameraPose:
        """The camera pose ``t`` seconds into the move."""
        two_pi = 2.0 * math.pi
        x = -0.5 * self.dolly_length_m * math.cos(two_pi * t / self.dolly_period_s)
        y = self.start_y_m + 0.5 * (1.0 - math.cos(two_pi * t / (2.0 * self.dolly_period_s)))
        mid = 0.5 * (self.crane_low_m + self.crane_high_m)
        amp = 0.5 * (self.crane_high_m - self.crane_low_m)
        z = mid + amp * math.sin(two_pi * t / self.crane_period_s)
        pan = self.pan_amplitude_deg * math.sin(two_pi * t / (0.7 * self.dolly_period_s))
        tilt = -math.degrees(math.atan2(z - 1.6, abs(self.start_y_m)))  # look at eye line
        roll = 0.0
        n_pos = self.noise_position_mm / 1000.0
        n_rot = self.noise_rotation_deg
        zoom = self._pull(t, 0.0)
        focus = self._pull(t, 0.4 * self.pull_every_s)
        focal = self.zoom_wide_mm + (self.zoom_tele_mm - self.zoom_wide_mm) * zoom
        # focus distance eased on a log scale, as a focus puller's marks are spaced
        ratio = self.focus_far_m / self.focus_near_m
        focus_m = self.focus_near_m * ratio**focus
        return CameraPose(
            position_m=(
                x + n_pos * self._wobble(0, t),
                y + n_pos * self._wobble(1, t),
                z + n_pos * self._wobble(2, t),
            ),
            rotation_deg=(
                pan + n_rot * self._wobble(3, t),
                tilt + n_rot * self._wobble(4, t),
                roll + n_rot * self._wobble(5, t),
            ),
            focal_length_mm=focal,
            focus_distance_m=focus_m,
            zoom_norm=zoom,
            focus_norm=focus,
        )


@dataclass(frozen=True, slots=True)
class Faults:
    """Wire faults to inject, per sample.

    Attributes:
        loss_pct: chance that a sample is not sent.
        burst_per_s: mean rate of burst drops (each drops ``burst_length`` samples).
        burst_length: samples dropped per burst.
        jitter_ms: each send is delayed by a uniform 0..jitter_ms.
        bad_checksum_pct: chance that a sample is sent with a corrupted checksum.
        reorder_pct: chance that a sample is held back and sent after the next one.
    """

    loss_pct: float = 0.0
    burst_per_s: float = 0.0
    burst_length: int = 5
    jitter_ms: float = 0.0
    bad_checksum_pct: float = 0.0
    reorder_pct: float = 0.0

    def __post_init__(self) -> None:
        for name in ("loss_pct", "bad_checksum_pct", "reorder_pct"):
            value = getattr(self, name)
            if not 0.0 <= value <= 100.0:
                raise ValueError(f"Faults.{name}={value!r} must be within 0..100")
        for name in ("burst_per_s", "jitter_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name}={getattr(self, name)!r} must be >= 0")
        if self.burst_length < 1:
            raise ValueError(f"Faults.burst_length={self.burst_length} must be >= 1")


@dataclass(slots=True)
class SimulatorReport:
    """What a simulator run generated and injected (sample counts)."""

    protocol: str
    samples: int = 0
    sent: int = 0
    datagrams: int = 0
    lost: int = 0
    burst_lost: int = 0
    corrupted: int = 0
    reordered: int = 0
    late: int = 0

    @property
    def not_delivered(self) -> int:
        """Samples a perfect receiver cannot accept (dropped or corrupted)."""
        return self.lost + self.burst_lost + self.corrupted


def _corrupt(datagram: bytes, protocol: SimProtocol) -> bytes:
    data = bytearray(datagram)
    idx = freed.PACKET_LEN - 1 if protocol == "freed" else 15  # checksum (low) byte
    data[idx] ^= 0x5A
    return bytes(data)


class TrackingSimulator:
    """One simulated source: a camera move sent as FreeD or OpenTrackIO over UDP.

    Args:
        protocol: ``freed`` or ``opentrackio``.
        host: destination address (unicast or a multicast group).
        port: destination UDP port.
        rate_hz: samples per second, 23.976..240.
        move: the camera move.
        faults: wire faults to inject.
        seed: seed of the fault dice.
        freed_profile: FreeD vendor profile for zoom/focus/spare.
        camera_id: FreeD camera id.
        axis_map: stage-to-FreeD axis mapping (inverse of the ingest's).
        source_number: OpenTrackIO source number.
        encoding: OpenTrackIO payload encoding.
        mtu: OpenTrackIO segmentation MTU.
        multicast_interface: local interface address for multicast sends.
        multicast_ttl: TTL for multicast sends.
        timecode_rate: label samples with timecode at this rate (default: the sample
            rate when it is a stage rate).
    """

    def __init__(
        self,
        protocol: SimProtocol,
        host: str = "127.0.0.1",
        port: int | None = None,
        rate_hz: float = 50.0,
        *,
        move: CameraMove | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        freed_profile: freed.FreeDProfile | str = "generic",
        camera_id: int = 1,
        axis_map: FreeDAxisMap = DEFAULT_AXIS_MAP,
        source_number: int = 1,
        encoding: opentrackio.Encoding = "json",
        mtu: int = opentrackio.DEFAULT_MTU,
        multicast_interface: str = "127.0.0.1",
        multicast_ttl: int = 1,
        timecode_rate: FrameRate | None = None,
    ) -> None:
        if protocol not in ("freed", "opentrackio"):
            raise ValueError(f"simulator protocol {protocol!r} is not freed or opentrackio")
        if not MIN_RATE_HZ - 1e-6 <= rate_hz <= MAX_RATE_HZ:
            raise ValueError(
                f"simulator rate_hz={rate_hz!r} must be within {MIN_RATE_HZ}..{MAX_RATE_HZ}"
            )
        self.protocol: SimProtocol = protocol
        self.freed_profile = (
            freed.profile(freed_profile) if isinstance(freed_profile, str) else freed_profile
        )
        if port is None:
            port = (
                self.freed_profile.default_port if protocol == "freed" else opentrackio.DEFAULT_PORT
            )
        self.address = (host, port)
        self.rate = Fraction(rate_hz).limit_denominator(1001)
        self.move = move or CameraMove()
        self.faults = faults or Faults()
        self.camera_id = camera_id
        self.axis_map = axis_map
        self.encoding: opentrackio.Encoding = encoding
        self.mtu = mtu
        self.multicast_interface = multicast_interface
        self.multicast_ttl = multicast_ttl
        if timecode_rate is None:
            timecode_rate = next(
                (r for r in RATES.values() if abs(r.fps - float(self.rate)) < 1e-3), None
            )
        self.timecode_rate = timecode_rate
        self.builder = opentrackio.SampleBuilder(source_number=source_number, sample_rate=self.rate)
        self.segmenter = opentrackio.Segmenter(encoding=encoding, mtu=mtu)
        self.report = SimulatorReport(protocol)
        self._rng = random.Random(seed)
        self._burst_left = 0
        self._stop = asyncio.Event()

    # -- encoding ---------------------------------------------------------------------

    def datagrams_for(self, index: int, wall_s: float) -> list[bytes]:
        """Wire datagrams of sample ``index`` (the move at ``index / rate`` seconds)."""
        t = float(index / self.rate)
        pose = self.move.pose_at(t)
        if self.protocol == "freed":
            return [self._freed(index, pose)]
        tc = None
        if self.timecode_rate is not None:
            tc = frames_to_timecode(index, self.timecode_rate)
        sample = self.builder.build(
            position_m=pose.position_m,
            rotation_deg=pose.rotation_deg,
            sample_time_s=wall_s,
            timecode=tc,
            focal_length_mm=pose.focal_length_mm,
            focus_distance_m=pose.focus_distance_m,
            zoom_norm=pose.zoom_norm,
            focus_norm=pose.focus_norm,
        )
        return self.segmenter.encode(sample)  # one sequence number per packet

    def _freed(self, index: int, pose: CameraPose) -> bytes:
        pan, tilt, roll = stage_to_freed_angles(pose.rotation_deg, self.axis_map)
        x, y, z = stage_to_freed_position_mm(pose.position_m, self.axis_map)
        prof = self.freed_profile
        if prof.zoom_per_mm:
            zoom = round(pose.focal_length_mm * prof.zoom_per_mm)
        else:
            zoom = round(pose.zoom_norm * 0xFFFF)
        if prof.focus_per_mm:
            focus = round(pose.focus_distance_m * 1000.0 * prof.focus_per_mm)
        else:
            focus = round(pose.focus_norm * 0xFFFF)
        spare = 0
        if prof.spare_iris_sequence:
            spare = (0x40 << 8) | (index & 0xFF)  # iris fixed mid-range, 8-bit sequence
        return freed.encode(
            freed.FreeDPacket(
                self.camera_id,
                pan,
                tilt,
                roll,
                x,
                y,
                z,
                min(zoom, 0xFFFFFF),
                min(focus, 0xFFFFFF),
                spare,
            )
        )

    # -- faults -----------------------------------------------------------------------

    def _fate(self) -> str:
        """Roll the dice for one sample: send, lost, burst, corrupt or reorder."""
        f = self.faults
        if self._burst_left:
            self._burst_left -= 1
            return "burst"
        if f.burst_per_s and self._rng.random() < f.burst_per_s / float(self.rate):
            self._burst_left = f.burst_length - 1
            return "burst"
        roll = self._rng.random() * 100.0
        if roll < f.loss_pct:
            return "lost"
        roll -= f.loss_pct
        if roll < f.bad_checksum_pct:
            return "corrupt"
        roll -= f.bad_checksum_pct
        if roll < f.reorder_pct:
            return "reorder"
        return "send"

    # -- running ----------------------------------------------------------------------

    def _open_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            if socket.inet_aton(self.address[0])[0] in range(224, 240):
                sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_MULTICAST_IF,
                    socket.inet_aton(self.multicast_interface),
                )
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, self.multicast_ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def stop(self) -> None:
        """Ask :meth:`run` to finish after the current sample."""
        self._stop.set()

    async def run(
        self, *, duration_s: float | None = None, samples: int | None = None
    ) -> SimulatorReport:
        """Send samples at the configured rate until stopped, or for a duration/count.

        Sends are scheduled on absolute times (``t0 + k / rate``), so rate does not
        drift; a send more than a period late is counted in ``report.late``.
        """
        loop = asyncio.get_running_loop()
        sock = self._open_socket()
        try:
            transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sock)
        except BaseException:
            sock.close()
            raise
        period = float(1 / self.rate)
        total = samples
        if duration_s is not None:
            by_time = math.ceil(duration_s * float(self.rate))
            total = by_time if total is None else min(total, by_time)
        held: list[bytes] | None = None
        t0 = loop.time()
        wall0 = time.time()
        index = 0
        try:
            while not self._stop.is_set() and (total is None or index < total):
                due = t0 + index * period
                if self.faults.jitter_ms:
                    due += self._rng.uniform(0.0, self.faults.jitter_ms / 1000.0)
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -period:
                    self.report.late += 1
                    await asyncio.sleep(0)
                datagrams = self.datagrams_for(index, wall0 + index * period)
                self.report.samples += 1
                index += 1
                fate = self._fate()
                if fate == "lost":
                    self.report.lost += 1
                    continue
                if fate == "burst":
                    self.report.burst_lost += 1
                    continue
                if fate == "corrupt":
                    self.report.corrupted += 1
                    datagrams[-1] = _corrupt(datagrams[-1], self.protocol)
                if fate == "reorder" and held is None:
                    held = datagrams
                    continue
                self._send(transport, datagrams)
                if held is not None:
                    self.report.reordered += 1
                    self._send(transport, held)
                    held = None
            if held is not None:  # nothing came after it: send it late anyway
                self.report.reordered += 1
                self._send(transport, held)
        finally:
            transport.close()
            await asyncio.sleep(0)  # let the transport close its socket
        return self.report

    def _send(self, transport: asyncio.DatagramTransport, datagrams: list[bytes]) -> None:
        for d in datagrams:
            transport.sendto(d, self.address)
            self.report.datagrams += 1
        self.report.sent += 1


# --- command line ------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m drivers.tracking.simulator",
        description="Send a simulated camera move as FreeD and/or OpenTrackIO over UDP.",
    )
    p.add_argument("--protocol", choices=["freed", "opentrackio", "both"], default="freed")
    p.add_argument("--host", default="127.0.0.1", help="destination (unicast or group)")
    p.add_argument("--port", type=int, help="destination port (single protocol)")
    p.add_argument("--freed-port", type=int, help="FreeD port with --protocol both")
    p.add_argument("--otrk-port", type=int, help="OpenTrackIO port with --protocol both")
    p.add_argument("--rate", type=float, default=50.0, help="samples per second")
    p.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    p.add_argument("--profile", default="generic", choices=sorted(freed.PROFILES))
    p.add_argument("--camera-id", type=int, default=1)
    p.add_argument("--source-number", type=int, default=1)
    p.add_argument(
        "--multicast", action="store_true", help="send OpenTrackIO to 239.135.1.<source-number>"
    )
    p.add_argument("--interface", default="127.0.0.1", help="multicast interface address")
    p.add_argument("--encoding", choices=["json", "cbor"], default="json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--loss", type=float, default=0.0, help="percent of samples dropped")
    p.add_argument("--burst-per-s", type=float, default=0.0)
    p.add_argument("--burst-length", type=int, default=5)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--bad-checksum", type=float, default=0.0, help="percent corrupted")
    p.add_argument("--reorder", type=float, default=0.0, help="percent reordered")
    return p


def build_simulators(args: argparse.Namespace) -> list[TrackingSimulator]:
    """Simulators described by parsed command-line arguments.

    Raises:
        ValueError: an argument is out of range (the message names it).
    """
    faults = Faults(
        loss_pct=args.loss,
        burst_per_s=args.burst_per_s,
        burst_length=args.burst_length,
        jitter_ms=args.jitter_ms,
        bad_checksum_pct=args.bad_checksum,
        reorder_pct=args.reorder,
    )
    move = CameraMove(seed=args.seed)
    protocols: list[SimProtocol] = (
        ["freed", "opentrackio"] if args.protocol == "both" else [args.protocol]
    )
    sims = []
    for i, proto in enumerate(protocols):
        port = (
            args.port
            if args.protocol != "both"
            else (args.freed_port if proto == "freed" else args.otrk_port)
        )
        host = args.host
        if proto == "opentrackio" and args.multicast:
            host = opentrackio.multicast_group(args.source_number)
        sims.append(
            TrackingSimulator(
                proto,
                host,
                port,
                args.rate,
                move=move,
                faults=faults,
                seed=args.seed + i,
                freed_profile=args.profile,
                camera_id=args.camera_id,
                source_number=args.source_number,
                encoding=args.encoding,
                multicast_interface=args.interface,
            )
        )
    return sims


async def _run_all(sims: Sequence[TrackingSimulator], duration_s: float | None) -> None:
    for s in sims:
        print(
            f"simulating {s.protocol} -> {s.address[0]}:{s.address[1]} at {float(s.rate):g} Hz",
            file=sys.stderr,
        )
    await asyncio.gather(*(s.run(duration_s=duration_s) for s in sims))


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints one JSON report line per simulator at the end.

    Returns:
        0 on a clean stop, 2 on bad arguments.
    """
    args = _parser().parse_args(argv)
    try:
        sims = build_simulators(args)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run_all(sims, args.duration))
    for s in sims:
        print(json.dumps(asdict(s.report) | {"not_delivered": s.report.not_delivered}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
