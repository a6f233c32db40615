from __future__ import annotations

import copy
from typing import Any

import pytest

from scheduler.farm.model import FarmInputError, eligible_durations, parse_farm


def _error(data: dict[str, Any]) -> FarmInputError:
    with pytest.raises(FarmInputError) as info:
        parse_farm(data)
    return info.value


def test_parses_durations_and_eligibility(farm_json: dict[str, Any]) -> None:
    farm = parse_farm(farm_json)
    by_id = {t.id: (j, t) for j, t in farm.tasks()}
    job, task = by_id["r1"]
    got = {r.id: d for r, d in eligible_durations(farm, job, task)}
    assert got == {"n24": 1800, "n48": 900, "cloud": 900}
    job, task = by_id["f1"]  # 40 GB: the 24 GB node is out
    assert {r.id for r, _ in eligible_durations(farm, job, task)} == {"n48", "cloud"}
    job, task = by_id["f2"]  # explicit durations restrict the resources
    assert {r.id: d for r, d in eligible_durations(farm, job, task)} == {
        "n48": 1300,
        "cloud": 1250,
    }


def test_negative_work_names_the_path(farm_json: dict[str, Any]) -> None:
    farm_json["jobs"][1]["tasks"][0]["work"] = -5
    err = _error(farm_json)
    assert str(err) == "jobs[1].tasks[0].work: must be >= 0, got -5"


def test_cycle_is_reported(farm_json: dict[str, Any]) -> None:
    farm_json["jobs"][0]["tasks"][0]["after"] = ["enc"]
    err = _error(farm_json)
    assert err.path.startswith("jobs[0].tasks[")
    assert "dependency cycle" in err.reason
    assert "r1" in err.reason and "enc" in err.reason


def test_task_that_fits_nowhere(farm_json: dict[str, Any]) -> None:
    farm_json["jobs"][1]["vram_gb"] = 96
    err = _error(farm_json)
    assert err.path == "jobs[1].tasks[0]"
    assert "fits nowhere" in err.reason and "96 GB" in err.reason


def test_task_longer_than_every_window_fits_nowhere() -> None:
    data = {
        "nodes": [{"id": "n", "slots": 1, "vram_gb": 24, "available": [[0, 100]]}],
        "jobs": [{"id": "j", "tasks": [{"id": "t", "work": 500}]}],
    }
    assert "fits nowhere" in _error(data).reason


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d["nodes"][0].update(slots=0), "nodes[0].slots"),
        (lambda d: d["nodes"][0].update(speed=0), "nodes[0].speed"),
        (lambda d: d["nodes"][0].update(colour="red"), "nodes[0].colour"),
        (lambda d: d["nodes"][1].update(available=[[50, 10]]), "nodes[1].available[0]"),
        (lambda d: d["pools"][0].pop("max_slots"), "pools[0].max_slots"),
        (lambda d: d["jobs"][0].update(deadline=1.5), "jobs[0].deadline"),
        (lambda d: d["jobs"][0]["tasks"][1].update(id="r1"), "jobs[0].tasks[1].id"),
        (lambda d: d["jobs"][0]["tasks"][2].update(after=["nope"]), "jobs[0].tasks[2].after[0]"),
        (
            lambda d: d["jobs"][1]["tasks"][1].update(durations={"ghost": 5}),
            "jobs[1].tasks[1].durations.ghost",
        ),
        (lambda d: d["jobs"][0]["tasks"][0].pop("work"), "jobs[0].tasks[0].work"),
    ],
)
def test_bad_values_name_their_path(farm_json: dict[str, Any], mutate: Any, path: str) -> None:
    data = copy.deepcopy(farm_json)
    mutate(data)
    assert _error(data).path == path


def test_job_level_dependency_expands_to_all_tasks(farm_json: dict[str, Any]) -> None:
    farm_json["jobs"][1]["after"] = ["plate"]
    farm = parse_farm(farm_json)
    f1 = next(t for _, t in farm.tasks() if t.id == "f1")
    assert set(f1.after) == {"r1", "r2", "d1", "enc"}
