from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.farm.checker import check_plan
from scheduler.farm.fjsp import load_fjs, parse_fjs
from scheduler.farm.model import FarmInputError, parse_farm
from scheduler.farm.planner import plan_farm
from tests.conftest import require_path

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scheduling"
MK01 = DATA / "mk01.fjs"


def test_parse_small_instance() -> None:
    text = "2 3 1.5\n2 1 1 5 2 2 3 3 4\n1 1 3 7\n"
    data = parse_fjs(text, "tiny")
    farm = parse_farm(data)
    assert [n.id for n in farm.nodes] == ["m1", "m2", "m3"]
    tasks = {t.id: t for _, t in farm.tasks()}
    assert tasks["j1o1"].durations_s == {"m1": 5}
    assert tasks["j1o2"].durations_s == {"m2": 3, "m3": 4}
    assert tasks["j1o2"].after == ("j1o1",)
    assert tasks["j2o1"].durations_s == {"m3": 7}
    plan = plan_farm(farm, "makespan", time_limit_s=2)
    assert plan.makespan_s == 8  # j1: 5 on m1 then 3 on m2; j2 on m3 in parallel
    assert plan.status == "optimal"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("", "tiny"),
        ("x y\n", "tiny:line 1"),
        ("2 3\n1 1 1 5\n", "tiny"),
        ("1 3\n1 1 9 5\n", "tiny:line 2"),
        ("1 3\n2 1 1 5\n", "tiny:line 2"),
        ("1 3\n1 1 1 5 7\n", "tiny:line 2"),
    ],
)
def test_malformed_files(text: str, where: str) -> None:
    with pytest.raises(FarmInputError) as info:
        parse_fjs(text, "tiny")
    assert info.value.path == where


def test_mk01_parses_and_solves_to_a_valid_plan() -> None:
    require_path(MK01)
    farm = load_fjs(MK01)
    assert len(farm.nodes) == 6
    assert len(farm.jobs) == 10
    assert sum(len(j.tasks) for j in farm.jobs) == 55
    plan = plan_farm(farm, "makespan", time_limit_s=3)
    report = check_plan(farm, plan.assignments, "makespan")
    assert report.ok, report.violations
    assert report.makespan_s == plan.makespan_s
    assert 40 <= plan.makespan_s <= 42  # 40 is optimal (Brandimarte 1993)
    assert plan.bound <= 40
