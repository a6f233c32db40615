"""A farm plan leaves the process's SIGINT handler alone (CP-SAT's own catching is off).

When CP-SAT catches SIGINT itself it resets it to the default when a solve returns: the next
Ctrl-C kills a farm controller or CLI outright, with no clean-up. Each of the farm's CP-SAT
models (interval, assignment, the textbook rcmax model) is solved once, then SIGINT is sent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KEEPS_HANDLER = """
import os, signal
from scheduler.farm.generate import synthetic_farm
from scheduler.farm.model import parse_farm
from scheduler.farm.planner import plan_farm
from scheduler.farm.rcmax import textbook_makespan
hits = []
signal.signal(signal.SIGINT, lambda signum, frame: hits.append(signum))
farm = parse_farm(synthetic_farm(30, 6, seed=2))
plan_farm(farm, "cost", time_limit_s=1)          # interval model (cost)
plan_farm(farm, "makespan", time_limit_s=1)      # assignment model when it applies
textbook_makespan([[3, 4], [2, 5], [4, 1]], 1.0, 1)
os.kill(os.getpid(), signal.SIGINT)
print("handled", len(hits))
"""


def test_farm_solves_leave_the_process_sigint_handler_alone() -> None:
    done = subprocess.run([sys.executable, "-c", KEEPS_HANDLER], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.split()[-2:] == ["handled", "1"], done.stdout
