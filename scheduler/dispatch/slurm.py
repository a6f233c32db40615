"""Compute pool on Slurm: the batch system rented GPU pools actually run.

:class:`SlurmPool` is the controller's :class:`~scheduler.dispatch.pool.PoolBackend` over
Slurm's own commands (``sbatch``, ``squeue``, ``sacct``, ``scancel``), so it works against any
cluster the machine is a submit host of, and needs no Python binding to Slurm's C library.

- ``submit``: ``sbatch --parsable`` with the job script on stdin. The script's one command is
  ``exec`` of the argv, each argument through ``shlex.quote``, so no shell interprets any of it.
  GPUs are ``--gres=gpu:N``, ordering is ``--dependency=afterok:A:B`` with
  ``--kill-on-invalid-dep=yes`` (a job whose dependency failed is cancelled, not left pending
  forever), chunk arrays are ``--array=0-(N-1)``.
- ``poll``: ``squeue --json --states=all --me --jobs=IDS``: only this user's jobs, only the
  ids asked for, as far as the version's ``--json`` honours those filters; before 23.02, whose
  ``--json`` honours none, squeue's text output (see :meth:`SlurmPool.poll`). Finished jobs
  stay there for ``MinJobAge`` seconds. Ids it no longer knows are looked up in
  accounting (``sacct --parsable2``) when the cluster has it, and left out otherwise
  (docs/decisions/0060-slurm-job-state-without-slurmdbd.md). The JSON of Slurm 22.05
  (OpenAPI v0.0.38), 23.02 (data_parser v0.0.39), 23.11 (v0.0.40) and 24.05 (v0.0.41) is read:
  plain numbers or ``{set, infinite, number}``, a raw wait status or ``{status, return_code,
  signal}`` as the exit code, a state string or a list of state flags.
- ``cancel``: ``scancel``; a job that already ended is no error, and keeps the state it ended in.

Every failed Slurm command raises :class:`PoolError` with the command, its exit code and stderr.
See docs/slurm-pool.md for the mapping and scripts/slurm-up.sh for a single-node Slurm to test on.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scheduler.dispatch.pool import TERMINAL, PoolBackend, PoolJobState, cost_cny

__all__ = [
    "SLURM_STATES",
    "PoolBackend",
    "PoolError",
    "PoolJobState",
    "SQUEUE_TEXT_FORMAT",
    "SlurmBackend",
    "SlurmPool",
    "cost_cny",
    "decode_exit_code",
    "job_exit_code",
    "job_script",
    "pool_state",
    "squeue_command",
]

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[0-9]+(_[0-9]+)?$")
_NO_VAL = 0xFFFFFFFE  # Slurm's "not set" for a uint32 (22.05 prints it as a plain number)
_INFINITE = 0xFFFFFFFF

#: Slurm job states (base states, and the flag names squeue and sacct print in their place)
#: to the pool's five. DEADLINE means Slurm removed the job because it could not end before its
#: deadline: it is CANCELLED, like a job the controller cancelled, because retrying cannot help.
SLURM_STATES: Mapping[str, str] = {
    "PENDING": "PENDING",
    "REQUEUED": "PENDING",
    "REQUEUE_HOLD": "PENDING",
    "REQUEUE_FED": "PENDING",
    "RESV_DEL_HOLD": "PENDING",
    "POWER_UP_NODE": "PENDING",
    "CONFIGURING": "RUNNING",
    "RUNNING": "RUNNING",
    "SUSPENDED": "RUNNING",
    "COMPLETING": "RUNNING",
    "STAGE_OUT": "RUNNING",
    "SIGNALING": "RUNNING",
    "STOPPED": "RUNNING",
    "RESIZING": "RUNNING",
    "UPDATE_DB": "RUNNING",
    "COMPLETED": "COMPLETED",
    "FAILED": "FAILED",
    "TIMEOUT": "FAILED",
    "NODE_FAIL": "FAILED",
    "BOOT_FAIL": "FAILED",
    "OUT_OF_MEMORY": "FAILED",
    "PREEMPTED": "FAILED",
    "SPECIAL_EXIT": "FAILED",
    "CANCELLED": "CANCELLED",
    "DEADLINE": "CANCELLED",
    "REVOKED": "CANCELLED",
}


class PoolError(RuntimeError):
    """A Slurm command failed: which command, its exit code (None: it never exited) and stderr."""

    def __init__(self, command: Sequence[str], returncode: int | None, stderr: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.stderr = stderr
        how = "did not finish" if returncode is None else f"exited {returncode}"
        super().__init__(f"{shlex.join(self.command)} {how}: {stderr.strip() or '(no stderr)'}")


def pool_state(slurm_state: str) -> str:
    """The pool state for a Slurm job state as squeue or sacct prints it.

    Args:
        slurm_state: e.g. ``"COMPLETED"``, ``"CANCELLED by 0"`` (sacct), ``"OUT_OF_MEMORY"``.

    Returns:
        One of PENDING, RUNNING, COMPLETED, FAILED, CANCELLED.

    Raises:
        PoolError: for a state this module does not know (a newer Slurm); guessing could
            report a failed job as done.
    """
    word = slurm_state.split()[0].rstrip("+").upper() if slurm_state.strip() else ""
    try:
        return SLURM_STATES[word]
    except KeyError:
        raise PoolError(["squeue"], None, f"unknown Slurm job state {slurm_state!r}") from None


def decode_exit_code(raw_status: int) -> int:
    """Exit code from the raw wait status squeue reports (``exit 3`` is 768).

    Args:
        raw_status: the job's ``exit_code`` field from ``squeue --json``.

    Returns:
        The process's exit status, or 128 + the signal number when a signal ended it
        (the shell's convention).
    """
    signal = raw_status & 0x7F
    return 128 + signal if signal else (raw_status >> 8) & 0xFF


def job_script(argv: Sequence[str]) -> str:
    """The batch script that runs ``argv`` with no shell interpretation of its arguments.

    Args:
        argv: program and arguments, exactly as the program should receive them.

    Returns:
        A ``/bin/sh`` script whose only command is ``exec`` of the quoted argv, so the job's
        exit code is the program's.
    """
    return ("#!/bin/sh\n"
            "# stagectl pool job (scheduler/dispatch/slurm.py): argv quoted with shlex.quote\n"
            f"exec {shlex.join(argv)}\n")


@dataclass(frozen=True)
class _Row:
    """One job or array task as Slurm reported it, already mapped to the pool's terms."""

    job_id: str
    array_job_id: str | None
    array_task_id: str | None
    state: str
    elapsed_s: float
    exit_code: int | None


class SlurmPool:
    """A :class:`~scheduler.dispatch.pool.PoolBackend` that submits to Slurm.

    Jobs run as the user that runs the controller, in ``workdir`` (which must be visible to
    the compute nodes at the same path); each writes its stdout and stderr to
    ``slurm-<jobid>.out`` (arrays: ``slurm-<jobid>_<task>.out``) in ``log_dir`` or ``workdir``.

    Built by ``scheduler.dispatch.pool.open_backend`` from a ``[[pools]]`` entry with
    ``backend = "slurm"``: ``max_slots`` plus the entry's ``options`` table become these
    keyword arguments.

    Args:
        slurm_conf: ``slurm.conf`` to use (sets ``SLURM_CONF`` for the commands); default: the
            environment's ``SLURM_CONF``, else Slurm's own default.
        partition: partition to submit to (``--partition``); default: the cluster's default.
        account: account to charge (``--account``); default: the user's default account.
        qos: quality of service (``--qos``); default: the account's default.
        max_slots: how many jobs the controller keeps in this pool at once; kept for the
            controller, Slurm itself decides how many of them run.
        log_dir: folder for the jobs' output files; default: each job's ``workdir``.
        sbatch_options: extra ``sbatch`` options, e.g. ``["--account=vfx", "--qos=render"]``.
        bin_dir: folder holding the Slurm commands; default: found on ``PATH``.
        timeout_s: how long one Slurm command may take before it is a :class:`PoolError`.
    """

    def __init__(
        self,
        *,
        slurm_conf: str | Path | None = None,
        partition: str | None = None,
        account: str | None = None,
        qos: str | None = None,
        max_slots: int | None = None,
        log_dir: str | Path | None = None,
        sbatch_options: Sequence[str] = (),
        bin_dir: str | Path | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.slurm_conf = Path(slurm_conf) if slurm_conf is not None else None
        self.partition = partition
        self.account = account
        self.qos = qos
        self.max_slots = max_slots
        self.log_dir = Path(log_dir).resolve() if log_dir is not None else None
        self.sbatch_options = list(sbatch_options)
        self.bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.timeout_s = timeout_s
        self._accounting: bool | None = None  # unknown until sacct first answers
        self._text_mode: bool | None = None  # unknown until squeue --version answers

    # --- PoolBackend ------------------------------------------------------------------------

    def submit(
        self,
        name: str,
        argv: list[str],
        *,
        gpus: int,
        after: list[str],
        deadline_utc: datetime | None,
        workdir: Path,
        array: int | None = None,
    ) -> str:
        """Queue ``argv`` with ``sbatch``; it starts once every job in ``after`` completed OK.

        Args:
            name: job name shown by ``squeue`` (``--job-name``).
            argv: program and arguments, passed to the program unchanged (never to a shell).
            gpus: GPUs per job, or per array task (``--gres=gpu:N``; 0 asks for none).
            after: job ids that must complete OK first; if one fails or is cancelled, Slurm
                cancels this job (``--kill-on-invalid-dep=yes``).
            deadline_utc: the job must end by then (``--deadline``, with the time limit set to
                the time left): Slurm does not start it with under a minute left (CANCELLED)
                and stops it at the deadline (FAILED). Naive datetimes are taken as UTC.
            workdir: the job's working folder (``--chdir``), created if missing.
            array: run ``array`` copies as tasks 0..array-1 (``--array``); each reads its
                index from ``SLURM_ARRAY_TASK_ID``. Poll the returned id for all of them.

        Returns:
            The Slurm job id (for an array, the array's id).

        Raises:
            ValueError: empty argv, negative gpus, array < 1, a malformed id in ``after`` or a
                deadline that has passed.
            PoolError: ``sbatch`` refused the job.
        """
        if not argv:
            raise ValueError(f"pool job {name!r}: empty argv")
        if gpus < 0:
            raise ValueError(f"pool job {name!r}: gpus must be >= 0, got {gpus}")
        if array is not None and array < 1:
            raise ValueError(f"pool job {name!r}: array must be >= 1 tasks, got {array}")
        for dep in after:
            _check_id(dep, f"pool job {name!r}: dependency")
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        log_dir = self.log_dir or workdir
        log_dir.mkdir(parents=True, exist_ok=True)
        pattern = "slurm-%A_%a.out" if array is not None else "slurm-%j.out"
        # Slurm expands %-patterns in --output, so a literal % in the folder is doubled.
        output = f"{str(log_dir).replace('%', '%%')}/{pattern}"
        cmd = ["sbatch", "--parsable", f"--job-name={name}", f"--chdir={workdir}",
               f"--output={output}", "--kill-on-invalid-dep=yes"]
        for option, value in (("partition", self.partition), ("account", self.account),
                              ("qos", self.qos)):
            if value:
                cmd.append(f"--{option}={value}")
        if gpus:
            cmd.append(f"--gres=gpu:{gpus}")
        if after:
            cmd.append(f"--dependency=afterok:{':'.join(after)}")
        if array is not None:
            cmd.append(f"--array=0-{array - 1}")
        if deadline_utc is not None:
            cmd.extend(_deadline_options(name, deadline_utc))
        cmd.extend(self.sbatch_options)
        out = self._run(cmd, stdin=job_script(argv))
        job_id = out.strip().split(";", 1)[0]  # --parsable prints "id" or "id;cluster"
        if not _JOB_ID.match(job_id):
            raise PoolError(cmd, 0, f"unexpected sbatch output {out!r} (expected a job id)")
        return job_id

    def poll(self, job_ids: list[str]) -> dict[str, PoolJobState]:
        """States of the given jobs; an array's id reports all its tasks together.

        An array is PENDING until a task starts, RUNNING while any task is pending or running,
        then COMPLETED if every task completed, else FAILED if one failed, else CANCELLED; its
        ``elapsed_s`` is the sum of its tasks' run times (what the pool bills) and its exit
        code the largest of its tasks'. ``"<array>_<task>"`` polls one task. Run time never
        counts time a job spent SUSPENDED.

        The command asks for these ids of this user only (``--me --jobs=IDS``). Slurm
        24.05.1 and later apply both to ``--json``; 23.02 to 24.05.0 load only the user's jobs
        (one id: only that job) and ignore the rest of the filter. 22.05's ``--json`` lists
        every job in the cluster whatever the options, so before 23.02 squeue's text output
        is read instead (:func:`squeue_command` with ``text=True``), which applies them. The
        answer is filtered to ``job_ids`` here in every case.

        Args:
            job_ids: ids returned by :meth:`submit` (or array task ids).

        Returns:
            ``job_id -> PoolJobState``; ids neither the controller nor accounting knows any
            more (older than ``MinJobAge`` on a cluster without slurmdbd) are left out.

        Raises:
            ValueError: a malformed id.
            PoolError: ``squeue`` failed or printed something that is not its JSON.
        """
        for job_id in job_ids:
            _check_id(job_id, "poll")
        if not job_ids:
            return {}
        text_mode = self._json_ignores_filters()
        cmd = squeue_command(job_ids, text=text_mode)
        try:
            out = self._run(cmd)
        except PoolError as exc:
            # A single id the controller has forgotten: squeue loads just that job, and
            # fails. Accounting may still know it.
            if "invalid job id" not in exc.stderr.lower():
                raise
            out = ""
        try:
            rows = (_squeue_text_rows(out) if text_mode
                    else _squeue_rows(json.loads(out or '{"jobs": []}'), time.time()))
        except (ValueError, KeyError, TypeError) as exc:
            raise PoolError(cmd, 0, f"unreadable squeue output: {exc}") from exc
        found = _states(rows, job_ids)
        missing = [j for j in job_ids if j not in found]
        if missing:
            found.update(_states(self._sacct_rows(missing), missing))
        return {j: found[j] for j in job_ids if j in found}

    def cancel(self, job_id: str) -> None:
        """Cancel a pending or running job (``scancel``); no error when it already ended.

        A job that ended before the cancel keeps the state it ended in: the next
        :meth:`poll` reports it COMPLETED or FAILED with its exit code and run time, not
        CANCELLED. ``scancel`` itself says nothing and exits 0 for such a job (it ignores
        "already completing or completed" and "invalid job id" for SIGKILL); a wrapper or
        ``--verbose`` that turns them into errors is tolerated too.

        Args:
            job_id: a job, array or array task id.

        Raises:
            ValueError: a malformed id.
            PoolError: ``scancel`` failed for another reason than the job having ended.
        """
        _check_id(job_id, "cancel")
        try:
            self._run(["scancel", job_id])
        except PoolError as exc:
            said = exc.stderr.lower()
            if "invalid job id" in said or "already completing or completed" in said:
                return  # it ended: aged out of the controller, or still listed as ended
            raise

    # --- helpers ----------------------------------------------------------------------------

    def _json_ignores_filters(self) -> bool:
        """True for Slurm before 23.02, whose ``squeue --json`` applies no filter at all.

        Asked once (``squeue --version``, e.g. ``slurm 22.05.8``); an answer that names no
        version counts as a newer Slurm.
        """
        if self._text_mode is None:
            found = re.search(r"(\d+)\.(\d+)", self._run(["squeue", "--version"]))
            self._text_mode = found is not None and \
                (int(found.group(1)), int(found.group(2))) < (23, 2)
        return self._text_mode

    def _sacct_rows(self, job_ids: list[str]) -> list[_Row]:
        """Finished jobs the controller has forgotten, from accounting when there is one."""
        if self._accounting is False:
            return []
        cmd = ["sacct", "--noheader", "--parsable2", "--allocations", "--starttime=1970-01-01",
               "--format=JobIDRaw,JobID,State,ExitCode,ElapsedRaw", f"--jobs={','.join(job_ids)}"]
        try:
            text = self._run(cmd)
        except PoolError as exc:
            if "accounting storage is disabled" in exc.stderr.lower():
                self._accounting = False
            else:
                # The squeue answer still stands; these ids are left out until sacct answers.
                log.warning("%s", exc)
            return []
        self._accounting = True
        return _sacct_rows(text)

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        """Run one Slurm command; its stdout, or a PoolError naming what failed."""
        cmd = [str(self.bin_dir / argv[0]) if self.bin_dir else argv[0], *argv[1:]]
        env = dict(os.environ)
        if self.slurm_conf is not None:
            env["SLURM_CONF"] = str(self.slurm_conf)
        try:
            proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                                  timeout=self.timeout_s, check=False)
        except FileNotFoundError:
            raise PoolError(cmd, None, f"{argv[0]} not found: install Slurm's client commands "
                                       "(Debian: apt-get install slurm-client)") from None
        except subprocess.TimeoutExpired:
            raise PoolError(cmd, None, f"no answer in {self.timeout_s:g} s: is slurmctld "
                                       "running? (scripts/slurm-up.sh starts one)") from None
        if proc.returncode != 0:
            raise PoolError(cmd, proc.returncode, proc.stderr)
        return proc.stdout


#: The name ``scheduler.dispatch.pool.open_backend`` looks up for ``kind = "slurm"``.
SlurmBackend = SlurmPool


def _check_id(job_id: str, what: str) -> None:
    if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
        raise ValueError(f"{what}: {job_id!r} is not a Slurm job id (expected 123 or 123_4)")


#: ``squeue --Format`` where ``--json`` applies no filter (before 23.02): raw job id, array job
#: id, array task id (``N/A``, a task, or the pending tasks' range), state as
#: job_state_string() prints it, run time (job_time_used(): suspended time left out) and the
#: raw wait status (``%d``: NO_VAL is -2), "|"-separated at full width (src/squeue/print.c).
SQUEUE_TEXT_FORMAT = "jobid:0|,arrayjobid:0|,arraytaskid:0|,state:0|,timeused:0|,exit_code:0"


def squeue_command(job_ids: Sequence[str], *, text: bool = False) -> list[str]:
    """The ``squeue`` command :meth:`SlurmPool.poll` runs for ``job_ids``.

    Args:
        job_ids: job, array or array task ids (already checked).
        text: squeue's text output (``--Format``) instead of ``--json``: for Slurm before
            23.02, whose ``--json`` ignores ``--me`` and ``--jobs``.

    Returns:
        ``squeue --json --states=all --me --jobs=A,B``: every state (24.05.1 and later apply
        squeue's default of pending and running only to ``--json`` too), this user's jobs,
        these ids (sorted, each once); with ``text``, ``--noheader`` and
        ``--Format=SQUEUE_TEXT_FORMAT`` in place of ``--json``.
    """
    ids = f"--jobs={','.join(sorted(set(job_ids)))}"
    if text:
        return ["squeue", "--noheader", "--states=all", "--me", ids,
                f"--Format={SQUEUE_TEXT_FORMAT}"]
    return ["squeue", "--json", "--states=all", "--me", ids]


def _deadline_options(name: str, deadline_utc: datetime) -> list[str]:
    """``--deadline`` plus a time limit that lets the job start before it, in minutes."""
    if deadline_utc.tzinfo is None:
        deadline_utc = deadline_utc.replace(tzinfo=UTC)
    left_s = (deadline_utc - datetime.now(UTC)).total_seconds()
    if left_s <= 0:
        raise ValueError(f"pool job {name!r}: deadline {deadline_utc.isoformat()} has passed")
    # sbatch reads the deadline in its local time zone, which is this process's. Without a
    # time limit the partition's (often unlimited) one applies, and Slurm would never start a
    # job that cannot end by its deadline; --time-min lets it shrink the limit to fit.
    local = deadline_utc.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    return [f"--deadline={local}", f"--time={max(1, math.ceil(left_s / 60))}", "--time-min=1"]


def _squeue_rows(doc: Mapping[str, Any], now_s: float) -> list[_Row]:
    """Rows from ``squeue --json`` of Slurm 22.05 to 24.05 (see the module docstring).

    Args:
        doc: the parsed JSON.
        now_s: the time now (UNIX seconds): run time of a running job is counted to it.

    Returns:
        One row per job or array task, in the pool's terms.
    """
    rows = []
    for job in doc["jobs"]:
        shown, base = _state_words(job["job_state"])
        state = pool_state(shown)
        job_id = str(int(_required(job.get("job_id"), "job_id")))
        elapsed_s = _run_time(job, base, state, now_s)
        exit_code = job_exit_code(job.get("exit_code")) if state in ("COMPLETED", "FAILED") \
            else None
        array_job = int(_number(job.get("array_job_id")) or 0)
        task = _number(job.get("array_task_id"))
        task_id = str(int(task)) if array_job and task is not None else None
        rows.append(_Row(job_id, str(array_job) if array_job else None, task_id, state,
                         elapsed_s, exit_code))
    return rows


#: States whose run time is counted to now (``end_time`` is then the expected end, not the
#: end): Slurm's IS_JOB_RUNNING, and the flags 22.05 and 23.02 print in place of RUNNING.
_RUNNING_WORDS = frozenset({"RUNNING", "CONFIGURING", "SIGNALING", "STOPPED", "RESIZING"})


def _run_time(job: Mapping[str, Any], base: str, state: str, now_s: float) -> float:
    """Seconds the job ran, suspended time not counted (squeue's ``job_time_used``).

    ``base`` is the base state where the JSON gives it (23.11+), else the shown one;
    ``state`` the pool's.

    Slurm keeps ``pre_sus_time`` (run time before the last suspension) and ``suspend_time``
    (when it was last suspended or resumed): a suspended job has run ``pre_sus_time``; one
    resumed since has run that plus the time from the resume to now (or to its end). A job
    cancelled while suspended gets ``end_time = suspend_time`` (``_job_signal`` in
    src/slurmctld/job_mgr.c), so it too has run ``pre_sus_time``.
    """
    start_s = _number(job.get("start_time")) or 0.0
    if state == "PENDING" or start_s <= 0:
        return 0.0
    pre_sus_s = _number(job.get("pre_sus_time")) or 0.0
    suspend_s = _number(job.get("suspend_time")) or 0.0
    if base == "SUSPENDED":
        return max(pre_sus_s, 0.0)
    end_s = _number(job.get("end_time")) or 0.0
    if base in _RUNNING_WORDS or end_s <= 0:
        end_s = now_s
    if suspend_s > 0:
        return max(end_s - suspend_s + pre_sus_s, 0.0)
    return max(end_s - start_s, 0.0)


def job_exit_code(value: Any) -> int | None:
    """The exit code of a job from ``squeue --json``, in every shape Slurm gives it.

    - 22.05 (v0.0.38): the raw wait status as an integer (``exit 3`` is 768).
    - 23.02 (v0.0.39): the raw wait status as ``{set, infinite, number}``.
    - 23.11 and 24.05 (v0.0.40, v0.0.41): ``{status, return_code: {set, infinite, number},
      signal: {id: {set, infinite, number}, name}}``; with ``+complex`` the numbers are
      plain or null.

    Args:
        value: the job's ``exit_code`` field.

    Returns:
        The process's exit status, or 128 + the signal number when a signal ended it;
        None when Slurm has none (NO_VAL: ``set`` false or null; status PENDING or INVALID),
        never 0 in its place.
    """
    if isinstance(value, Mapping) and not {"return_code", "signal", "status"}.isdisjoint(value):
        status = value.get("status")
        statuses = {str(s) for s in status} if isinstance(status, list) else {str(status)}
        signal_field = value.get("signal")
        signal = _number(signal_field.get("id")) if isinstance(signal_field, Mapping) else None
        if signal:
            return 128 + int(signal)
        if statuses & {"PENDING", "INVALID"}:
            return None
        code = _number(value.get("return_code"))
        return None if code is None else int(code)
    raw = _number(value)
    if raw is None or int(raw) in (_NO_VAL, _INFINITE):
        return None
    return decode_exit_code(int(raw))


def _squeue_text_rows(text: str) -> list[_Row]:
    """Rows from ``squeue --noheader --Format=SQUEUE_TEXT_FORMAT`` (Slurm before 23.02)."""
    rows = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) < 6:
            continue
        job_id, array_job, task, state_text, used, exit_text = fields[:6]
        state = pool_state(state_text)
        array_job_id = task_id = None
        if task != "N/A":  # an array: a task, or the record of its tasks not started yet
            array_job_id, task_id = array_job, (task if task.isdigit() else None)
        exit_code = None
        if state in ("COMPLETED", "FAILED") and re.fullmatch(r"-?[0-9]+", exit_text):
            exit_code = job_exit_code(int(exit_text) & 0xFFFFFFFF)
        elapsed_s = 0.0 if state == "PENDING" else _clock_s(used)
        rows.append(_Row(job_id, array_job_id, task_id, state, elapsed_s, exit_code))
    return rows


def _clock_s(text: str) -> float:
    """Seconds from squeue's ``[days-][hours:]minutes:seconds``; 0 for ``INVALID``."""
    days, _, clock = text.rpartition("-")
    parts = clock.split(":")
    if not (days == "" or days.isdigit()) or not all(p.isdigit() for p in parts):
        return 0.0
    seconds = 0
    for part in parts:
        seconds = seconds * 60 + int(part)
    return float(seconds + int(days or 0) * 86400)


def _sacct_rows(text: str) -> list[_Row]:
    """Rows from ``sacct --parsable2`` with JobIDRaw,JobID,State,ExitCode,ElapsedRaw."""
    rows = []
    for line in text.splitlines():
        fields = line.split("|")
        if len(fields) < 5:
            continue
        raw_id, shown_id, state_text, exit_text, elapsed_text = fields[:5]
        state = pool_state(state_text)
        array_job = task_id = None
        if "_" in shown_id:
            array_job, task = shown_id.split("_", 1)
            task_id = task if task.isdigit() else None  # "7_[4-9]": tasks not started yet
        exit_code = None
        if state in ("COMPLETED", "FAILED") and ":" in exit_text:
            code, signal = (int(x) for x in exit_text.split(":", 1))
            exit_code = 128 + signal if signal else code
        elapsed_s = float(elapsed_text) if elapsed_text.isdigit() else 0.0
        rows.append(_Row(raw_id, array_job, task_id, state, elapsed_s, exit_code))
    return rows


def _states(rows: Iterable[_Row], wanted: Iterable[str]) -> dict[str, PoolJobState]:
    """The wanted ids' states: plain jobs and array tasks as they are, arrays folded up."""
    wanted = set(wanted)
    single: dict[str, _Row] = {}
    arrays: dict[str, list[_Row]] = {}
    for row in rows:
        if row.array_job_id is None:
            single[row.job_id] = row
            continue
        arrays.setdefault(row.array_job_id, []).append(row)
        if row.array_task_id is not None:
            single[f"{row.array_job_id}_{row.array_task_id}"] = row
            if row.job_id != row.array_job_id:
                single[row.job_id] = row
    out = {}
    for job_id in wanted:
        if job_id in arrays:
            out[job_id] = _fold(job_id, arrays[job_id])
        elif job_id in single:
            row = single[job_id]
            out[job_id] = PoolJobState(job_id, row.state, row.elapsed_s, row.exit_code)
    return out


def _fold(job_id: str, tasks: list[_Row]) -> PoolJobState:
    """One state for an array from its tasks' (see :meth:`SlurmPool.poll`)."""
    states = {t.state for t in tasks}
    elapsed_s = sum(t.elapsed_s for t in tasks)
    if not states <= TERMINAL:
        started = any(t.state != "PENDING" for t in tasks)
        return PoolJobState(job_id, "RUNNING" if started else "PENDING", elapsed_s, None)
    codes = [t.exit_code for t in tasks if t.exit_code is not None]
    exit_code = max(codes) if codes else None
    if states == {"COMPLETED"}:
        return PoolJobState(job_id, "COMPLETED", elapsed_s, exit_code)
    return PoolJobState(job_id, "FAILED" if "FAILED" in states else "CANCELLED", elapsed_s,
                        exit_code)


def _number(value: Any) -> float | None:
    """A number from squeue's JSON, None where Slurm has none (NO_VAL, INFINITE).

    Plain in 22.05 and with ``+complex`` (null: unset, ``"Infinity"``), else
    ``{"set": bool, "infinite": bool, "number": n}`` where ``set`` false means NO_VAL.
    """
    if isinstance(value, Mapping):
        if value.get("infinite") or not value.get("set", "number" in value):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _required(value: Any, key: str) -> float:
    number = _number(value)
    if number is None:
        raise ValueError(f"job without a {key}: {value!r}")
    return number


#: The flags job_state_string() (src/common/slurm_protocol_defs.c) prints in place of the base
#: state, in its order: what 22.05 and 23.02 print, and what a 23.11+ list is read as.
_SHOWN_FLAGS = ("COMPLETING", "STAGE_OUT", "CONFIGURING", "RESIZING", "REQUEUED", "REQUEUE_FED",
                "REQUEUE_HOLD", "SPECIAL_EXIT", "STOPPED", "REVOKED", "RESV_DEL_HOLD",
                "SIGNALING")


def _state_words(value: Any) -> tuple[str, str]:
    """A job state from squeue's JSON: a string up to 23.02, a list of flags from 23.11.

    Returns:
        ``(shown, base)``: the state as job_state_string() shows it (a flag such as
        COMPLETING or REQUEUED wins over the base state, so a job being requeued is not
        taken for ended), and the base state where the list gives it (else ``shown``).
    """
    if not isinstance(value, list):
        return str(value), str(value)
    names = [str(v) for v in value]
    base = names[0] if names else ""
    return next((f for f in _SHOWN_FLAGS if f in names), base), base
