"""Take recording: every tracking sample of a take, raw and converted, to one file.

A take file is JSON lines (``stagectl-take/1``):

* line 1, ``{"type": "header", "format", "stage", "slate", "take", "started_utc",
  "frame_rate", "timezone", "mono_to_wall_s", "sources": {name: {"protocol", "port",
  "freed_profile"}}}`` (``freed_profile`` for FreeD sources only);
* ``{"type": "raw", "source", "arrival_s", "hex"}`` for every datagram as received;
* ``{"type": "sample", ...}`` for every converted sample (stage frame, timecode);
* last, ``{"type": "footer", "stopped_utc", "samples": {...}, "raw": {...}}``.

JSON lines survive a crash (every complete line is usable) and stream through standard
tools; exports to CSV and OpenTrackIO JSON lines and a UDP replay read the same file.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

from drivers.tracking.device import TrackingSource
from drivers.tracking.opentrackio import (
    OpenTrackIOError,
    Reassembler,
    SampleBuilder,
    StaticInfo,
    decode_packet,
    decode_payload,
)
from drivers.tracking.timecode import RATES, parse_timecode

FORMAT = "stagectl-take/1"
FLUSH_INTERVAL_S = 0.25
SLATE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class TakeError(Exception):
    """A take command that cannot be carried out (already recording, bad slate...)."""


class TakeFormatError(ValueError):
    """A take file that cannot be read; the message names the file and line."""


class TakeRecorder:
    """Writes one take file."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("x", encoding="utf-8")
        self._last_flush = time.monotonic()
        self.samples: Counter[str] = Counter()
        self.raw_counts: Counter[str] = Counter()
        self._write({"type": "header", "format": FORMAT, **header})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n")
        now = time.monotonic()
        if now - self._last_flush > FLUSH_INTERVAL_S:
            self._file.flush()
            self._last_flush = now

    def raw(self, source: str, data: bytes, arrival_s: float) -> None:
        """Record one datagram as received."""
        self.raw_counts[source] += 1
        self._write({"type": "raw", "source": source, "arrival_s": arrival_s,
                     "hex": data.hex()})

    def sample(self, sample: dict[str, Any]) -> None:
        """Record one converted sample (as published: :func:`sample_dict` plus timecode)."""
        self.samples[sample["source"]] += 1
        self._write({"type": "sample", **sample})

    def close(self) -> dict[str, Any]:
        """Write the footer, flush to disk and return the take's summary."""
        footer = {"type": "footer", "stopped_utc": datetime.now(UTC).isoformat(),
                  "samples": dict(self.samples), "raw": dict(self.raw_counts)}
        self._write(footer)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return {"path": str(self.path), "samples": dict(self.samples),
                "raw": dict(self.raw_counts)}


def _source_header(source: TrackingSource) -> dict[str, Any]:
    """What a take header records of a source's config (export names the tracker by it)."""
    info: dict[str, Any] = {"protocol": source.protocol, "port": source.ingest.port}
    if source.protocol == "freed":
        info["freed_profile"] = source.ingest.freed_profile.name
    return info


class TakeManager:
    """Starts and stops takes across every tracking source of a stage."""

    def __init__(self, stage: str, timezone: str, frame_rate: float, base_dir: Path,
                 sources: list[TrackingSource]) -> None:
        self.stage = stage
        self.timezone = timezone
        self.frame_rate = frame_rate
        self.base_dir = base_dir
        self.sources = sources
        self.recorder: TakeRecorder | None = None
        self.info: dict[str, Any] = {}

    def start(self, slate: object, take: object, user: str = "") -> dict[str, Any]:
        """Begin recording; refuses while a take is already running."""
        if self.recorder is not None:
            raise TakeError(f"take {self.info['slate']} T{self.info['take']} is still "
                            "recording; stop it first")
        if not isinstance(slate, str) or not SLATE_RE.match(slate):
            raise TakeError(f"slate must be 1-32 letters, digits, '-' or '_', got {slate!r}")
        if isinstance(take, bool) or not isinstance(take, int) or not 1 <= take <= 9999:
            raise TakeError(f"take must be a number 1..9999, got {take!r}")
        if not self.sources:
            raise TakeError("this stage has no tracking sources to record")
        started = datetime.now(UTC)
        day = started.strftime("%Y%m%d")
        path = self.base_dir / self.stage / day / (
            f"{slate}_T{take:03d}_{started.strftime('%H%M%S')}.take.jsonl")
        header = {"stage": self.stage, "slate": slate, "take": take,
                  "started_utc": started.isoformat(), "frame_rate": self.frame_rate,
                  "timezone": self.timezone, "user": user,
                  "mono_to_wall_s": time.time() - time.monotonic(),
                  "sources": {s.name: _source_header(s) for s in self.sources}}
        self.recorder = TakeRecorder(path, header)
        for source in self.sources:
            source.raw_hooks.append(self.recorder.raw)
            source.sample_hooks.append(self.recorder.sample)
        self.info = {"slate": slate, "take": take, "path": str(path),
                     "started_utc": header["started_utc"]}
        return dict(self.info)

    def stop(self) -> dict[str, Any]:
        """Finish the take and return its summary."""
        recorder = self.recorder
        if recorder is None:
            raise TakeError("no take is recording")
        for source in self.sources:
            source.raw_hooks.remove(recorder.raw)
            source.sample_hooks.remove(recorder.sample)
        self.recorder = None
        return {**self.info, **recorder.close()}

    def status(self) -> dict[str, Any]:
        """Whether a take is running, and which."""
        if self.recorder is None:
            return {"recording": False}
        return {"recording": True, **self.info, "samples": dict(self.recorder.samples)}


# ---- reading, export, replay ---------------------------------------------------------------

def read_take(path: Path) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and an iterator over the other records of a take file.

    Raises:
        TakeFormatError: missing file, not a take, or a broken line (with its number).
    """
    header, numbered = _read_numbered(path)
    return header, (record for _, record in numbered)


def _read_numbered(path: Path) -> tuple[dict[str, Any], Iterator[tuple[int, dict[str, Any]]]]:
    """:func:`read_take` with each record's line number (for errors that name the line)."""
    try:
        handle = path.open("rb")
        first = handle.readline()
    except OSError as exc:
        raise TakeFormatError(f"{path}: cannot open: {exc}") from None
    try:
        header = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        handle.close()
        raise TakeFormatError(f"{path}:1: not a take file (no JSON header)") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        handle.close()
        raise TakeFormatError(f"{path}:1: not a {FORMAT} file")

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        with handle:
            for number, raw in enumerate(handle, start=2):
                if not raw.strip():
                    continue
                try:
                    record = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    if not raw.endswith(b"\n"):
                        return  # a take cut short by a crash: keep what is complete
                    raise TakeFormatError(f"{path}:{number}: broken line (not JSON "
                                          "text): the file is damaged") from None
                if not isinstance(record, dict) or "type" not in record:
                    raise TakeFormatError(f"{path}:{number}: record without a type")
                yield number, record

    return header, records()


def _bad_record(path: Path, number: int, exc: Exception) -> TakeFormatError:
    detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
    return TakeFormatError(f"{path}:{number}: {detail[:120]}: the record is damaged")


CSV_COLUMNS = ("timecode", "source", "protocol", "sequence", "arrival_s", "x_m", "y_m", "z_m",
               "pan_deg", "tilt_deg", "roll_deg", "zoom_raw", "focus_raw", "zoom_norm",
               "focus_norm", "focal_length_mm", "focus_distance_m")


def export_csv(path: Path, out: IO[str], source: str | None = None) -> int:
    """Write the converted samples as CSV; returns the row count."""
    _, records = _read_numbered(path)
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for number, rec in records:
        if rec["type"] != "sample" or (source and rec.get("source") != source):
            continue
        try:
            x, y, z = rec["position_m"]
            pan, tilt, roll = rec["rotation_deg"]
            row = [rec.get("timecode"), rec["source"], rec.get("protocol"),
                   rec.get("sequence"), float(rec["arrival_s"]), x, y, z, pan, tilt, roll,
                   rec.get("zoom_raw"), rec.get("focus_raw"), rec.get("zoom_norm"),
                   rec.get("focus_norm"), rec.get("focal_length_mm"),
                   rec.get("focus_distance_m")]
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad_record(path, number, exc) from None
        writer.writerow(row)
        rows += 1
    return rows


# Vendor of the devices a FreeD profile is named for (``generic`` names none).
FREED_PROFILE_MAKES = {"panasonic": "Panasonic", "sony": "Sony", "mosys": "Mo-Sys",
                       "stype": "stYpe", "ncam": "Ncam", "zcam": "Z CAM"}
_TRACKER_KEYS = ("make", "model", "serialNumber", "firmwareVersion")


def _tracker_from_config(info: object) -> dict[str, str]:
    """Tracker make/model from a source's entry in the take header (what its config says)."""
    if not isinstance(info, dict) or info.get("protocol") != "freed":
        return {}
    profile = info.get("freed_profile")
    if not isinstance(profile, str) or not profile:
        return {"model": "FreeD D1"}
    tracker = {"model": f"FreeD D1 ({profile} profile)"}
    if profile in FREED_PROFILE_MAKES:
        tracker["make"] = FREED_PROFILE_MAKES[profile]
    return tracker


def _trackers_sent(path: Path, names: set[str]) -> dict[str, dict[str, str]]:
    """The tracker an OpenTrackIO source described itself as (its static block), by source.

    Reads the take's raw datagrams (joining segments); the first static ``tracker`` block
    of each source wins. Datagrams that do not decode are skipped.
    """
    found: dict[str, dict[str, str]] = {}
    if not names:
        return found
    reassemblers: dict[str, Reassembler] = {}
    _, records = _read_numbered(path)
    for _, rec in records:
        name = rec.get("source")
        if rec["type"] != "raw" or name not in names or name in found:
            continue
        assert isinstance(name, str)
        try:
            packet = decode_packet(bytes.fromhex(rec["hex"]))
            done = reassemblers.setdefault(name, Reassembler()).feed(
                packet, float(rec["arrival_s"]))
            doc = decode_payload(done.payload, done.encoding) if done else None
        except (OpenTrackIOError, KeyError, TypeError, ValueError):
            continue
        static = doc.get("static") if doc else None
        tracker = static.get("tracker") if isinstance(static, dict) else None
        if isinstance(tracker, dict):
            found[name] = {key: value for key in _TRACKER_KEYS
                           if isinstance(value := tracker.get(key), str) and value.strip()}
    return found


def export_opentrackio(path: Path, out: IO[str], source: str | None = None) -> int:
    """Write the converted samples as OpenTrackIO 1.0.1 samples, one JSON per line.

    Each sample keeps the raw lens encoders (``lens.rawEncoders`` from FreeD's zoom and
    focus counts, or the source's own); the static block names the tracker as the
    source's config does (the FreeD profile's vendor), or as an OpenTrackIO source
    described itself, never as our simulator.
    """
    header, records = _read_numbered(path)
    try:
        fps = float(header.get("frame_rate", 25))
        offset = float(header.get("mono_to_wall_s", 0.0))
    except (TypeError, ValueError) as exc:
        raise _bad_record(path, 1, exc) from None
    rate = min(RATES.values(), key=lambda r: abs(r.fps - fps))
    sources = header.get("sources")
    sources = sources if isinstance(sources, dict) else {}
    sent = _trackers_sent(path, {name for name, info in sources.items()
                                 if isinstance(info, dict)
                                 and info.get("protocol") == "opentrackio"
                                 and (source is None or name == source)})
    builders: dict[str, SampleBuilder] = {}
    rows = 0
    for number, rec in records:
        if rec["type"] != "sample" or (source and rec.get("source") != source):
            continue
        try:
            name = rec["source"]
            builder = builders.get(name)
            if builder is None:
                tracker = sent.get(name) or _tracker_from_config(sources.get(name))
                static = StaticInfo(tracker_make=tracker.get("make"),
                                    tracker_model=tracker.get("model"),
                                    tracker_serial_number=tracker.get("serialNumber"),
                                    tracker_firmware_version=tracker.get("firmwareVersion"))
                builder = SampleBuilder(source_number=len(builders) + 1,
                                        sample_rate=Fraction(rate.fps).limit_denominator(1001),
                                        static=static)
                builders[name] = builder
            tc = rec.get("timecode")
            sample = builder.build(
                position_m=rec["position_m"], rotation_deg=rec["rotation_deg"],
                sample_time_s=float(rec["arrival_s"]) + offset,
                timecode=parse_timecode(tc, rate) if tc else None,
                focal_length_mm=rec.get("focal_length_mm"),
                focus_distance_m=rec.get("focus_distance_m"),
                zoom_norm=rec.get("zoom_norm"), focus_norm=rec.get("focus_norm"),
                zoom_raw=rec.get("zoom_raw"), focus_raw=rec.get("focus_raw"))
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad_record(path, number, exc) from None
        out.write(json.dumps(sample, separators=(",", ":")) + "\n")
        rows += 1
    return rows


async def replay(path: Path, target: tuple[str, int], source: str | None = None,
                 speed: float = 1.0) -> int:
    """Send a take's raw datagrams to ``target`` with their recorded timing.

    Returns:
        The number of datagrams sent.
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    header, records = _read_numbered(path)
    if source is None:
        sources = header.get("sources", {})
        names = list(sources) if isinstance(sources, dict) else []
        if len(names) != 1:
            raise TakeFormatError(f"{path}: the take has sources {names}; choose one with "
                                  "--source")
        source = names[0]
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       remote_addr=target)
    sent = 0
    t0_take: float | None = None
    t0 = loop.time()
    try:
        for number, rec in records:
            if rec["type"] != "raw" or rec.get("source") != source:
                continue
            try:
                arrival_s = float(rec["arrival_s"])
                data = bytes.fromhex(rec["hex"])
            except (KeyError, TypeError, ValueError) as exc:
                raise _bad_record(path, number, exc) from None
            if t0_take is None:
                t0_take = arrival_s
            due = t0 + (arrival_s - t0_take) / speed
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            transport.sendto(data)
            sent += 1
    finally:
        transport.close()
        await asyncio.sleep(0)
    return sent
