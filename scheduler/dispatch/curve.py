"""CURVE for the farm sockets, with the key layout of ``stagectl keys generate``.

``DIR/server.key_secret`` is the controller's certificate, ``DIR/authorized/*.key`` the agents
and clients let in, ``DIR/<name>.key_secret`` a client's own certificate. Kept here with
``zmq.auth`` directly because the scheduler package may not import the engine's key module.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class KeysMissing(Exception):
    """A key file the socket needs is not there; the message names it and what to run."""


def is_loopback(endpoint: str) -> bool:
    """Whether a ZeroMQ endpoint stays on this machine (loopback, ipc, inproc)."""
    parsed = urlparse(endpoint)
    if parsed.scheme in ("ipc", "inproc"):
        return True
    host = (parsed.hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _load(path: Path, hint: str) -> tuple[bytes, bytes | None]:
    if not path.is_file():
        raise KeysMissing(f"{path}: not found; run `{hint}`")
    return zmq.auth.load_certificate(str(path))


def server_keys(ctx: zmq.Context[Any], sock: zmq.Socket[Any],
                keys_dir: Path) -> ThreadAuthenticator:
    """Make ``sock`` a CURVE server that lets in only ``keys_dir/authorized`` keys."""
    hint = f"stagectl keys generate --name server --dir {keys_dir}"
    public, secret = _load(keys_dir / "server.key_secret", hint)
    authorized = keys_dir / "authorized"
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise KeysMissing(f"{authorized}: no authorised agent or client keys; run "
                          f"`stagectl keys generate --name NODE --role agent --dir {keys_dir}`")
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(authorized))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


def client_keys(sock: zmq.Socket[Any], keys_dir: Path, name: str) -> None:
    """Make ``sock`` a CURVE client with ``keys_dir/<name>.key_secret``."""
    server_public, _ = _load(keys_dir / "server.key",
                             f"stagectl keys generate --name server --dir {keys_dir}")
    public, secret = _load(keys_dir / f"{name}.key_secret",
                           f"stagectl keys generate --name {name} --role ROLE --dir {keys_dir}")
    if secret is None:
        raise KeysMissing(f"{keys_dir / (name + '.key_secret')}: has no secret key")
    sock.curve_serverkey = server_public
    sock.curve_publickey = public
    sock.curve_secretkey = secret


_META = re.compile(r'^\s+(\w[\w-]*)\s*=\s*"?([^"\n]*)"?\s*$')


def read_metadata(path: Path) -> dict[str, str]:
    """The ``metadata`` section of a ZeroMQ certificate file (``user``, ``role``)."""
    meta: dict[str, str] = {}
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "\t", "#")):
            section = line.strip()
            continue
        match = _META.match(line)
        if match and section == "metadata":
            meta[match.group(1)] = match.group(2)
    return meta


def authorized_identities(keys_dir: Path) -> dict[str, tuple[str, str | None]]:
    """z85 public key -> (user, role metadata) of every ``keys_dir/authorized/*.key``.

    ZeroMQ's authenticator gives each CURVE message the z85 public key of its sender as the
    ``User-Id`` frame property; this maps it to the certificate's user and role.
    """
    out: dict[str, tuple[str, str | None]] = {}
    folder = keys_dir / "authorized"
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.key")):
        public, _ = zmq.auth.load_certificate(str(path))
        meta = read_metadata(path)
        out[public.decode()] = (meta.get("user", path.stem), meta.get("role"))
    return out
