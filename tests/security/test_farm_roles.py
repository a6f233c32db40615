"""Roles from CURVE certificates are enforced by the farm controller (issue 11).

Before, any authorised key could do anything: a viewer's key submitted and cancelled jobs and
registered as an agent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.dispatch import protocol as p
from scheduler.dispatch.client import ControllerError, FarmClient
from stagectl.keys import generate
from tests.dispatch.conftest import Farm, work_job
from tests.security.farm_peers import RawPeer, farm

__all__ = ["farm"]


def make_keys(keys: Path) -> None:
    generate(keys, "server")
    for name, role in (("n1", "agent"), ("pam", "producer"), ("eng", "engineer"),
                       ("vic", "viewer"), ("ola", "operator")):
        generate(keys, name, role=role)


def test_certificate_roles_are_enforced(farm: Farm, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys)
    farm.start_controller("--curve", "--keys-dir", str(keys))
    job = work_job("roles", tmp_path / "out", 1, 2)

    def client(name: str) -> FarmClient:
        return FarmClient(farm.address, timeout_s=5, keys_dir=keys, key_name=name)

    for name, role in (("vic", "viewer"), ("ola", "operator"), ("n1", "agent")):
        with client(name) as c:
            for kind, fields in (("submit", {"jobs": [job.to_wire()]}),
                                 ("cancel_job", {"job": "roles"}),
                                 ("retry_job", {"job": "roles"})):
                with pytest.raises(ControllerError) as refused:
                    c.request(kind, **fields)
                reply = refused.value.reply
                assert reply["code"] == "forbidden" and reply["role"] == role, reply
                assert reply["allowed_roles"] == ["producer", "engineer"]
                assert f"role {role} may not send {kind}" in reply["error"]
    with client("vic") as c:
        assert c.request("status")["jobs"] == []  # viewers read
    with client("n1") as c:
        with pytest.raises(ControllerError) as refused:
            c.request("status")
        assert refused.value.reply["allowed_roles"] == ["producer", "engineer", "operator",
                                                        "viewer"]
    with client("pam") as c:
        assert c.request("submit", jobs=[job.to_wire()])["tasks"] == 2
    with client("eng") as c:
        assert c.request("cancel_job", job="roles")["job"] == "roles"
        assert c.request("retry_job", job="roles")["job"] == "roles"
    # only agent keys register, and only under their own name
    for name, node in (("pam", "pam"), ("vic", "vic"), ("n1", "n2")):
        with RawPeer(farm.address, keys, name) as peer:
            peer.send({"type": p.REGISTER, "node_id": node, "slots": 1, "vram_gb": 24,
                       "speed": 1.0, "gpus": [], "running": [], "finished": [], "version": 1})
            reply = peer.recv_type(p.REFUSE)
            assert reply["code"] == "forbidden", reply
            if name != "n1":
                assert reply["allowed_roles"] == ["agent"]
            else:
                assert "may register only as node 'n1'" in reply["reason"]
    producer_agent = farm.start_agent("pam", "--keys-dir", str(keys),
                                      "--register-timeout-s", "5")
    _, err = producer_agent.communicate(timeout=15)
    assert producer_agent.returncode == 1 and "forbidden" in err
    with client("vic") as c:
        assert c.request("nodes")["nodes"] == []
        counters = c.request("ping")["counters"]
    assert counters["forbidden"] >= 12
    farm.start_agent("n1", "--keys-dir", str(keys))
    farm.wait(lambda: _done(keys, farm.address), 30, "the job on the agent key")


def _done(keys: Path, address: str) -> bool:
    with FarmClient(address, timeout_s=5, keys_dir=keys, key_name="vic") as c:
        return bool(c.request("status")["jobs"][0]["state"] == "done")
