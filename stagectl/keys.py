"""CURVE keys for the engine's sockets (``stagectl keys generate``).

Layout of a keys directory::

    keys/server.key, keys/server.key_secret        the engine's certificate
    keys/authorized/<user>.key                     clients allowed in (with their role)
    keys/<user>.key, keys/<user>.key_secret        a client's own certificate

A client certificate carries ``user`` and ``role`` metadata; the engine takes the role from
the certificate, never from the request, when CURVE is on.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from scheduler.dispatch.curve import authorized_identities as certificate_identities
from stagectl.bus import ROLES

KEY_ROLES: tuple[str, ...] = (*ROLES, "agent")
"""Roles a certificate may carry: the engine's, plus ``agent`` for farm agents (the engine
treats an agent key as a viewer)."""


class KeyError_(Exception):
    """Missing or unreadable keys; the message says which file and what to run."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a CURVE client is."""

    user: str
    role: str


def generate(keys_dir: Path, name: str, role: str | None = None,
             authorize: bool = True) -> tuple[Path, Path]:
    """Create a certificate pair; a client (``role`` given) is also authorised.

    Returns:
        The public and secret key file paths.
    """
    if role is not None and role not in KEY_ROLES:
        raise ValueError(f"role must be one of {', '.join(KEY_ROLES)}, got {role!r}")
    keys_dir.mkdir(parents=True, exist_ok=True)
    metadata = {"user": name}
    if role is not None:
        metadata["role"] = role
    public_key, secret_key = zmq.curve_keypair()
    public, secret = keys_dir / f"{name}.key", keys_dir / f"{name}.key_secret"
    meta = "".join(f"    {k} = \"{v}\"\n" for k, v in metadata.items())
    head = (f"#   ZeroMQ CURVE certificate for {name} (stagectl keys generate)\n"
            f"metadata\n{meta}curve\n")
    public.write_text(f"{head}    public-key = \"{public_key.decode()}\"\n", encoding="utf-8")
    secret.touch(mode=0o600)
    secret.write_text(f"{head}    public-key = \"{public_key.decode()}\"\n"
                      f"    secret-key = \"{secret_key.decode()}\"\n", encoding="utf-8")
    if role is not None and authorize:
        authorized = keys_dir / "authorized"
        authorized.mkdir(exist_ok=True)
        shutil.copy(public, authorized / Path(public).name)
    return Path(public), Path(secret)


def load_pair(keys_dir: Path, name: str) -> tuple[bytes, bytes]:
    """Load ``name``'s public and secret keys."""
    path = keys_dir / f"{name}.key_secret"
    if not path.exists():
        raise KeyError_(f"{path}: not found; run `stagectl keys generate --name {name}"
                        f"{'' if name == 'server' else ' --role operator'} --dir {keys_dir}`")
    public, secret = zmq.auth.load_certificate(str(path))
    if secret is None:
        raise KeyError_(f"{path}: has no secret key")
    return public, secret


def load_server_public(keys_dir: Path) -> bytes:
    """The engine's public key, which clients need to connect."""
    path = keys_dir / "server.key"
    if not path.exists():
        raise KeyError_(f"{path}: not found; run `stagectl keys generate --name server "
                        f"--dir {keys_dir}`")
    public, _ = zmq.auth.load_certificate(str(path))
    return public


def authorized_identities(keys_dir: Path) -> dict[str, Identity]:
    """Map of z85 public key -> identity for every authorised client.

    A role the engine does not know (or none) reads as viewer.
    """
    return {public: Identity(user, role if role in ROLES else "viewer")
            for public, (user, role) in certificate_identities(keys_dir).items()}
