"""A procedural LED-wall background plate, so demo and test jobs do real, checkable work.

The plate is a dusk sky over layered ridgelines with a drifting sun and a star field; every
pixel is a pure function of (width, height, frame), so two renders of one frame are identical
and a re-run chunk overwrites its frame with the same bytes. PNG is written here with zlib and
struct (no imaging dependency).

Run as ``python -m scheduler.dispatch.render --width W --height H --frame N --out FILE``
(the farm demo does: it starts faster than the full CLI); ``--to-frame M`` renders a chunk,
with ``#`` runs in ``--out`` replaced by the zero-padded frame number.
"""

from __future__ import annotations

import argparse
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

UHD_8K = (7680, 4320)


def render_plate(width: int, height: int, frame: int) -> np.ndarray:
    """The plate for ``frame`` as a ``(height, width, 3)`` uint8 RGB array."""
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be >= 1, got {width}x{height}")
    t = frame / 25.0
    y = (np.arange(height, dtype=np.float32) / max(height - 1, 1))[:, None]
    x = (np.arange(width, dtype=np.float32) / max(width - 1, 1))[None, :]
    # Sky: dusk gradient, warm at the horizon.
    top = np.array([0.05, 0.07, 0.22], np.float32)
    horizon = np.array([0.95, 0.55, 0.30], np.float32)
    mix = (y**1.6)[..., None]
    img = top * (1 - mix) + horizon * mix
    img = np.broadcast_to(img, (height, width, 3)).copy()
    # Sun drifting slowly across the sky.
    sx, sy = 0.2 + 0.6 * ((t * 0.02) % 1.0), 0.55
    aspect = width / height
    d2 = ((x - sx) * aspect) ** 2 + (y - sy) ** 2
    glow = np.exp(-d2 / 0.004).astype(np.float32) + 0.35 * np.exp(-d2 / 0.05).astype(np.float32)
    img += glow[..., None] * np.array([1.0, 0.8, 0.5], np.float32)
    # Stars: a fixed hash field that twinkles with the frame.
    ix = np.arange(width, dtype=np.uint32)[None, :]
    iy = np.arange(height, dtype=np.uint32)[:, None]
    h = (ix * np.uint32(73856093)) ^ (iy * np.uint32(19349663))
    h = (h ^ (h >> np.uint32(13))) * np.uint32(1274126177)
    star = ((h & np.uint32(0xFFF)) < 3) & (y < 0.45)
    twinkle = 0.6 + 0.4 * np.sin(t * 3.0 + (h >> np.uint32(20)).astype(np.float32))
    img += (star * twinkle * (1 - y / 0.45))[..., None].astype(np.float32)
    # Three ridgelines with parallax.
    for depth, (base, amp, speed, colour) in enumerate(
        (
            (0.62, 0.06, 0.010, (0.20, 0.14, 0.25)),
            (0.72, 0.08, 0.025, (0.12, 0.09, 0.15)),
            (0.84, 0.07, 0.050, (0.05, 0.04, 0.07)),
        )
    ):
        u = x * (3.0 + depth) + t * speed * 10
        ridge = base - amp * (
            0.6 * np.sin(u * 2.1 + depth) + 0.3 * np.sin(u * 5.3 + 1.7) + 0.1 * np.sin(u * 13.7)
        )
        mask = (y > ridge).astype(np.float32)[..., None]
        img = img * (1 - mask) + np.array(colour, np.float32) * mask
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def encode_png(rgb: np.ndarray, level: int = 6) -> bytes:
    """PNG bytes of an ``(h, w, 3)`` uint8 array (8-bit RGB, Sub filter on every row)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (h, w, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width, _ = rgb.shape
    sub = rgb.copy()
    sub[:, 1:, :] -= rgb[:, :-1, :]  # uint8 arithmetic wraps modulo 256, as PNG wants
    rows = np.empty((height, 1 + width * 3), np.uint8)
    rows[:, 0] = 1  # filter type Sub
    rows[:, 1:] = sub.reshape(height, width * 3)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
        + _chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> np.ndarray:
    """Decode a PNG written by :func:`encode_png` (8-bit RGB, filters None/Sub/Up only)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in {kind!r} chunk")
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + width * 3)
    out = np.empty((height, width * 3), np.uint8)
    prev = np.zeros(width * 3, np.uint8)
    for r in range(height):
        kind, line = rows[r, 0], rows[r, 1:].copy()
        if kind == 1:
            line = line.reshape(width, 3)
            line = np.cumsum(line, axis=0, dtype=np.uint64).astype(np.uint8).reshape(-1)
        elif kind == 2:
            line = line + prev
        elif kind != 0:
            raise ValueError(f"unsupported PNG filter {kind}")
        out[r], prev = line, line
    return out.reshape(height, width, 3)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def frame_path(pattern: str, frame: int) -> str:
    """``pattern`` with its run of ``#`` replaced by ``frame`` zero-padded to that width."""
    match = re.search(r"#+", pattern)
    if match is None:
        return pattern
    digits = len(match.group(0))
    return pattern[: match.start()] + f"{frame:0{digits}d}" + pattern[match.end() :]


def write_plate(width: int, height: int, frame: int, out: Path) -> int:
    """Render ``frame`` and write it to ``out`` as PNG; returns the file size in bytes."""
    data = encode_png(render_plate(width, height, frame))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``python -m scheduler.dispatch.render``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=UHD_8K[0])
    parser.add_argument("--height", type=int, default=UHD_8K[1])
    parser.add_argument("--frame", type=int, required=True)
    parser.add_argument("--to-frame", type=int, default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.width < 1 or args.height < 1:
        parser.error(f"--width/--height must be >= 1, got {args.width}x{args.height}")
    last = args.frame if args.to_frame is None else args.to_frame
    if last < args.frame:
        parser.error(f"--to-frame {last} is before --frame {args.frame}")
    count = last - args.frame + 1
    for i, frame in enumerate(range(args.frame, last + 1)):
        path = Path(frame_path(args.out, frame))
        size = write_plate(args.width, args.height, frame, path)
        print(f"frame {frame}: {path} ({size} bytes)", flush=True)
        print(f"PROGRESS {(i + 1) / count:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
