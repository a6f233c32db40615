from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from scheduler.dispatch.jobfile import JobFileError, load_job_file
from stagectl.cli.farm import app

GOOD = """
[[jobs]]
id = "sh010"
frame_start = 1001
frame_end = 1010
chunk_size = 4
argv = ["render", "--from", "{frame_start}", "--to", "{frame_end}", "--out", "{output}"]
output = "renders/sh010.####.png"
estimate_s = 2.5
vram_gb = 24
deadline_utc = 2030-03-01T18:00:00+08:00
priority = 2

[[jobs]]
id = "sh010-qc"
frame_start = 1
frame_end = 1
argv = ["qc", "{output}"]
output = "qc/report.txt"
after = ["sh010"]
"""


def test_good_file_chunks_and_resolves_paths(tmp_path: Path) -> None:
    f = tmp_path / "job.toml"
    f.write_text(GOOD)
    jobs = load_job_file(f)
    assert [t.id for t in jobs[0].tasks] == ["sh010:1001-1004", "sh010:1005-1008",
                                             "sh010:1009-1010"]
    assert jobs[0].output == str(tmp_path / "renders/sh010.####.png")
    assert jobs[0].deadline_utc is not None
    assert jobs[1].after == ("sh010",)


@pytest.mark.parametrize(("edit", "path", "expected"), [
    (("chunk_size = 4", "chunk_size = 0"), "jobs[0].chunk_size", "an integer >= 1"),
    (("frame_end = 1010", "frame_end = 900"), "jobs[0].frame_end", "frame_start"),
    (("estimate_s = 2.5", "estimate_s = -1"), "jobs[0].estimate_s", "a number >= 0"),
    (("priority = 2", "priorty = 2"), "jobs[0].priorty", "known keys"),
    (('"{output}"]\noutput = "renders', '"{outptu}"]\noutput = "renders'),
     "jobs[0].argv[6]", "only the tokens"),
    (('output = "renders/sh010.####.png"', 'output = "renders/sh010.png"'),
     "jobs[0].output", "a run of '#'"),
    (("deadline_utc = 2030-03-01T18:00:00+08:00", "deadline_utc = 2030-03-01T18:00:00"),
     "jobs[0].deadline_utc", "with an offset"),
    (('after = ["sh010"]', 'after = ["sh010-qc"]'), "jobs[1].after", "cannot wait for itself"),
    (("frame_start = 1\n", "frame_start = true\n"), "jobs[1].frame_start", "an integer >= 0"),
    (("vram_gb = 24", 'vram_gb = "lots"'), "jobs[0].vram_gb", "a number"),
])
def test_bad_files_name_file_key_value_and_expectation(
        tmp_path: Path, edit: tuple[str, str], path: str, expected: str) -> None:
    f = tmp_path / "bad.toml"
    assert edit[0] in GOOD
    f.write_text(GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(JobFileError) as info:
        load_job_file(f)
    message = str(info.value)
    assert message.startswith(f"{f}: {path}: got ")
    assert expected in message


def test_duplicate_job_id(tmp_path: Path) -> None:
    f = tmp_path / "dup.toml"
    f.write_text(GOOD + GOOD.split("[[jobs]]")[1].join(["[[jobs]]", ""]))
    with pytest.raises(JobFileError, match=r"jobs\[2\]\.id: got 'sh010'; expected a unique"):
        load_job_file(f)


def test_dependency_cycle_and_bad_toml(tmp_path: Path) -> None:
    f = tmp_path / "cycle.toml"
    f.write_text(GOOD.replace('priority = 2', 'priority = 2\nafter = ["sh010-qc"]'))
    with pytest.raises(JobFileError, match="dependency cycle"):
        load_job_file(f)
    f.write_text("[[jobs]\n")
    with pytest.raises(JobFileError, match="valid TOML"):
        load_job_file(f)


def test_submit_bad_file_exits_2_without_a_controller(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(GOOD.replace("chunk_size = 4", "chunk_size = -3"))
    result = CliRunner().invoke(app, ["submit", str(f), "--controller",
                                      "tcp://127.0.0.1:1"])
    assert result.exit_code == 2
    assert "jobs[0].chunk_size" in result.output and "-3" in result.output
