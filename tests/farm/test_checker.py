"""The checker on hand-made plans: one valid, then one violation at a time."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from scheduler.farm.checker import check_plan
from scheduler.farm.model import Assignment, parse_farm


def _valid() -> list[Assignment]:
    # n24 speed 1, n48 speed 2 (window 0..5000), cloud speed 2 from 120 s at 36 CNY/h.
    return [
        Assignment("r1", "n24", 0, 0, 1800),
        Assignment("r2", "n24", 1, 0, 1800),
        Assignment("d1", "n24", 0, 1800, 2200),
        Assignment("enc", "n24", 0, 2200, 2500),
        Assignment("f1", "n48", 0, 0, 1200),
        Assignment("f2", "cloud", 0, 120, 1370),
    ]


def test_valid_plan_and_objective(farm_json: dict[str, Any]) -> None:
    report = check_plan(parse_farm(farm_json), _valid())
    assert report.ok, report.violations
    assert report.rent_cny == pytest.approx(1250 / 3600 * 36)
    assert report.late_cost_cny == 0
    assert report.makespan_s == 2500
    assert report.job_finish_s == {"plate": 2500, "final": 1370}
    assert report.objective("makespan") == 2500


def test_lateness_is_priced(farm_json: dict[str, Any]) -> None:
    plan = _valid()
    plan[3] = Assignment("enc", "n24", 0, 4000, 4300)  # plate deadline 4000, priority 2
    report = check_plan(parse_farm(farm_json), plan)
    assert report.ok, report.violations
    assert report.job_late_s["plate"] == 300
    assert report.late_cost_cny == pytest.approx(2 * 300 / 3600 * 1000)


@pytest.mark.parametrize(
    ("index", "change", "expect"),
    [
        (1, {"slot": 0}, "overlap"),
        (1, {"slot": 2}, "slot out of range"),
        (0, {"resource": "mars"}, "unknown resource"),
        (4, {"resource": "n24", "end_s": 2400}, "VRAM"),
        (5, {"resource": "n24", "slot": 1, "start_s": 1800, "end_s": 3050}, "explicit durations"),
        (0, {"end_s": 1700}, "expected 1800 s"),
        (2, {"start_s": 1700, "end_s": 2100}, "starts before"),
        (4, {"start_s": 4000, "end_s": 5200}, "availability windows"),
        (5, {"start_s": 60, "end_s": 1310}, "startup"),
        (0, {"start_s": -10, "end_s": 1790}, "before now"),
    ],
)
def test_each_violation_is_caught(
    farm_json: dict[str, Any], index: int, change: dict[str, Any], expect: str
) -> None:
    plan = _valid()
    plan[index] = replace(plan[index], **change)
    report = check_plan(parse_farm(farm_json), plan)
    assert any(expect in v for v in report.violations), report.violations


def test_missing_and_duplicate_tasks(farm_json: dict[str, Any]) -> None:
    plan = _valid()
    report = check_plan(parse_farm(farm_json), [*plan[:-1], plan[0]])
    assert any("'f2': not assigned" in v for v in report.violations)
    assert any("more than once" in v for v in report.violations)


def test_pool_capacity(farm_json: dict[str, Any]) -> None:
    # Three pool tasks at once on a two-slot pool, written with duplicate slot numbers
    # spread so that no single slot overlaps: only the capacity sweep can see it.
    farm_json["pools"][0]["max_slots"] = 2
    farm = parse_farm(farm_json)
    plan = _valid()
    plan[0] = Assignment("r1", "cloud", 0, 200, 1100)
    plan[1] = Assignment("r2", "cloud", 1, 200, 1100)
    plan[5] = Assignment("f2", "cloud", 2, 200, 1450)
    report = check_plan(farm, plan)
    assert any("max_slots 2" in v for v in report.violations), report.violations
