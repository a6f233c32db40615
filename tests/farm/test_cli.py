from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stagectl.cli.main import app
from tests.conftest import require_path

runner = CliRunner()
MK01 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "scheduling" / "mk01.fjs"


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "farm.json"
    path.write_text(json.dumps(data))
    return path


def test_plan_writes_the_contract(tmp_path: Path, farm_json: dict[str, Any]) -> None:
    out = tmp_path / "plan.json"
    result = runner.invoke(
        app,
        [
            "farm",
            "plan",
            "--input",
            str(_write(tmp_path, farm_json)),
            "--output",
            str(out),
            "--time-limit",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert plan["status"] in {"optimal", "feasible", "greedy"}
    assert len(plan["assignments"]) == 6
    assert plan["objective"] <= plan["greedy_objective"]


def test_replan_from_previous_output(tmp_path: Path, farm_json: dict[str, Any]) -> None:
    src = _write(tmp_path, farm_json)
    first = tmp_path / "first.json"
    args = ["farm", "plan", "--input", str(src), "--time-limit", "1"]
    assert runner.invoke(app, [*args, "--output", str(first)]).exit_code == 0
    second = tmp_path / "second.json"
    result = runner.invoke(app, [*args, "--output", str(second), "--previous", str(first)])
    assert result.exit_code == 0, result.output
    assert json.loads(second.read_text())["objective"] == json.loads(first.read_text())["objective"]


def test_plan_makespan_to_stdout(tmp_path: Path, farm_json: dict[str, Any]) -> None:
    result = runner.invoke(
        app,
        [
            "farm",
            "plan",
            "--input",
            str(_write(tmp_path, farm_json)),
            "--objective",
            "makespan",
            "--time-limit",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    start = result.stdout.index("{")
    plan = json.loads(result.stdout[start : result.stdout.rindex("}") + 1])
    assert plan["objective"] == plan["makespan"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["jobs"][1]["tasks"][0].update(work=-5),
            "jobs[1].tasks[0].work: must be >= 0, got -5",
        ),
        (lambda d: d["jobs"][0]["tasks"][0].update(after=["enc"]), "dependency cycle"),
        (lambda d: d["jobs"][1].update(vram_gb=200), "fits nowhere"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, farm_json: dict[str, Any], mutate: Any, message: str
) -> None:
    mutate(farm_json)
    result = runner.invoke(
        app, ["farm", "plan", "--input", str(_write(tmp_path, farm_json)), "--time-limit", "1"]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_bad_json_and_objective_exit_2(tmp_path: Path, farm_json: dict[str, Any]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert runner.invoke(app, ["farm", "plan", "--input", str(bad)]).exit_code == 2
    src = _write(tmp_path, farm_json)
    result = runner.invoke(app, ["farm", "plan", "--input", str(src), "--objective", "speed"])
    assert result.exit_code == 2


def test_unplannable_farm_exits_1(tmp_path: Path) -> None:
    data = {
        "nodes": [{"id": "n", "slots": 1, "vram_gb": 24, "available": [[0, 100]]}],
        "jobs": [{"id": "j", "tasks": [{"id": "a", "work": 80}, {"id": "b", "work": 80}]}],
    }
    result = runner.invoke(
        app, ["farm", "plan", "--input", str(_write(tmp_path, data)), "--time-limit", "1"]
    )
    assert result.exit_code == 1


def test_bench_fjsp_prints_one_json_line() -> None:
    require_path(MK01)
    result = runner.invoke(app, ["farm", "bench-fjsp", str(MK01), "--time-limit", "3"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(line) == {"instance", "makespan", "bound", "solve_seconds"}
    assert line["instance"] == "mk01"
    assert 40 <= line["makespan"] <= 42


def test_bench_fjsp_bad_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.fjs"
    bad.write_text("2 3\n1 1 9 5\n")
    result = runner.invoke(app, ["farm", "bench-fjsp", str(bad), "--time-limit", "1"])
    assert result.exit_code == 2
    assert "bad.fjs: header says 2 jobs" in " ".join(result.output.split())
