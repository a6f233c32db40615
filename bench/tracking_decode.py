"""FreeD decode cost: our per-packet decoder against a bare struct.unpack floor.

Measures, in one run:
- ``freed.decode`` per packet (length, type, checksum, sign extension, scaling, dataclass),
- the floor: one ``struct.unpack`` of the 29 bytes into raw fields, nothing else,
- ``freed.decode_batch`` throughput on a replay-sized buffer, in packets per second.

Each figure is the median of several repeats. The last stdout line is one JSON object.
"""

from __future__ import annotations

import json
import random
import statistics
import struct
import time
from collections.abc import Callable

from drivers.tracking import freed

FLOOR = struct.Struct(">BB3s3s3s3s3s3s3s3sHB")
N_PACKETS = 2000
REPEATS = 7
BATCH_PACKETS = 100_000


def packets(n: int) -> list[bytes]:
    rng = random.Random(1)
    return [
        freed.encode(
            freed.FreeDPacket(
                rng.randrange(256),
                rng.uniform(-180, 180),
                rng.uniform(-90, 90),
                rng.uniform(-180, 180),
                rng.uniform(-1e5, 1e5),
                rng.uniform(-1e5, 1e5),
                rng.uniform(0, 5e3),
                rng.randrange(1 << 24),
                rng.randrange(1 << 24),
                rng.randrange(1 << 16),
            )
        )
        for _ in range(n)
    ]


def per_packet_ns(fn: Callable[[bytes], object], data: list[bytes]) -> float:
    runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter_ns()
        for d in data:
            fn(d)
        runs.append((time.perf_counter_ns() - t0) / len(data))
    return statistics.median(runs)


def main() -> None:
    data = packets(N_PACKETS)
    ours = per_packet_ns(freed.decode, data)
    floor = per_packet_ns(FLOOR.unpack, data)
    buf = b"".join(data) * (BATCH_PACKETS // N_PACKETS)
    batch_runs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        result = freed.decode_batch(buf)
        batch_runs.append(time.perf_counter() - t0)
    assert result.rejected_count == 0 and len(result.packets) == BATCH_PACKETS
    batch_pps = BATCH_PACKETS / statistics.median(batch_runs)
    print(f"freed.decode        {ours:8.0f} ns/packet  ({1e9 / ours:,.0f} packets/s)")
    print(f"struct.unpack floor {floor:8.0f} ns/packet")
    print(f"decode_batch        {1e9 / batch_pps:8.1f} ns/packet  ({batch_pps:,.0f} packets/s)")
    print(
        json.dumps(
            {
                "bench": "tracking_decode",
                "metric": "freed_decode_ns_per_packet",
                "unit": "ns",
                "value": round(ours, 1),
                "baseline": round(floor, 1),
                "ratio": round(ours / floor, 2),
                "batch_packets_per_s": round(batch_pps),
                "goal": "per-packet decode within 10x the struct.unpack floor; "
                "batch >= 1e6 packets/s",
            }
        )
    )


if __name__ == "__main__":
    main()
