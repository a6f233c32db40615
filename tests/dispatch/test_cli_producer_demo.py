"""`stagectl farm demo` leaves its farm where `farm status` finds it (issue 15)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.dispatch.test_cli_producer import cli, fits, flat


def test_demo_leaves_its_farm_for_status(tmp_path: Path) -> None:
    result = cli("demo", "--scale", "64", "--timeout-s", "40", cwd=tmp_path, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    fits(result.stdout)
    tail = flat(result.stdout.split("farm demo summary")[-1])
    assert "3 agents;" in tail and "1 plans" not in tail
    assert "next: stagectl farm status --db var/farm/demo/farm.sqlite" in tail, tail
    after = cli("status", "--db", "var/farm/demo/farm.sqlite", cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    fits(after.stdout)
    words = flat(after.stdout)
    for job in ("sh010-plate", "sh020-plate", "sh010-lookdev"):
        assert job in words
    assert words.count("finished") == 3
    assert "read from var/farm/demo/farm.sqlite" in words
    doc: dict[str, Any] = json.loads(cli("status", "--db", "var/farm/demo/farm.sqlite",
                                         "--json", cwd=tmp_path).stdout)
    assert [j["state"] for j in doc["jobs"]] == ["done"] * 3
    # a second demo replaces the first one's farm instead of refusing its job ids
    again = cli("demo", "--scale", "64", "--timeout-s", "40", cwd=tmp_path, timeout=90)
    assert again.returncode == 0, again.stdout + again.stderr
    t0 = time.time()
    doc2 = json.loads(cli("status", "--db", "var/farm/demo/farm.sqlite", "--json",
                          cwd=tmp_path).stdout)
    assert len(doc2["jobs"]) == 3
    assert all(t0 - 120 < j["finished_utc"] <= t0 for j in doc2["jobs"])
