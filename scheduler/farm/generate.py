"""Seeded synthetic 8K render farms for tests and benchmarks.

A farm of ``n_slots`` on-prem GPUs in three node kinds (24, 48 and 80 GB; the bigger cards are
faster), one node down for maintenance part of the time, and one rented pool of fast 80 GB
GPUs. Jobs are 8K plates (render chunks only) or finals (render chunks, a denoise per chunk,
one encode at the end), with deadlines spread around the time the farm needs for the load,
so the planner must choose between renting, being late and packing the nodes well.
"""

from __future__ import annotations

import random
from typing import Any

NODE_KINDS = (
    # (name, vram_gb, speed, slots per node)
    ("rtx24", 24, 1.0, 4),
    ("a48", 48, 1.5, 4),
    ("h80", 80, 2.2, 8),
)


def synthetic_farm(n_chunks: int, n_slots: int, seed: int = 0) -> dict[str, Any]:
    """A farm JSON object with about ``n_chunks`` tasks on ``n_slots`` node GPUs."""
    rng = random.Random(seed)
    nodes: list[dict[str, Any]] = []
    # Split the slots roughly 40/35/25 between the kinds, whole nodes; the last kind takes the
    # rest (its last node may be smaller).
    shares = (0.4, 0.35, 0.25)
    left = n_slots
    for k, ((name, vram, speed, per_node), share) in enumerate(
        zip(NODE_KINDS, shares, strict=True)
    ):
        last = k == len(NODE_KINDS) - 1
        want = left if last else min(left, per_node * max(1, round(n_slots * share / per_node)))
        i = 0
        while want > 0:
            i += 1
            slots = min(per_node, want)
            nodes.append({"id": f"{name}-{i:02d}", "slots": slots, "vram_gb": vram, "speed": speed})
            want -= slots
            left -= slots
    jobs: list[dict[str, Any]] = []
    chunks = 0
    j = 0
    while chunks < n_chunks:
        j += 1
        final = rng.random() < 0.4
        vram = rng.choice((24, 24, 32, 40, 48, 64))
        priority = rng.choice((1, 1, 2, 3, 5))
        size = min(rng.randint(4, 16), max(1, n_chunks - chunks))
        render_s = rng.choice((900, 1200, 1800, 2400, 3600))
        tasks: list[dict[str, Any]] = []
        if final:
            n_render = max(1, (size - 1) // 2)
            for c in range(n_render):
                tasks.append({"id": f"j{j}-r{c}", "work": render_s * rng.uniform(0.8, 1.2)})
            for c in range(min(n_render, size - 1 - n_render)):
                tasks.append(
                    {
                        "id": f"j{j}-d{c}",
                        "work": 240 * rng.uniform(0.8, 1.2),
                        "after": [f"j{j}-r{c}"],
                    }
                )
            renders = [t["id"] for t in tasks]
            tasks.append({"id": f"j{j}-enc", "work": 600, "after": renders})
        else:
            for c in range(size):
                tasks.append({"id": f"j{j}-r{c}", "work": render_s * rng.uniform(0.8, 1.2)})
        for t in tasks:
            t["work"] = round(t["work"])
        chunks += len(tasks)
        jobs.append({"id": f"j{j}", "priority": priority, "vram_gb": vram, "tasks": tasks})

    # Deadlines: spread over 0.25x..0.9x the time the nodes need for all the work, so the
    # nodes alone cannot make every deadline and some renting (or lateness) is needed.
    capacity = sum(n["slots"] * n["speed"] for n in nodes)
    total_work = sum(t["work"] for job in jobs for t in job["tasks"])
    load_s = total_work / capacity
    for job in jobs:
        job["deadline"] = round(load_s * rng.uniform(0.25, 0.9) + 1800)
    # One node of the first kind is down for maintenance in the middle of the load.
    down = (round(load_s * 0.3), round(load_s * 0.5))
    nodes[0]["available"] = [[0, down[0]], [down[1], None]]
    pools = [
        {
            "id": "cloud-h80",
            "max_slots": max(4, n_slots // 2),
            "vram_gb": 80,
            "speed": 2.2,
            "cost_per_gpu_hour_cny": 28.5,
            "startup_seconds": 300,
        }
    ]
    return {"late_cost_cny_per_hour": 1000, "nodes": nodes, "pools": pools, "jobs": jobs}
