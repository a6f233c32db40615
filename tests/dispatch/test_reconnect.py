"""An agent whose connection drops and comes back keeps its running work.

Measured before the mend: the agent's DEALER had no routing id of its own, so after the
reconnection the controller's ROUTER gave it a new one, answered its heartbeat with
``reregister``, took the re-registration for a takeover, marked the attempt LOST and cancelled
the agent's own render (the task ran a second time).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from scheduler.dispatch.agent import Agent, describe_node
from tests.dispatch.conftest import Farm, farm, work_job

__all__ = ["farm"]


class _DroppingAgent(Agent):
    """The production agent, whose connection the test can drop and restore once.

    The drop runs on the agent's own thread (a ZeroMQ socket belongs to one thread).
    """

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.drop = threading.Event()
        self.dropped = threading.Event()

    def _drain_events(self) -> None:
        if self.drop.is_set() and not self.dropped.is_set():
            self._sock.disconnect(self.controller)
            self._sock.connect(self.controller)
            self.dropped.set()
        super()._drain_events()


def test_reconnected_agent_keeps_its_running_task(farm: Farm, tmp_path: Path) -> None:
    farm.start_controller()
    agent = _DroppingAgent(farm.address, describe_node("flaky", 1, 24.0, 1.0,
                                                       nvml_module="no_such_nvml"))
    thread = threading.Thread(target=agent.serve, name="agent-flaky", daemon=True)
    thread.start()
    try:
        farm.wait_nodes(1)
        job = work_job("reconnect", tmp_path / "out", 1, 1, sleep=4)
        farm.request("submit", jobs=[job.to_wire()])

        def running() -> bool:
            nodes = {n["id"]: n for n in farm.request("nodes")["nodes"]}
            return bool(nodes.get("flaky", {}).get("running"))
        farm.wait(running, 15, "flaky to run the task")
        agent.drop.set()
        assert agent.dropped.wait(5), "the agent did not drop its connection"
        farm.wait(farm.jobs_done, 30, "the job to complete after the reconnection")
    finally:
        agent.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    with sqlite3.connect(farm.db) as db:
        attempts = db.execute("SELECT state, error FROM attempts").fetchall()
        kinds = [k for (k,) in db.execute("SELECT kind FROM events")]
    assert [s for s, _ in attempts] == ["DONE"], attempts  # one attempt, never lost
    assert "node_session_replaced" not in kinds, kinds
    assert "task_requeued" not in kinds, kinds
    assert (tmp_path / "out" / "reconnect" / "reconnect.0001.png").stat().st_size > 0
