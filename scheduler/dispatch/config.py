"""Farm controller settings and compute pools, from ``configs/farm/*.toml``.

Errors name the file, the key path, the value and what was expected (exit 2 in the CLI).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler.dispatch.protocol import DEFAULT_CONTROLLER


class FarmConfigError(ValueError):
    """A bad farm config file."""


@dataclass(frozen=True)
class PoolConfig:
    """Rented compute reached through a batch system."""

    id: str
    backend: str = "local"
    max_slots: int = 4
    vram_gb: float = 80.0
    speed: float = 1.0
    cost_per_gpu_hour_cny: float = 0.0
    startup_s: int = 0
    workdir: str = "var/farm/pool"
    options: dict[str, Any] = field(default_factory=dict)
    """Passed to the backend (e.g. Slurm partition, account)."""


@dataclass(frozen=True)
class ControllerConfig:
    """How the controller listens, times out, plans and retries."""

    bind: str = DEFAULT_CONTROLLER
    heartbeat_s: float = 1.0
    node_timeout_s: float = 5.0
    assign_grace_s: float = 3.0
    """An assignment an agent has not reported running after this long is taken as lost."""
    plan_time_limit_s: float = 1.0
    plan_max_tasks: int = 300
    replan_min_interval_s: float = 2.0
    overrun_factor: float = 2.0
    blocklist_after: int = 3
    lost_limit: int = 5
    """A task whose attempts were lost this many times (its agent crashed or vanished each
    time, e.g. a frame that kills the renderer) fails instead of being requeued forever."""
    late_cost_cny_per_hour: float = 1000.0
    pool_poll_s: float = 1.0
    curve: bool = False
    """Force CURVE on (it is always on when ``bind`` is not loopback)."""
    keys_dir: str | None = None
    output_root: str | None = None
    """Every job output must lie inside this folder (default: the folder holding --db)."""
    max_message_bytes: int = 1 << 20
    """Largest frame the controller reads (ZeroMQ MAXMSGSIZE: a bigger one drops the peer)."""
    peer_queue: int = 256
    """Messages ZeroMQ queues per peer before it stops reading that peer (RCVHWM)."""
    peer_messages_per_turn: int = 100
    """Messages of one peer handled per loop turn; the rest of its turn's share is answered
    ``busy``, so one flooding peer never starves the others."""
    pools: tuple[PoolConfig, ...] = ()


_CONTROLLER_KEYS = {f for f in ControllerConfig.__dataclass_fields__ if f != "pools"}
_POOL_KEYS = set(PoolConfig.__dataclass_fields__)


def load_farm_config(path: Path) -> ControllerConfig:
    """Read ``[controller]`` and ``[[pools]]`` from a TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FarmConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise FarmConfigError(f"{path}: not valid TOML: {exc}") from exc
    for key in data:
        if key not in ("controller", "pools"):
            raise FarmConfigError(f"{path}: {key}: unknown table; expected [controller] or "
                                  "[[pools]]")
    raw = data.get("controller", {})
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _CONTROLLER_KEYS:
            raise FarmConfigError(f"{path}: controller.{key}: got {value!r}; expected one of "
                                  f"{sorted(_CONTROLLER_KEYS)}")
        default = getattr(ControllerConfig, key, None)
        _check_type(path, f"controller.{key}", value, default)
        kwargs[key] = value
    pools = []
    for i, item in enumerate(data.get("pools", [])):
        if not isinstance(item, dict) or "id" not in item:
            raise FarmConfigError(f"{path}: pools[{i}]: got {item!r}; expected a table with id")
        for key, value in item.items():
            if key not in _POOL_KEYS:
                raise FarmConfigError(f"{path}: pools[{i}].{key}: got {value!r}; expected one "
                                      f"of {sorted(_POOL_KEYS)}")
            if key not in ("options", "id"):
                _check_type(path, f"pools[{i}].{key}", value, getattr(PoolConfig, key))
        if item.get("backend", "local") not in ("local", "slurm"):
            raise FarmConfigError(f"{path}: pools[{i}].backend: got {item['backend']!r}; "
                                  "expected local or slurm")
        pools.append(PoolConfig(**item))
    return ControllerConfig(**kwargs, pools=tuple(pools))


def _check_type(path: Path, where: str, value: Any, default: Any) -> None:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        if isinstance(default, int) and not isinstance(default, bool):
            ok = ok and isinstance(value, int)
    else:
        ok = isinstance(value, str)
    if not ok:
        kind = type(default).__name__ if default is not None else "str"
        raise FarmConfigError(f"{path}: {where}: got {value!r}; expected a {kind}"
                              + (" >= 0" if kind in ("int", "float") else ""))
