"""A camera-tracking source as a stage device.

Wraps a :class:`~drivers.tracking.ingest.TrackingIngest` in the shared device model: health
follows the source's statistics (offline when silent for more than 2 stage frames, degraded
on loss or decode errors), the reported state is the latest statistics and pose, and the
one piece of desired state is the per-source delay compensation in 0.1-frame steps.

Samples are announced as ``"sample"`` events (the engine publishes them on
``tracking.<source>``); raw datagrams go to an optional recorder hook (takes).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from drivers.device import Backoff, Device, Problem
from drivers.messages import message
from drivers.tracking.compensate import DelayCompensator
from drivers.tracking.ingest import TrackingIngest
from drivers.tracking.sample import Protocol, TrackingSample
from drivers.tracking.timecode import StageClock, frames_to_timecode

DEGRADED_LOSS_PCT = 1.0
# Without sequence numbers loss is inferred from arrival gaps, which sender jitter inflates.
DEGRADED_GAP_LOSS_PCT = 10.0
STATS_INTERVAL_S = 0.5

RawHook = Callable[[str, bytes, float], None]
SampleHook = Callable[[dict[str, Any]], None]  # the sample as published (sample_dict)


class DelayError(ValueError):
    """An invalid delay-compensation setting; nothing was changed."""

    def __init__(self, device: str, value: object) -> None:
        self.device = device
        self.param = "delay_frames"
        self.value = value
        self.expected = "0..10 frames in 0.1-frame steps"
        super().__init__(f"{device}: setting delay_frames to {value!r}: expected {self.expected}")


def sample_dict(sample: TrackingSample) -> dict[str, Any]:
    """JSON-ready form of a sample (bus messages, take files)."""
    return {
        "source": sample.source,
        "protocol": sample.protocol,
        "sequence": sample.sequence,
        "arrival_s": sample.arrival_s,
        "timecode": sample.timecode,
        "position_m": list(sample.position_m),
        "rotation_deg": list(sample.rotation_deg),
        "zoom_raw": sample.zoom_raw,
        "focus_raw": sample.focus_raw,
        "zoom_norm": sample.zoom_norm,
        "focus_norm": sample.focus_norm,
        "focal_length_mm": sample.focal_length_mm,
        "focus_distance_m": sample.focus_distance_m,
        "camera_id": sample.camera_id,
    }


class TrackingSource(Device):
    """One tracking source on the stage.

    Args:
        name: source name from the stage config.
        protocol: ``freed``, ``opentrackio`` or ``osc``.
        clock: the stage clock that stamps timecode on arrival.
        delay_frames: initial delay compensation.
        ingest_options: passed to :class:`TrackingIngest` (port, host, multicast group...).
    """

    kind = "tracking"

    def __init__(self, name: str, protocol: Protocol, clock: StageClock, *,
                 rate_hz: float = 50.0, delay_frames: float = 0.0,
                 **ingest_options: Any) -> None:
        super().__init__(name, Backoff(initial_s=clock.rate.period_s, max_s=0.5))
        self.protocol = protocol
        self.clock = clock
        self.rate_hz = rate_hz
        self.ingest = TrackingIngest(
            name, protocol, self._on_sample, nominal_rate_hz=rate_hz,
            stage_frame_period_s=clock.rate.period_s, on_datagram=self._on_datagram,
            **ingest_options)
        self.compensator = DelayCompensator(Fraction(rate_hz).limit_denominator(1001),
                                            capacity=max(64, int(rate_hz * 2)))
        self.raw_hooks: list[RawHook] = []
        self.sample_hooks: list[SampleHook] = []
        self.last_sample: dict[str, Any] | None = None
        self._fps = float(clock.rate.rate)
        self._tod_offset_s = clock.frame_offset_s()
        self._tc_frame = -1
        self._tc_label = ""
        self._delay_tenths = 0
        self._last_stats = 0.0
        self._window = (0, 0, 0)  # lost, received, errors at the last statistics window
        self._recent_errors = 0
        self._recent_loss_pct = 0.0
        self.desired["delay_frames"] = self.validate("delay_frames", delay_frames)
        self._apply_delay(self.desired["delay_frames"])

    # ---- Device hooks -----------------------------------------------------------------

    def validate(self, key: str, value: object) -> Any:
        """Only ``delay_frames`` is settable: 0..10 in 0.1-frame steps."""
        if key != "delay_frames":
            raise ValueError(f"{self.name}: setting {key} to {value!r}: expected delay_frames "
                             "(the only settable tracking parameter)")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DelayError(self.name, value)
        tenths = round(float(value) * 10)
        if abs(float(value) * 10 - tenths) > 1e-6 or not 0 <= tenths <= 100:
            raise DelayError(self.name, value)
        return tenths / 10

    async def _open(self) -> None:
        await self.ingest.start()

    async def _close(self) -> None:
        await self.ingest.close()

    def _probe(self) -> None:
        """Passive source: nothing to send; the next sample brings it online."""

    def _keepalive_interval(self) -> float:
        return min(self.clock.rate.period_s, 0.05)

    def _link_alive(self) -> bool:
        self._publish_stats(time.monotonic())
        return not self.ingest.stats.is_silent(time.monotonic())

    def _silence_reason(self) -> str:
        age = self.ingest.snapshot().age_s
        frames = (age or 0.0) / self.clock.rate.period_s
        return Problem(f"silent for {frames:.1f} frames (no sample on udp port "
                       f"{self.ingest.port})", "silent", frames=round(frames, 1),
                       port=self.ingest.port)

    def _send_desired(self, values: dict[str, Any]) -> None:
        if "delay_frames" in values:
            self._apply_delay(values["delay_frames"])

    async def safe_shutdown(self) -> None:
        """A tracking source moves nothing: closing the socket is safe."""

    def _problems(self) -> list[str]:
        """Problems in the last statistics window (so a past burst does not stick)."""
        problems: list[str] = []
        limit = DEGRADED_LOSS_PCT if self.ingest.stats.sequence_bits else DEGRADED_GAP_LOSS_PCT
        if self._recent_loss_pct > limit:
            problems.append(Problem(f"loss {self._recent_loss_pct:.1f} % over the last "
                                    f"{STATS_INTERVAL_S:g} s", "loss",
                                    pct=round(self._recent_loss_pct, 1),
                                    window_s=STATS_INTERVAL_S))
        if self._recent_errors:
            problems.append(Problem(f"{self._recent_errors} bad packets in the last "
                                    f"{STATS_INTERVAL_S:g} s", "bad_packets",
                                    count=self._recent_errors, window_s=STATS_INTERVAL_S))
        return problems

    # ---- data path --------------------------------------------------------------------

    def _apply_delay(self, frames: float) -> None:
        self._delay_tenths = round(frames * 10)
        self.compensator.delay_frames = Fraction(self._delay_tenths, 10)
        self._report({"delay_frames": frames})

    def _on_datagram(self, data: bytes, addr: Any, arrival_s: float) -> None:
        for hook in self.raw_hooks:
            hook(self.name, data, arrival_s)

    def _timecode(self, monotonic_s: float) -> str:
        """Timecode label at an instant; float frame maths, one label per frame (cached).

        Up to 240 samples a second share 24-60 frames, and Fraction arithmetic per sample
        would cost more than the rest of the ingest.
        """
        tod = monotonic_s + self._tod_offset_s
        frame = math.floor((tod % 86400.0) * self._fps)
        if frame != self._tc_frame:
            self._tc_frame = frame
            self._tc_label = str(frames_to_timecode(frame, self.clock.rate))
        return self._tc_label

    def _on_sample(self, sample: TrackingSample) -> None:
        data = sample_dict(sample)
        data["timecode"] = self._timecode(sample.arrival_s)
        if self._delay_tenths:
            self.compensator.push(sample.arrival_s, sample.position_m, sample.rotation_deg)
            pose = self.compensator.pose_at(sample.arrival_s - float(self.compensator.delay_s))
            if pose is not None:
                data["position_m"] = list(pose.position_m)
                data["rotation_deg"] = list(pose.rotation_deg)
        self.last_sample = data
        if not self._connected.is_set():
            self._link_up(message("why_first_sample", port=self.ingest.port))
        for hook in self.sample_hooks:
            hook(data)
        self._emit("sample", data)
        if sample.arrival_s - self._last_stats >= STATS_INTERVAL_S:
            self._publish_stats(sample.arrival_s)

    def _publish_stats(self, now: float) -> None:
        if now - self._last_stats < STATS_INTERVAL_S:
            return
        self._last_stats = now
        snap = self.ingest.snapshot(now)
        lost = snap.lost - self._window[0]
        received = snap.received - self._window[1]
        # a network may deliver a datagram twice (the spec: process one): not a bad packet
        bad = snap.error_count - snap.errors.get("duplicate", 0)
        self._recent_errors = bad - self._window[2]
        self._recent_loss_pct = 100.0 * lost / max(1, lost + received)
        self._window = (snap.lost, snap.received, bad)
        last = self.last_sample
        self._report({
            "protocol": self.protocol,
            "port": self.ingest.port,
            "rate_hz": round(snap.rate_hz, 2),
            "jitter_ms": round(snap.jitter_ms, 3),
            "loss_pct": round(snap.loss_pct, 3),
            "lost": snap.lost,
            "received": snap.received,
            "errors": dict(snap.errors),
            "last_seen_age_ms": None if snap.age_s is None else round(snap.age_s * 1000, 1),
            "position_m": None if last is None else [round(v, 4) for v in last["position_m"]],
            "rotation_deg": None if last is None else [round(v, 3)
                                                       for v in last["rotation_deg"]],
            "timecode": None if last is None else last["timecode"],
        })
        self._update_health()
