"""The render farm through the desk: the controller's status, nodes and cost.

Each request opens a :class:`scheduler.dispatch.client.FarmClient` with the configured
timeout and closes it; no answer in time is 503 ``farm_unavailable`` (the desk keeps serving
bookings). Times the controller sends as epoch seconds (``*_utc``) gain an ISO 8601 twin
with the site's offset (``deadline_utc`` -> ``deadline``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from stagectl.cli.timefmt import iso
from stagectl.desk import DeskError
from stagectl.desk.config import DeskConfig

__all__ = ["farm_call", "with_times"]

KINDS = {"jobs": "status", "nodes": "nodes", "cost": "cost"}


def with_times(value: Any, tz: str) -> Any:
    """A copy of a reply where every number under a ``*_utc`` key has an ISO twin."""
    if isinstance(value, list):
        return [with_times(v, tz) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        out[key] = with_times(item, tz)
        if isinstance(key, str) and key.endswith("_utc") and isinstance(item, int | float) \
                and not isinstance(item, bool):
            try:
                out[key.removesuffix("_utc")] = iso(datetime.fromtimestamp(item, UTC), tz)
            except (OverflowError, OSError, ValueError):
                out[key.removesuffix("_utc")] = None
        elif isinstance(key, str) and key.endswith("_utc") and item is None:
            out[key.removesuffix("_utc")] = None
    return out


def farm_call(config: DeskConfig, what: str, tz: str) -> dict[str, Any]:
    """Ask the controller for ``jobs``, ``nodes`` or ``cost``.

    Raises:
        DeskError: 503 ``farm_unavailable`` (no controller configured or none answered),
            502 ``farm_refused`` (it answered an error).
    """
    if not config.farm_controller:
        raise DeskError(503, "farm_unavailable", {"controller": ""},
                        reason="no controller is configured ([farm] controller in the desk's "
                               "config)")
    from scheduler.dispatch.client import ControllerError, ControllerUnavailable, FarmClient
    from scheduler.dispatch.curve import KeysMissing

    try:
        client = FarmClient(config.farm_controller, timeout_s=config.farm_timeout_s,
                            keys_dir=config.farm_keys_dir)
    except KeysMissing as exc:
        raise DeskError(503, "farm_unavailable", {"controller": config.farm_controller},
                        reason=str(exc)) from None
    try:
        reply = client.request(KINDS[what])
    except ControllerUnavailable as exc:
        raise DeskError(503, "farm_unavailable", {"controller": config.farm_controller},
                        reason=str(exc)) from None
    except ControllerError as exc:
        raise DeskError(502, "farm_refused", {"controller": config.farm_controller},
                        reason=str(exc)) from None
    finally:
        client.close()
    reply = {k: v for k, v in reply.items() if k not in ("req", "ok", "type")}
    out = with_times(reply, tz)
    out["timezone"] = tz
    return dict(out)
