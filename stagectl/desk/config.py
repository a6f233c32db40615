"""The desk's configuration file (``configs/desk.toml``, docs/desk-api.md "Config").

Unknown keys, bad addresses and bad values are refused with the file, the key and what was
expected (``stagectl.config`` style, :class:`stagectl.config.ConfigError`); the CLI exits 2.

Serving other machines (a bind address that is not loopback) needs HTTPS: ``tls_cert`` and
``tls_key`` name PEM files, checked here (both or neither, readable, PEM, the key unencrypted
and matching the certificate) so that a bad pair is refused before the store is opened, not
by uvicorn after. Plain HTTP off loopback only with an explicit ``allow_plain_http = true``
(a TLS-terminating proxy in front, a closed studio network): passwords, tokens and session
cookies then cross the network in the clear.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from scheduler.sql import is_postgres_url
from stagectl.config import ConfigError, format_validation_error, read_toml

__all__ = ["DEFAULT_DESK_CONFIG", "DeskConfig", "load_desk_config", "parse_desk_config"]

DEFAULT_DESK_CONFIG = Path("configs/desk.toml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _split_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("host:port, such as 127.0.0.1:8470 (port 0: any free port)")
    return host, int(port)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _DeskSection(_Model):
    # the TLS keys come before ``bind``: its check reads them (fields validate in order)
    tls_cert: str = ""
    tls_key: str = ""
    allow_plain_http: bool = False
    bind: str = "127.0.0.1:8470"
    db: str = Field(default="var/desk/booking.sqlite", min_length=1)
    seed: str = "configs/booking/stages.json"
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    max_body_bytes: int = Field(default=65536, ge=1024, le=16 * 1024 * 1024)

    @field_validator("bind")
    @classmethod
    def _bind(cls, value: str, info: ValidationInfo) -> str:
        host, _ = _split_bind(value)
        if not (_is_loopback(host) or info.data.get("tls_cert")
                or info.data.get("allow_plain_http")):
            raise ValueError(
                "a loopback address such as 127.0.0.1:8470, or set tls_cert and tls_key (PEM "
                "files) to serve other machines over HTTPS (or allow_plain_http = true, only "
                "behind a TLS proxy or on a closed network: passwords and cookies cross it "
                "in the clear)")
        return value


class _FarmSection(_Model):
    controller: str = ""
    timeout_s: float = Field(default=2.0, gt=0, le=30)
    keys_dir: str = ""

    @field_validator("controller")
    @classmethod
    def _controller(cls, value: str) -> str:
        if value and not (value.startswith("tcp://") and ":" in value[6:]
                          and value.rsplit(":", 1)[1].isdigit()):
            raise ValueError("tcp://host:port of `stagectl farm controller`, or \"\" for none")
        return value


class _File(_Model):
    desk: _DeskSection = _DeskSection()
    farm: _FarmSection = _FarmSection()


@dataclass(frozen=True)
class DeskConfig:
    """What ``stagectl desk serve`` needs.

    Attributes:
        host: address to bind (loopback only in this slice).
        port: port to bind; 0 picks a free one (tests).
        db: the booking store: an SQLite file, or a ``postgresql://`` URL (a shared
            deployment; a password comes from ``PGPASSWORD`` or ``~/.pgpass``, not the
            file); the desk's tables live in it too.
        seed: stages loaded with ``book setup`` semantics when the store has none (None: no
            seed).
        session_hours: idle browser sessions end after this.
        max_body_bytes: larger request bodies are answered 413 ``too_large``.
        farm_controller: ``tcp://host:port`` of the farm controller, "" for none.
        farm_timeout_s: how long a farm request may wait before 503 ``farm_unavailable``.
        farm_keys_dir: CURVE keys for a controller off loopback (None: plain).
        secure_cookies: set ``Secure`` on the session cookie (served over https; on
            whenever ``tls_cert`` is set).
        tls_cert: PEM certificate (chain) to serve HTTPS with (None: plain HTTP).
        tls_key: PEM private key of ``tls_cert`` (unencrypted).
        allow_plain_http: serve plain HTTP on a non-loopback address (checked by
            :func:`parse_desk_config`).
    """

    host: str = "127.0.0.1"
    port: int = 8470
    db: Path | str = Path("var/desk/booking.sqlite")
    seed: Path | None = Path("configs/booking/stages.json")
    session_hours: float = 12.0
    max_body_bytes: int = 65536
    farm_controller: str = ""
    farm_timeout_s: float = 2.0
    farm_keys_dir: Path | None = None
    secure_cookies: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    allow_plain_http: bool = False

    @property
    def bind(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def scheme(self) -> str:
        """``https`` with a certificate, else ``http``."""
        return "https" if self.tls_cert is not None else "http"


def parse_desk_config(data: dict[str, Any], source: Path | str = "<config>") -> DeskConfig:
    """Validate an already parsed TOML mapping.

    Raises:
        ConfigError: unknown keys or bad values, one line each.
    """
    try:
        f = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, format_validation_error(exc)) from None
    host, port = _split_bind(f.desk.bind)
    problems = _tls_problems(f.desk.tls_cert, f.desk.tls_key)
    if problems:
        raise ConfigError(source, problems)
    db: Path | str = f.desk.db if is_postgres_url(f.desk.db) else Path(f.desk.db)
    return DeskConfig(
        host=host, port=port, db=db, seed=Path(f.desk.seed) if f.desk.seed else None,
        session_hours=f.desk.session_hours, max_body_bytes=f.desk.max_body_bytes,
        farm_controller=f.farm.controller, farm_timeout_s=f.farm.timeout_s,
        farm_keys_dir=Path(f.farm.keys_dir) if f.farm.keys_dir else None,
        secure_cookies=bool(f.desk.tls_cert),
        tls_cert=Path(f.desk.tls_cert) if f.desk.tls_cert else None,
        tls_key=Path(f.desk.tls_key) if f.desk.tls_key else None,
        allow_plain_http=f.desk.allow_plain_http,
    )


def _read_pem(key: str, path: str, marker: str, what: str) -> tuple[str, list[str]]:
    """The file's text, or a problem line (unreadable, not PEM, no ``marker`` block)."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError as exc:
        return "", [f"desk.{key}: cannot read {path!r}: {exc.strerror or exc}"]
    if f"-----BEGIN {marker}" not in text and not (
            marker == "PRIVATE KEY" and "PRIVATE KEY-----" in text):
        return "", [f"desk.{key}: {path!r} holds no PEM {what} (expected a "
                    f"'-----BEGIN {marker}-----' block)"]
    return text, []


def _tls_problems(cert: str, key: str) -> list[str]:
    """What is wrong with the ``tls_cert``/``tls_key`` pair, one line each (none: usable).

    The pair is loaded the way uvicorn will load it (:meth:`ssl.SSLContext.load_cert_chain`),
    so a key that does not match its certificate is refused here, with the keys named.
    """
    if not cert and not key:
        return []
    if not (cert and key):
        given, missing = ("tls_cert", "tls_key") if cert else ("tls_key", "tls_cert")
        return [f"desk.{missing}: missing; {given} is set, and HTTPS needs both (the PEM "
                "certificate and its private key), or neither for plain HTTP on loopback"]
    _, problems = _read_pem("tls_cert", cert, "CERTIFICATE", "certificate")
    key_text, key_problems = _read_pem("tls_key", key, "PRIVATE KEY", "private key")
    problems += key_problems
    if "ENCRYPTED" in key_text:
        problems.append(f"desk.tls_key: {key!r} is encrypted with a passphrase, which the desk "
                        "cannot ask for when it starts; store it decrypted, readable only by "
                        "the desk's user (openssl pkey -in KEY -out KEY.plain)")
    if problems:
        return problems

    def no_passphrase() -> str:
        raise ValueError("encrypted key")

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            cert, key, password=no_passphrase)
    except (ssl.SSLError, ValueError) as exc:
        return [f"desk.tls_key: {key!r} and tls_cert {cert!r} do not load as a pair (is it "
                f"the certificate's own key?): {exc}"]
    return []


def load_desk_config(path: Path | str) -> DeskConfig:
    """Read and validate a desk TOML file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or invalid values.
    """
    return parse_desk_config(read_toml(path), path)
