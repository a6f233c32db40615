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


def _commands(group: str) -> list[str]:
    import importlib

    import typer.main

    module = importlib.import_module(f"stagectl.cli.{group}")
    click_group = typer.main.get_command(module.app)
    return sorted(click_group.commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", [("book", c) for c in _commands("book")]
                         + [("farm", c) for c in _commands("farm")])
def test_help_description_wraps_evenly_at_80_columns(command: tuple[str, str]) -> None:
    """A docstring line wider than the terminal wrapped into a ragged stub line."""
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"},
                           terminal_width=80)
    assert result.exit_code == 0, result.output
    text = result.output.split("╭─")[0]
    lines = [line.rstrip() for line in text.splitlines()]
    assert "``" not in text
    for line, after in zip(lines, lines[1:], strict=False):
        if line.strip() and after.strip() and not line.lstrip().startswith("Usage:"):
            assert len(line) >= 50, f"ragged help line {line!r} in {' '.join(command)}"
