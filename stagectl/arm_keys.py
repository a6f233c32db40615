"""CURVE keys of the arm link, read from the files the stage config names.

The engine's arm driver needs the controller's public key and its own key pair; a simulated
controller needs its key pair and the client public keys it lets in. Files are ZeroMQ
certificates as ``stagectl keys generate`` writes them (``keys/<name>.key`` public,
``keys/<name>.key_secret`` secret). Relative paths resolve against ``base_dir``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import zmq.auth

from drivers.arm.driver import ArmCurveKeys
from stagectl.config import ArmDeviceConfig, ArmSimulatorConfig


class ArmKeyError(ValueError):
    """A key file named by the config is missing or holds no key; says which and what to run."""


def _certificate(path: Path, what: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise ArmKeyError(f"{path}: {what} not found; create it with `stagectl keys generate "
                          f"--name {path.name.split('.')[0]} --dir {path.parent}`")
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise ArmKeyError(f"{path}: {what} is not a ZeroMQ certificate: {exc}") from None
    if need_secret and secret is None:
        raise ArmKeyError(f"{path}: {what} has no secret key (use the .key_secret file)")
    return public, secret


def driver_keys(cfg: ArmDeviceConfig, base_dir: Path) -> ArmCurveKeys | None:
    """The driver's CURVE keys, or None when the link stays on loopback without ``curve``."""
    if not cfg.needs_curve:
        return None
    server, _ = _certificate(base_dir / cfg.server_key, f"{cfg.name}: server_key", False)
    public, secret = _certificate(base_dir / cfg.client_key, f"{cfg.name}: client_key", True)
    assert secret is not None
    return ArmCurveKeys(server_public=server, client_public=public, client_secret=secret)


def simulator_settings(cfg: ArmSimulatorConfig, base_dir: Path = Path()) -> dict[str, Any]:
    """CURVE keyword settings for :class:`~drivers.arm.simulator.ArmSimSettings` (or none)."""
    if not cfg.needs_curve:
        return {}
    public, secret = _certificate(base_dir / cfg.secret_key, f"{cfg.name}: secret_key", True)
    clients: list[bytes] = []
    if cfg.authorized_dir:
        folder = base_dir / cfg.authorized_dir
        if not folder.is_dir():
            raise ArmKeyError(f"{folder}: {cfg.name}: authorized_dir is not a folder")
        for path in sorted(folder.glob("*.key")):
            clients.append(_certificate(path, "client key", False)[0])
        if not clients:  # an empty tuple means "any key": a given folder must name some
            raise ArmKeyError(f"{folder}: {cfg.name}: authorized_dir holds no client "
                              "certificates (*.key); add the engine's public key, or leave "
                              "authorized_dir unset to let any CURVE key in")
    return {"curve_public_key": public, "curve_secret_key": secret,
            "curve_clients": tuple(clients)}
