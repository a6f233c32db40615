"""HTTPS: the tls_cert/tls_key pair is checked when the config is read, a non-loopback bind
needs it (or an explicit allow_plain_http), and the desk really serves TLS with a
self-signed certificate made here by the openssl CLI; session cookies are Secure."""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from stagectl.cli.main import app
from stagectl.config import ConfigError
from stagectl.desk.config import load_desk_config, parse_desk_config
from tests.conftest import require_tool
from tests.desk.conftest import PASSWORDS, Template, start_desk


def _keypair(folder: Path, name: str, *, passphrase: str = "") -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost and its key (PEM), via openssl."""
    openssl = require_tool("openssl", ("/usr/bin",))
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert),
         *(["-passout", f"pass:{passphrase}"] if passphrase else ["-noenc"])],
        check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _keypair(tmp_path_factory.mktemp("tls"), "desk")


def _problems(doc: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_desk_config(doc, "desk.toml")
    return str(err.value).splitlines()


def test_tls_pair_allows_a_non_loopback_bind(pem: tuple[Path, Path]) -> None:
    cert, key = pem
    cfg = parse_desk_config({"desk": {"bind": "0.0.0.0:8471", "tls_cert": str(cert),
                                      "tls_key": str(key)}})
    assert (cfg.host, cfg.port, cfg.scheme) == ("0.0.0.0", 8471, "https")
    assert cfg.tls_cert == cert and cfg.tls_key == key
    assert cfg.secure_cookies


def test_non_loopback_without_tls_is_refused_unless_plain_http_is_asked_for() -> None:
    lines = _problems({"desk": {"bind": "0.0.0.0:8470"}})
    assert len(lines) == 1 and lines[0].startswith("desk.toml: desk.bind: got '0.0.0.0:8470'")
    assert "tls_cert and tls_key" in lines[0] and "allow_plain_http" in lines[0]
    cfg = parse_desk_config({"desk": {"bind": "0.0.0.0:8470", "allow_plain_http": True}})
    assert cfg.scheme == "http" and not cfg.secure_cookies
    assert parse_desk_config({"desk": {"bind": "[::1]:8470"}}).scheme == "http"


def test_half_a_pair_is_refused(pem: tuple[Path, Path]) -> None:
    cert, key = pem
    lines = _problems({"desk": {"tls_cert": str(cert)}})
    assert len(lines) == 1 and lines[0].startswith("desk.toml: desk.tls_key: missing")
    lines = _problems({"desk": {"tls_key": str(key)}})
    assert len(lines) == 1 and lines[0].startswith("desk.toml: desk.tls_cert: missing")


def test_unreadable_not_pem_mismatched_and_encrypted_files_are_named(
        pem: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pem
    missing = tmp_path / "nope.crt"
    lines = _problems({"desk": {"tls_cert": str(missing), "tls_key": str(key)}})
    assert lines == [f"desk.toml: desk.tls_cert: cannot read '{missing}': "
                     "No such file or directory"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    lines = _problems({"desk": {"tls_cert": str(junk), "tls_key": str(junk)}})
    assert [ln.split(":")[1].strip() for ln in lines] == ["desk.tls_cert", "desk.tls_key"]
    assert all("holds no PEM" in ln for ln in lines)
    swapped = _problems({"desk": {"tls_cert": str(key), "tls_key": str(cert)}})
    assert any(ln.startswith("desk.toml: desk.tls_cert:") for ln in swapped)
    _, other_key = _keypair(tmp_path, "other")
    lines = _problems({"desk": {"tls_cert": str(cert), "tls_key": str(other_key)}})
    assert len(lines) == 1 and "do not load as a pair" in lines[0]
    enc_cert, enc_key = _keypair(tmp_path, "locked", passphrase="s3cret-pass")
    lines = _problems({"desk": {"tls_cert": str(enc_cert), "tls_key": str(enc_key)}})
    assert len(lines) == 1 and "encrypted with a passphrase" in lines[0]


def test_the_config_file_takes_the_pair(pem: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pem
    toml = tmp_path / "desk.toml"
    toml.write_text(f'[desk]\nbind = "127.0.0.1:0"\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    assert load_desk_config(toml).scheme == "https"


def test_desk_serves_https_with_secure_cookies(desk_template: Template, tmp_path: Path,
                                               pem: tuple[Path, Path]) -> None:
    cert, key = pem
    # secure_cookies left off: the cookie is Secure because the request came over https
    server = start_desk(desk_template, tmp_path, tls_cert=cert, tls_key=key)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        with httpx.Client(base_url=server.url, verify=trust, timeout=30.0) as client:
            r = client.get("/api/v1/me",
                           headers={"Authorization": f"Bearer {desk_template.tokens['viewer']}"})
            assert r.status_code == 200 and r.json()["user"] == "viewer"
            r = client.post("/api/v1/session",
                            json={"user": "producer", "password": PASSWORDS["producer"]})
            assert r.status_code == 200, r.text
            cookie = r.headers["set-cookie"].lower()
            assert "; secure" in cookie and "httponly" in cookie
        # the certificate is what the desk presents: without trusting it, no connection
        with httpx.Client(base_url=server.url, timeout=30.0) as untrusting, \
                pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.get("/api/v1/me")
        # and plain HTTP on the HTTPS port gets no answer from the API
        plain = server.url.replace("https://", "http://")
        with httpx.Client(base_url=plain, timeout=30.0) as client:
            try:
                r = client.get("/api/v1/me")
            except httpx.TransportError:
                pass
            else:
                assert r.status_code == 400 and "/api" not in r.text, r.text
    finally:
        server.stop()



def _book_list(server_url: str, token: str, **env: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(app, ["book", "list", "--json", "--server", server_url],
                           env={"STAGECTL_DESK_TOKEN": token, "COLUMNS": "100", **env})
    return r.exit_code, r.stdout, r.output


def test_the_cli_refuses_a_desk_it_cannot_verify(desk_template: Template, tmp_path: Path,
                                                 pem: tuple[Path, Path]) -> None:
    cert, key = pem
    server = start_desk(desk_template, tmp_path, tls_cert=cert, tls_key=key)
    try:
        code, _, said = _book_list(server.url, desk_template.tokens["viewer"])
    finally:
        server.stop()
    assert code == 1 and "CERTIFICATE_VERIFY_FAILED" in said and "Traceback" not in said, said


def test_the_cli_trusts_the_studio_ca_from_ssl_cert_file(
        desk_template: Template, tmp_path: Path, pem: tuple[Path, Path]) -> None:
    cert, key = pem
    server = start_desk(desk_template, tmp_path, tls_cert=cert, tls_key=key)
    try:
        code, out, said = _book_list(server.url, desk_template.tokens["viewer"],
                                     SSL_CERT_FILE=str(cert))
    finally:
        server.stop()
    assert code == 0, said
    assert isinstance(json.loads(out), list)
