from __future__ import annotations

from typing import Any

import pytest


def tiny_farm() -> dict[str, Any]:
    """Two nodes (24 GB and 48 GB) and one pool; a render -> denoise -> encode job."""
    return {
        "late_cost_cny_per_hour": 1000,
        "nodes": [
            {"id": "n24", "slots": 2, "vram_gb": 24, "speed": 1.0},
            {"id": "n48", "slots": 1, "vram_gb": 48, "speed": 2.0, "available": [[0, 5000]]},
        ],
        "pools": [
            {
                "id": "cloud",
                "max_slots": 2,
                "vram_gb": 80,
                "speed": 2.0,
                "cost_per_gpu_hour_cny": 36,
                "startup_seconds": 120,
            }
        ],
        "jobs": [
            {
                "id": "plate",
                "priority": 2,
                "deadline": 4000,
                "vram_gb": 24,
                "tasks": [
                    {"id": "r1", "work": 1800},
                    {"id": "r2", "work": 1800},
                    {"id": "d1", "work": 400, "after": ["r1", "r2"]},
                    {"id": "enc", "work": 300, "after": ["d1"]},
                ],
            },
            {
                "id": "final",
                "priority": 1,
                "deadline": 3000,
                "vram_gb": 40,
                "tasks": [
                    {"id": "f1", "work": 2400},
                    {"id": "f2", "work": 2400, "durations": {"n48": 1300, "cloud": 1250}},
                ],
            },
        ],
    }


@pytest.fixture
def farm_json() -> dict[str, Any]:
    return tiny_farm()
