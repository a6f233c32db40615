"""Who may send what to the farm controller, by the role in the peer's CURVE certificate.

Agents register and report; producers and engineers submit, cancel and retry; everyone with a
key reads. Without CURVE (loopback only) there is no certificate, so no role: every local
process may do everything, as any local user can (docs/farm-dispatch.md, "Trust").
"""

from __future__ import annotations

from scheduler.dispatch import protocol as p

FARM_ROLES = ("agent", "producer", "engineer", "operator", "viewer")
"""Roles a farm certificate may carry; any other role (or none) counts as ``viewer``."""

READ = frozenset({"status", "nodes", "cost", "events", "ping"})
WRITE = frozenset({"submit", "cancel_job", "retry_job"})
AGENT = frozenset({p.REGISTER, p.HEARTBEAT, p.PROGRESS, p.LOG, p.FINISHED, p.BYE})

_MAY: dict[str, frozenset[str]] = {
    "agent": AGENT | {"ping"},
    "producer": READ | WRITE,
    "engineer": READ | WRITE,
    "operator": READ,
    "viewer": READ,
}


def role_of(meta_role: str | None) -> str:
    """The farm role of a certificate's ``role`` metadata."""
    return meta_role if meta_role in _MAY else "viewer"


def allowed_roles(kind: str) -> tuple[str, ...]:
    """Roles that may send a message of type ``kind`` (empty: an unknown type)."""
    return tuple(r for r in FARM_ROLES if kind in _MAY[r])


def may(role: str | None, kind: str) -> bool:
    """Whether ``role`` may send ``kind``; ``None`` (no CURVE, loopback) may send anything."""
    return role is None or kind in _MAY.get(role, READ)
