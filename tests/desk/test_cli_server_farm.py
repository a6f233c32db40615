"""``stagectl farm status|nodes|cost --server URL``: the farm through a real desk.

A real controller process (and for one test an agent) on loopback, a desk (uvicorn, port 0)
configured with its address, and the CLI asked both ways: through the desk and straight at
the controller. The output must be the same (the desk's reply is turned back into the
controller's shape and goes through the same formatting).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from stagectl.cli.main import app
from stagectl.desk.server import DeskServer
from tests.desk.conftest import Template, start_desk
from tests.dispatch.conftest import Farm, work_job
from tests.dispatch.conftest import farm as farm  # the fixture

runner = CliRunner()
ENV = {"COLUMNS": "120", "STAGECTL_TZ": "Asia/Shanghai", "STAGECTL_DESK_URL": "",
       "STAGECTL_FARM_CONTROLLER": ""}


@pytest.fixture
def farm_desk(farm: Farm, desk_template: Template,
              tmp_path: Path) -> Iterator[tuple[Farm, DeskServer, str]]:
    farm.start_controller()
    (tmp_path / "desk").mkdir()
    server = start_desk(desk_template, tmp_path / "desk", farm_controller=farm.address)
    try:
        yield farm, server, desk_template.tokens["viewer"]
    finally:
        server.stop()


def run(*args: str, token: str = "", code: int = 0) -> Result:
    result = runner.invoke(app, ["farm", *args], env={**ENV, "STAGECTL_DESK_TOKEN": token})
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def _steady(text: str) -> str:
    """The output without the line that names the current minute."""
    return "\n".join(line for line in text.splitlines() if "; now " not in line)


def test_status_nodes_and_cost_read_the_same_through_the_desk(
        farm_desk: tuple[Farm, DeskServer, str], tmp_path: Path) -> None:
    farm, server, token = farm_desk
    jobs = [work_job("sh010-comp-v003", tmp_path / "out", 1, 3),
            work_job("sh020-bg-plate", tmp_path / "out", 1, 2, vram_gb=64)]
    farm.request("submit", jobs=[j.to_wire() for j in jobs])

    via_desk = json.loads(run("status", "--server", server.url, "--json", token=token).stdout)
    direct = json.loads(run("status", "--controller", farm.address, "--json").stdout)
    via_desk.pop("now")
    direct.pop("now")
    assert via_desk == direct
    assert {j["id"] for j in via_desk["jobs"]} == {"sh010-comp-v003", "sh020-bg-plate"}
    assert all(j["warning"] and "no agents" in j["warning"] for j in via_desk["jobs"])

    table = run("status", "--server", server.url, token=token).stdout
    assert _steady(table) == _steady(run("status", "--controller", farm.address).stdout)
    assert "sh010-comp-v003" in table and "no agents" in table

    for cmd in ("nodes", "cost"):
        for extra in ((), ("--json",)):
            a = run(cmd, "--server", server.url, *extra, token=token).stdout
            b = run(cmd, "--controller", farm.address, *extra).stdout
            assert a == b, (cmd, extra)


def test_status_with_an_agent_through_the_desk(farm_desk: tuple[Farm, DeskServer, str],
                                               tmp_path: Path) -> None:
    farm, server, token = farm_desk
    farm.start_agent("gpu-node-01", "--vram-gb", "24")
    farm.wait_nodes(1)
    nodes = json.loads(run("nodes", "--server", server.url, "--json", token=token).stdout)
    assert [n["id"] for n in nodes] == ["gpu-node-01"]
    text = run("nodes", "--server", server.url, token=token).stdout
    assert "gpu-node-01" in text and "24 GB" in text


def test_no_controller_behind_the_desk_is_one_clear_line(
        desk_template: Template, tmp_path: Path) -> None:
    server = start_desk(desk_template, tmp_path)
    try:
        r = run("status", "--server", server.url, token=desk_template.tokens["viewer"],
                code=1)
        assert "render farm controller does not answer" in r.stderr
        assert "503" in r.stderr and "Traceback" not in r.stderr
        r = run("cost", "--server", server.url, token="sdt_bad", code=1)
        assert "refused the token (HTTP 401" in r.stderr
    finally:
        server.stop()
