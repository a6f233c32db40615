"""Acceptance pass: the farm CLI's help and messages say what their source says.

Rich reads ``[word]`` as markup, so a help text naming a TOML table (``[controller]``,
``[[pools]]``, ``[stage]``) lost the name unless it was escaped; and the farm commands'
``--server`` help sent a wrangler to a ``--db`` option most of them do not have.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from stagectl.cli.main import app

runner = CliRunner()


def _help(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return re.sub(r"\s+", " ", re.sub(r"[│╭╮╰╯─]", " ", result.output))


@pytest.mark.parametrize(("command", "text"), [
    (("farm", "controller"), "Farm TOML: [controller] settings and [[pools]]."),
    (("farm", "submit"), "Job TOML ([[jobs]] tables)."),
    (("farm", "status"), "the stage config's [stage] timezone"),
    (("farm", "demo"), "the stage config's [stage] timezone"),
])
def test_toml_table_names_survive_the_help(command: tuple[str, ...], text: str) -> None:
    assert text in _help(*command)


@pytest.mark.parametrize("command", ["status", "nodes", "cost"])
def test_farm_server_help_names_no_missing_option(command: str) -> None:
    text = _help("farm", command)
    assert "instead of asking a controller" in text
    assert "instead of --db" not in text


def test_cost_without_pools_names_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from stagectl.cli import farm

    monkeypatch.setattr(farm, "_call", lambda *a, **k: {
        "pools": [], "spent_cny": 0.0, "forecast_cny": 0.0})
    result = runner.invoke(app, ["farm", "cost"])
    assert result.exit_code == 0, result.output
    assert "([[pools]] in the controller's --config)" in result.output
