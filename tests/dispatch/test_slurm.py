"""SlurmPool against a real single-node Slurm (scripts/slurm-up.sh), plus its parsers offline.

The integration tests need slurmctld/slurmd running: under CI=true a missing Slurm fails the
run (.ci/run installs it and starts it with scripts/slurm-up.sh); on a laptop they skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.dispatch.pool import TERMINAL, PoolJobState, open_backend
from scheduler.dispatch.slurm import (
    SQUEUE_TEXT_FORMAT,
    PoolError,
    SlurmPool,
    _sacct_rows,
    _squeue_rows,
    _squeue_text_rows,
    _states,
    cost_cny,
    decode_exit_code,
    job_exit_code,
    job_script,
    pool_state,
    squeue_command,
)
from tests.conftest import IN_CI, REPO
from tests.dispatch.fixtures.slurm import make_fixtures

SLURM_DIR = Path(os.environ.get("STAGECTL_SLURM_DIR", "/tmp/stagectl-slurm"))
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "slurm"
VERSIONS = ("22.05", "23.02", "23.11", "24.05")
SLURM_CONF = SLURM_DIR / "etc" / "slurm.conf"
PY = sys.executable

# A program that writes argv[2] to the file argv[1]: arguments must arrive byte for byte.
WRITE = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])"
TRICKY = "it's $HOME `id` $(id) \"q\" ; rm -rf / \\ * \n second line"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {reason}; .ci/run must install Slurm and run scripts/slurm-up.sh")
    pytest.skip(reason)


def _node_up() -> bool:
    env = {**os.environ, "SLURM_CONF": str(SLURM_CONF)}
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mixed", "allocated"))


@pytest.fixture(scope="session")
def slurm_conf() -> Path:
    """The running single-node Slurm's config; started here when root and Slurm is installed."""
    if shutil.which("sbatch") is None or not Path("/usr/sbin/slurmctld").exists():
        _unavailable("Slurm is not installed (sudo scripts/slurm-up.sh installs Debian's "
                     "slurmctld, slurmd, slurm-client and munge, and starts them)")
    if SLURM_CONF.exists() and _node_up():
        return SLURM_CONF
    if os.geteuid() != 0:
        _unavailable(f"no Slurm running with {SLURM_CONF}: run sudo scripts/slurm-up.sh")
    done = subprocess.run(["bash", str(REPO / "scripts" / "slurm-up.sh")],
                          env={**os.environ, "STAGECTL_SLURM_NO_INSTALL": "1"},
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not _node_up():
        _unavailable(f"scripts/slurm-up.sh failed ({done.returncode}): {done.stderr.strip()}")
    return SLURM_CONF


Submit = Callable[..., str]


@pytest.fixture
def pool(slurm_conf: Path) -> SlurmPool:
    return SlurmPool(slurm_conf=slurm_conf, timeout_s=20)


@pytest.fixture
def submit(pool: SlurmPool, tmp_path: Path) -> Iterator[Submit]:
    """``pool.submit`` with test defaults; every job still queued or running is cancelled after."""
    ids: list[str] = []

    def _submit(argv: list[str], **kw: object) -> str:
        args: dict[str, object] = {"gpus": 0, "after": [], "deadline_utc": None,
                                   "workdir": tmp_path}
        args.update(kw)
        job_id = pool.submit(str(args.pop("name", "stagectl-test")), argv, **args)  # type: ignore[arg-type]
        ids.append(job_id)
        return job_id

    yield _submit
    for job_id in ids:
        pool.cancel(job_id)


def wait(pool: SlurmPool, job_id: str, states: frozenset[str] = TERMINAL,
         timeout_s: float = 30.0) -> PoolJobState:
    deadline = time.monotonic() + timeout_s
    while True:
        state = pool.poll([job_id]).get(job_id)
        if state is not None and state.state in states:
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} not in {sorted(states)} after {timeout_s} s: {state}")
        time.sleep(0.2)


# --- against the real Slurm --------------------------------------------------------------------

def test_job_runs_argv_verbatim_and_completes(pool: SlurmPool, submit: Submit,
                                              tmp_path: Path) -> None:
    out = tmp_path / "out file.txt"
    job = submit([PY, "-c", f"import time; time.sleep(1.2); {WRITE}", str(out), TRICKY],
                 name="write file")
    assert job.isdigit()
    state = wait(pool, job)
    assert state == PoolJobState(job, "COMPLETED", state.elapsed_s, 0)
    assert 1.0 <= state.elapsed_s <= 10.0
    assert out.read_text() == TRICKY
    assert (tmp_path / f"slurm-{job}.out").exists()


def test_afterok_dependency_orders_jobs(pool: SlurmPool, submit: Submit, tmp_path: Path) -> None:
    stamp = "import pathlib, sys, time; pathlib.Path(sys.argv[1]).write_text(repr(time.time()))"
    first = submit([PY, "-c", f"import time; time.sleep(2); {stamp}", str(tmp_path / "a")])
    second = submit([PY, "-c", stamp, str(tmp_path / "b")], after=[first])
    assert pool.poll([second])[second].state == "PENDING"
    wait(pool, first, frozenset({"RUNNING"}))
    assert pool.poll([second])[second].state == "PENDING"  # first still running
    assert wait(pool, second).state == "COMPLETED"
    assert wait(pool, first).state == "COMPLETED"
    assert float((tmp_path / "b").read_text()) >= float((tmp_path / "a").read_text())


def test_failing_job_reports_exit_code_and_cancels_dependants(pool: SlurmPool,
                                                              submit: Submit) -> None:
    bad = submit([PY, "-c", "import sys; sys.exit(3)"])
    after_bad = submit([PY, "-c", "pass"], after=[bad])
    state = wait(pool, bad)
    assert (state.state, state.exit_code) == ("FAILED", 3)
    dependant = wait(pool, after_bad)
    assert (dependant.state, dependant.elapsed_s, dependant.exit_code) == ("CANCELLED", 0.0, None)


def test_cancel_running_and_pending(pool: SlurmPool, submit: Submit) -> None:
    running = submit([PY, "-c", "import time; time.sleep(60)"])
    pending = submit([PY, "-c", "pass"], after=[running])
    wait(pool, running, frozenset({"RUNNING"}))
    pool.cancel(pending)
    pool.cancel(running)
    states = {j: wait(pool, j) for j in (running, pending)}
    assert states[running].state == "CANCELLED"
    assert states[running].elapsed_s < 30
    assert states[pending] == PoolJobState(pending, "CANCELLED", 0.0, None)
    pool.cancel(running)  # already ended: no error


def test_cancel_of_a_finished_job_keeps_its_end_state(pool: SlurmPool, submit: Submit) -> None:
    done = submit([PY, "-c", "pass"])
    failed = submit([PY, "-c", "import sys; sys.exit(2)"])
    before = {j: wait(pool, j) for j in (done, failed)}
    pool.cancel(done)  # scancel of an ended job: no error
    pool.cancel(failed)
    pool.cancel(f"{done}_0")  # not an array task: Slurm says invalid job id, also no error
    after = pool.poll([done, failed])
    assert after == before
    assert (after[done].state, after[done].exit_code) == ("COMPLETED", 0)
    assert (after[failed].state, after[failed].exit_code) == ("FAILED", 2)


def test_poll_asks_the_real_squeue_for_our_ids_only(slurm_conf: Path, submit: Submit,
                                                    tmp_path: Path) -> None:
    """The options SlurmPool passes are accepted by the live squeue, and are what it sent."""
    log = tmp_path / "argv.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("squeue", "sacct", "scancel"):
        real = shutil.which(name)
        assert real is not None
        wrapper = bin_dir / name
        wrapper.write_text(f'#!/bin/sh\necho "{name} $*" >> {log}\nexec {real} "$@"\n')
        wrapper.chmod(0o755)
    logged = SlurmPool(slurm_conf=slurm_conf, bin_dir=bin_dir, timeout_s=20)
    first = submit([PY, "-c", "pass"])
    second = submit([PY, "-c", "import sys; sys.exit(4)"])
    states = {j: wait(logged, j) for j in (first, second)}
    assert states[second].exit_code == 4
    text = logged._json_ignores_filters()  # 22.05 in CI: squeue's text output
    calls = {tuple(line.split()[1:]) for line in log.read_text().splitlines()
             if line.startswith("squeue") and "--version" not in line}
    assert calls == {tuple(squeue_command([j], text=text)[1:]) for j in (first, second)}
    both = logged.poll([second, first])
    assert both == states
    last = log.read_text().splitlines()[-1].split()
    assert last == squeue_command([first, second], text=text)


def _shape(value: Any) -> Any:
    """The JSON type of ``value``, recursively: what a fixture must share with live output."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


#: The fields of a job that the parser reads.
READ_FIELDS = ("job_id", "job_state", "array_job_id", "array_task_id", "start_time", "end_time",
               "exit_code", "suspend_time", "pre_sus_time")


def test_live_squeue_json_has_the_shape_of_its_fixture(slurm_conf: Path, pool: SlurmPool,
                                                       submit: Submit) -> None:
    """The live Slurm's JSON (22.05 in CI) has the types its version's fixture has."""
    env = {**os.environ, "SLURM_CONF": str(slurm_conf)}
    release = subprocess.run(["squeue", "--version"], env=env, capture_output=True, text=True,
                             check=True).stdout.split()[1]
    version = ".".join(release.split(".")[:2])
    if version not in VERSIONS:
        pytest.skip(f"no fixture for Slurm {release}")
    job = submit([PY, "-c", "import sys; sys.exit(2)"])
    assert wait(pool, job).exit_code == 2
    live = json.loads(subprocess.run(squeue_command([job]), env=env, capture_output=True,
                                     text=True, check=True).stdout)
    ours = next(j for j in live["jobs"] if str(j["job_id"]) == job)
    recorded = next(j for j in fixture(version)["jobs"] if j["job_id"] == 102)  # FAILED, exit 2
    assert {k: _shape(ours[k]) for k in READ_FIELDS} == {k: _shape(recorded[k])
                                                         for k in READ_FIELDS}
    assert ours["exit_code"] == recorded["exit_code"]  # both exit 2 by then


def test_array_runs_every_task(pool: SlurmPool, submit: Submit, tmp_path: Path) -> None:
    script = ("import os, pathlib, time; time.sleep(1); "
              "pathlib.Path('chunk-' + os.environ['SLURM_ARRAY_TASK_ID']).write_text('ok')")
    job = submit([PY, "-c", script], array=3, name="chunks")
    state = wait(pool, job)
    tasks = pool.poll([f"{job}_{i}" for i in range(3)])
    assert state.state == "COMPLETED" and state.exit_code == 0
    assert sorted(p.name for p in tmp_path.glob("chunk-*")) == ["chunk-0", "chunk-1", "chunk-2"]
    assert {t.state for t in tasks.values()} == {"COMPLETED"} and len(tasks) == 3
    # The array's run time is what the pool bills: the sum over its tasks.
    assert state.elapsed_s == pytest.approx(sum(t.elapsed_s for t in tasks.values()))
    assert state.elapsed_s >= 3.0
    assert (tmp_path / f"slurm-{job}_2.out").exists()


def test_gpu_request_is_honoured(pool: SlurmPool, submit: Submit, tmp_path: Path) -> None:
    dump = ("import os, pathlib; pathlib.Path('gpus').write_text("
            "os.environ.get('CUDA_VISIBLE_DEVICES', '-') + '|' + "
            "os.environ.get('SLURM_JOB_GPUS', '-'))")
    job = submit([PY, "-c", dump], gpus=2)
    assert wait(pool, job).state == "COMPLETED"
    visible, job_gpus = (tmp_path / "gpus").read_text().split("|")
    assert len(visible.split(",")) == 2, visible
    assert len(job_gpus.split(",")) == 2, job_gpus


def test_gpu_request_beyond_the_pool_is_refused(pool: SlurmPool, tmp_path: Path) -> None:
    with pytest.raises(PoolError) as err:
        pool.submit("too many", [PY, "-c", "pass"], gpus=64, after=[], deadline_utc=None,
                    workdir=tmp_path)
    assert err.value.command[0] == "sbatch" and err.value.returncode == 1
    assert "--gres=gpu:64" in err.value.command and err.value.stderr


def test_cost_is_actual_run_time_times_price(pool: SlurmPool, submit: Submit) -> None:
    job = submit([PY, "-c", "import time; time.sleep(2)"], gpus=1)
    state = wait(pool, job)
    assert state.state == "COMPLETED"
    assert 2.0 <= state.elapsed_s <= 10.0
    assert cost_cny(state.elapsed_s, 2, 36.0) == pytest.approx(state.elapsed_s / 3600 * 2 * 36.0)
    assert cost_cny(state.elapsed_s, 1, 36.0) >= 2 / 3600 * 36.0


def test_deadline_sets_slurm_deadline_and_time_limit(pool: SlurmPool, submit: Submit,
                                                     slurm_conf: Path) -> None:
    deadline = datetime.now(UTC) + timedelta(minutes=10)
    job = submit([PY, "-c", "pass"], deadline_utc=deadline)
    assert wait(pool, job).state == "COMPLETED"
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True,
                           env={**os.environ, "SLURM_CONF": str(slurm_conf)}, check=True).stdout
    local = deadline.astimezone().strftime("%Y-%m-%dT%H:%M")
    assert f"Deadline={local}" in shown
    with pytest.raises(ValueError, match="has passed"):
        submit([PY, "-c", "pass"], deadline_utc=datetime.now(UTC) - timedelta(seconds=1))


def test_unknown_ids_are_left_out(pool: SlurmPool) -> None:
    assert pool.poll([]) == {}
    assert pool.poll(["999999999"]) == {}
    pool.cancel("999999999")
    with pytest.raises(ValueError, match="not a Slurm job id"):
        pool.poll(["1; rm -rf /"])


# --- offline: parsers and error paths ----------------------------------------------------------

def test_job_script_round_trips_argv_through_sh(tmp_path: Path) -> None:
    argv = [PY, "-c", "import json, sys; print(json.dumps(sys.argv[1:]))", TRICKY, "", "-x"]
    script = tmp_path / "job.sh"
    script.write_text(job_script(argv))
    out = subprocess.run(["/bin/sh", str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == json.dumps(argv[3:])


def test_state_and_exit_code_mapping() -> None:
    assert pool_state("CANCELLED by 0") == "CANCELLED"
    assert pool_state("DEADLINE") == "CANCELLED"
    assert pool_state("TIMEOUT") == pool_state("OUT_OF_MEMORY") == "FAILED"
    assert pool_state("COMPLETING") == "RUNNING"
    with pytest.raises(PoolError, match="unknown Slurm job state"):
        pool_state("SOMETHING_NEW")
    assert decode_exit_code(768) == 3
    assert decode_exit_code(9) == 128 + 9
    assert decode_exit_code(0) == 0


def test_array_folding_from_squeue_json() -> None:
    def job(job_id: int, task: int | None, state: str, start: int, end: int, code: int = 0
            ) -> dict[str, object]:
        return {"job_id": job_id, "array_job_id": 7, "array_task_id": task, "job_state": state,
                "start_time": start, "end_time": end, "exit_code": code}

    pending = _squeue_rows({"jobs": [job(7, None, "PENDING", 0, 0)]}, 100.0)
    assert _states(pending, ["7"])["7"] == PoolJobState("7", "PENDING", 0.0, None)
    mixed = _squeue_rows({"jobs": [job(8, 0, "COMPLETED", 10, 14),
                                   job(7, None, "PENDING", 0, 0)]}, 100.0)
    assert _states(mixed, ["7"])["7"].state == "RUNNING"
    done = _squeue_rows({"jobs": [job(8, 0, "COMPLETED", 10, 14),
                                  job(7, 1, "FAILED", 10, 12, 2 << 8)]}, 100.0)
    states = _states(done, ["7", "7_0", "7_1", "8"])
    assert states["7"] == PoolJobState("7", "FAILED", 6.0, 2)
    assert states["7_0"] == PoolJobState("7_0", "COMPLETED", 4.0, 0)
    assert states["8"] == PoolJobState("8", "COMPLETED", 4.0, 0)
    assert states["7_1"] == PoolJobState("7_1", "FAILED", 2.0, 2)
    # Newer Slurm wraps numbers and lists state flags.
    newer = _squeue_rows({"jobs": [{"job_id": 9, "array_job_id": {"set": True, "number": 0},
                                    "array_task_id": {"set": False, "number": 0},
                                    "job_state": ["RUNNING"],
                                    "start_time": {"set": True, "number": 90},
                                    "end_time": {"set": True, "number": 0},
                                    "exit_code": {"set": True, "number": 0}}]}, 100.0)
    assert _states(newer, ["9"])["9"] == PoolJobState("9", "RUNNING", 10.0, None)


def test_sacct_rows_for_jobs_the_controller_forgot() -> None:
    text = ("41|41|COMPLETED|0:0|12\n"
            "42|42|CANCELLED by 0|0:15|3\n"
            "44|43_0|FAILED|2:0|5\n"
            "43|43_1|COMPLETED|0:0|6\n")
    states = _states(_sacct_rows(text), ["41", "42", "43"])
    assert states["41"] == PoolJobState("41", "COMPLETED", 12.0, 0)
    assert states["42"] == PoolJobState("42", "CANCELLED", 3.0, None)
    assert states["43"] == PoolJobState("43", "FAILED", 11.0, 2)


# --- offline: squeue --json of Slurm 22.05, 23.02, 23.11, 24.05 (fixtures/slurm/) ------------

T = make_fixtures.T
NOW = T + 300

#: id -> (state, elapsed_s, exit_code) at T + 300, the same for every version's shape.
EXPECTED: dict[str, tuple[str, float, int | None]] = {
    "101": ("COMPLETED", 10.0, 0),
    "102": ("FAILED", 5.0, 2),
    "103": ("CANCELLED", 7.0, None),
    "104": ("FAILED", 60.0, 128 + 15),     # TIMEOUT
    "105": ("FAILED", 20.0, 128 + 125),    # OUT_OF_MEMORY, sacct's 0:125
    "106": ("FAILED", 3.0, 128 + 11),      # SIGSEGV with a core dump
    "107": ("FAILED", 0.0, None),          # NO_VAL: unknown, not 0
    "108": ("PENDING", 0.0, None),
    "109": ("RUNNING", 200.0, None),
    "110": ("RUNNING", 40.0, None),        # SUSPENDED: the 40 s before, not 300
    "111": ("RUNNING", 240.0, None),       # 40 s, suspended, resumed at T+100
    "112": ("COMPLETED", 90.0, 0),         # 40 s + T+100..T+150
    "113": ("CANCELLED", 30.0, None),      # cancelled while suspended: the 30 s before
    "120": ("RUNNING", 60.0, None),        # array: 4 + 6 + 50
    "120_0": ("COMPLETED", 4.0, 0),
    "120_1": ("FAILED", 6.0, 3),
    "120_2": ("RUNNING", 50.0, None),
    "122": ("FAILED", 6.0, 3),
    "130": ("RUNNING", 8.0, None),         # FAILED + COMPLETING: epilog still running
}


def fixture(version: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / version / "squeue.json").read_text())
    return doc


@pytest.mark.parametrize("version", VERSIONS)
def test_squeue_json_of_each_release(version: str) -> None:
    states = _states(_squeue_rows(fixture(version), NOW), EXPECTED)
    got = {j: (s.state, s.elapsed_s, s.exit_code) for j, s in states.items()}
    assert got == EXPECTED
    assert "900" not in _states(_squeue_rows(fixture(version), NOW), EXPECTED)


@pytest.mark.parametrize("version", ["23.11", "24.05"])
def test_failed_job_on_new_slurm_reports_its_exit_code_not_zero(version: str) -> None:
    job = next(j for j in fixture(version)["jobs"] if j["job_id"] == 102)
    assert job["exit_code"]["return_code"] == {"set": True, "infinite": False, "number": 2}
    assert job_exit_code(job["exit_code"]) == 2
    unset = {"status": "PENDING", "return_code": {"set": False, "infinite": False, "number": 0},
             "signal": {"id": {"set": False, "infinite": False, "number": 0}, "name": ""}}
    assert job_exit_code(unset) is None


def test_exit_code_shapes_and_no_val() -> None:
    assert job_exit_code(768) == 3                        # 22.05
    assert job_exit_code(0xFFFFFFFE) is None              # 22.05 NO_VAL as a plain number
    assert job_exit_code({"set": True, "infinite": False, "number": 9}) == 128 + 9  # 23.02
    assert job_exit_code({"set": False, "infinite": False, "number": 0}) is None
    assert job_exit_code({"set": False, "infinite": True, "number": 0}) is None
    # v0.0.41 +complex: plain numbers, null when unset, "Infinity"
    assert job_exit_code({"status": "ERROR", "return_code": 2,
                          "signal": {"id": None, "name": None}}) == 2
    assert job_exit_code({"status": "SIGNALED", "return_code": None,
                          "signal": {"id": 15, "name": "TERM"}}) == 128 + 15
    assert job_exit_code({"status": "PENDING", "return_code": None,
                          "signal": {"id": None, "name": None}}) is None
    assert job_exit_code(None) is None and job_exit_code("Infinity") is None
    # status as a list of flags is read too
    assert job_exit_code({"status": ["ERROR"], "return_code": {"set": True, "number": 1},
                          "signal": {"id": {"set": False, "number": 0}, "name": ""}}) == 1


@given(st.integers(min_value=0, max_value=0xFFFF))
def test_verbose_exit_code_agrees_with_the_raw_status(raw: int) -> None:
    """v0.0.40's decoded shape (make_fixtures.exit_verbose, from Slurm's DUMP_FUNC) and the
    raw status 22.05 and 23.02 print give the same exit code."""
    verbose = job_exit_code(make_fixtures.exit_verbose(raw))
    if raw & 0x7F == 0x7F:  # stopped, not ended: Slurm says INVALID
        assert verbose is None
    else:
        assert verbose == decode_exit_code(raw) == job_exit_code(raw)


def _fake_squeue(folder: Path, version: str, log: Path) -> Path:
    """A bin folder whose squeue is Slurm ``version``'s: it logs its argv and prints that
    version's fixture (22.05: the text one, since SlurmPool reads text there); sacct knows
    nothing."""
    folder.mkdir(exist_ok=True)
    answer = FIXTURES / version / ("squeue.txt" if version == "22.05" else "squeue.json")
    squeue = (f'if [ "$1" = --version ]; then echo "slurm {version}.8"; exit 0; fi\n'
              f'echo "squeue $*" >> {log}\ncat {answer}')
    for name, body in (("squeue", squeue),
                       ("sacct", "echo 'sacct: error: accounting storage is disabled' >&2; "
                                 "exit 1")):
        path = folder / name
        path.write_text(f'#!/bin/sh\n{body}\n')
        path.chmod(0o755)
    return folder


def test_squeue_text_of_22_05() -> None:
    """Before 23.02 SlurmPool reads squeue's text output, which applies --me and --jobs."""
    rows = _squeue_text_rows((FIXTURES / "22.05" / "squeue.txt").read_text())
    states = _states(rows, EXPECTED)
    assert {j: (s.state, s.elapsed_s, s.exit_code) for j, s in states.items()} == EXPECTED


def test_squeue_text_run_times_and_arrays() -> None:
    """_print_secs's formats, INVALID, a pending array's task range, NO_VAL printed as -2."""
    rows = _squeue_text_rows("5|5|N/A|COMPLETED|1-02:03:04|0\n"
                             "6|6|N/A|FAILED|2:00:00|-2\n"
                             "7|7|N/A|RUNNING|INVALID|0\n"
                             "9|8|0|COMPLETED|0:03|0\n"
                             "8|8|1-4%2|PENDING|0:00|0\n"
                             "short|line\n")
    states = _states(rows, ["5", "6", "7", "8", "8_0"])
    assert states["5"] == PoolJobState("5", "COMPLETED", 93784.0, 0)
    assert states["6"] == PoolJobState("6", "FAILED", 7200.0, None)
    assert states["7"] == PoolJobState("7", "RUNNING", 0.0, None)
    assert states["8"] == PoolJobState("8", "RUNNING", 3.0, None)
    assert states["8_0"] == PoolJobState("8_0", "COMPLETED", 3.0, 0)


@pytest.mark.parametrize("version", VERSIONS)
def test_suspended_time_is_not_billed(version: str, tmp_path: Path) -> None:
    doc = fixture(version)
    price, gpus = 36.0, 2
    rows = _states(_squeue_rows(doc, NOW), ["110", "111", "112", "113"])
    for job_id, ran_s in (("110", 40), ("111", 240), ("112", 90), ("113", 30)):
        assert cost_cny(rows[job_id].elapsed_s, gpus, price) == \
            pytest.approx(ran_s / 3600 * gpus * price), job_id
    # Through SlurmPool.poll too (a suspended job's run time does not depend on now).
    pool = SlurmPool(bin_dir=_fake_squeue(tmp_path / "bin", version, tmp_path / "argv.log"))
    polled = pool.poll(["110", "113"])
    assert polled["110"] == PoolJobState("110", "RUNNING", 40.0, None)
    assert polled["113"] == PoolJobState("113", "CANCELLED", 30.0, None)


@pytest.mark.parametrize("version", VERSIONS)
def test_poll_command_names_our_job_ids_only(version: str, tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    pool = SlurmPool(bin_dir=_fake_squeue(tmp_path / "bin", version, log))
    got = pool.poll(["102", "120", "101", "120_1"])
    pool.poll(["102"])
    ids = "--jobs=101,102,120,120_1"
    if version == "22.05":  # --json would list the whole cluster: text, which filters
        assert log.read_text().splitlines() == [
            f"squeue --noheader --states=all --me {ids} --Format={SQUEUE_TEXT_FORMAT}",
            f"squeue --noheader --states=all --me --jobs=102 --Format={SQUEUE_TEXT_FORMAT}"]
    else:
        assert log.read_text().splitlines() == [f"squeue --json --states=all --me {ids}",
                                                "squeue --json --states=all --me --jobs=102"]
    assert list(got) == ["102", "120", "101", "120_1"]  # only what was asked, 900 never
    assert got["102"].exit_code == 2 and got["120_1"].exit_code == 3
    assert squeue_command(["7", "7", "3_1"]) == ["squeue", "--json", "--states=all", "--me",
                                                  "--jobs=3_1,7"]


def test_one_forgotten_id_goes_to_accounting(tmp_path: Path) -> None:
    """23.02+ load a single --jobs id directly, and fail for one the controller forgot."""
    bin_dir = _fake_slurm(
        tmp_path / "bin",
        squeue='[ "$1" = --version ] && echo "slurm 23.11.10" && exit 0; '
               "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1",
        sacct="echo '77|77|FAILED|2:0|9'")
    assert SlurmPool(bin_dir=bin_dir).poll(["77"]) == {"77": PoolJobState("77", "FAILED", 9.0, 2)}


def test_cancel_of_an_ended_job_is_no_error(tmp_path: Path) -> None:
    log = tmp_path / "scancel.log"
    bin_dir = _fake_slurm(
        tmp_path / "bin",
        scancel=f'echo "$*" >> {log}; case "$*" in '
                "5) echo 'scancel: error: Kill job error on job id 5: "
                "Job/step already completing or completed' >&2; exit 1;; "
                "6) echo 'scancel: error: Kill job error on job id 6: "
                "Invalid job id specified' >&2; exit 1;; "
                "7) exit 0;; "
                "*) echo 'scancel: error: Access/permission denied' >&2; exit 1;; esac")
    pool = SlurmPool(bin_dir=bin_dir)
    for job_id in ("5", "6", "7"):
        pool.cancel(job_id)
    with pytest.raises(PoolError, match="permission denied"):
        pool.cancel("8")
    assert log.read_text().split() == ["5", "6", "7", "8"]


def _fake_slurm(folder: Path, **scripts: str) -> Path:
    folder.mkdir()
    for name, body in scripts.items():
        path = folder / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return folder


def test_errors_name_command_exit_code_and_stderr(tmp_path: Path) -> None:
    bin_dir = _fake_slurm(tmp_path / "bin",
                          sbatch="/bin/cat >/dev/null; "
                                 "echo 'sbatch: error: no partition' >&2; exit 1",
                          squeue="echo '{\"jobs\": []}'",
                          sacct="echo 'sacct: error: slurmdbd down' >&2; exit 1",
                          scancel="echo 'scancel: error: Access/permission denied' >&2; exit 1")
    pool = SlurmPool(bin_dir=bin_dir, partition="render", account="vfx", qos="night")
    with pytest.raises(PoolError) as err:
        pool.submit("j", ["true"], gpus=1, after=["5", "6_1"], deadline_utc=None,
                    workdir=tmp_path / "w")
    assert err.value.returncode == 1 and "no partition" in err.value.stderr
    assert "--dependency=afterok:5:6_1" in err.value.command and "--gres=gpu:1" in err.value.command
    assert {"--partition=render", "--account=vfx", "--qos=night"} <= set(err.value.command)
    assert "exited 1: sbatch: error: no partition" in str(err.value)
    assert pool.poll(["5"]) == {}  # sacct failing leaves the id out, does not raise
    with pytest.raises(PoolError, match="permission denied"):
        pool.cancel("5")
    with pytest.raises(ValueError, match="not a Slurm job id"):
        pool.submit("j", ["true"], gpus=0, after=["5,6"], deadline_utc=None, workdir=tmp_path)
    with pytest.raises(PoolError, match="not found"):
        SlurmPool(bin_dir=tmp_path / "nowhere").poll(["1"])


def test_open_backend_builds_a_slurm_pool_from_a_pools_entry(tmp_path: Path) -> None:
    backend = open_backend("slurm", {"max_slots": 8, "partition": "render",
                                     "slurm_conf": str(tmp_path / "slurm.conf")})
    assert isinstance(backend, SlurmPool)
    assert (backend.max_slots, backend.partition) == (8, "render")
