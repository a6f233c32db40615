"""The service around the API: config, server start/stop, the CLI's serve, OpenAPI, messages."""

from __future__ import annotations

import os
import re
import signal
import socket
import string
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from stagectl.config import ConfigError
from stagectl.desk import DESK_MESSAGES, DeskError
from stagectl.desk.config import load_desk_config, parse_desk_config
from tests.desk.conftest import PASSWORDS, Desk, Template, start_desk

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_config_loads() -> None:
    cfg = load_desk_config(REPO / "configs" / "desk.toml")
    assert (cfg.host, cfg.port) == ("127.0.0.1", 8470)
    assert cfg.max_body_bytes == 65536 and cfg.session_hours == 12
    assert cfg.farm_controller == ""


@pytest.mark.parametrize("doc,key", [
    ({"desk": {"colour": "red"}}, "desk.colour"),
    ({"desk": {"bind": "8470"}}, "desk.bind"),
    ({"desk": {"bind": "0.0.0.0:8470"}}, "desk.bind"),
    ({"desk": {"bind": "127.0.0.1:99999"}}, "desk.bind"),
    ({"desk": {"max_body_bytes": 10}}, "desk.max_body_bytes"),
    ({"desk": {"session_hours": 0}}, "desk.session_hours"),
    ({"farm": {"controller": "http://x"}}, "farm.controller"),
    ({"farms": {}}, "farms"),
])
def test_bad_config_names_the_key(doc: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_desk_config(doc, "desk.toml")
    assert any(line.startswith(f"desk.toml: {key}") for line in str(err.value).splitlines()), \
        str(err.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_desk_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[desk\n")
    with pytest.raises(ConfigError, match="TOML syntax error"):
        load_desk_config(bad)


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize("code", sorted(DESK_MESSAGES))
def test_every_message_has_both_languages_with_the_same_fields(code: str) -> None:
    en, zh = DESK_MESSAGES[code]
    assert en.strip() and zh.strip()
    assert _fields(en) == _fields(zh)
    assert re.search("[\u4e00-\u9fff]", zh), f"{code}: no Chinese in {zh!r}"
    err = DeskError(400, code, **dict.fromkeys(_fields(en), "X"))
    assert err.body()["error"]["message"] == en.format(**dict.fromkeys(_fields(en), "X"))


def test_every_code_the_desk_raises_is_in_the_catalogue() -> None:
    used: set[str] = set()
    for path in (REPO / "stagectl" / "desk").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'DeskError\(\s*\d{3},\s*"([a-z_]+)"', text))
        used |= set(re.findall(r'template="([a-z_]+)"', text))
    assert used and used <= set(DESK_MESSAGES), used - set(DESK_MESSAGES)


def test_openapi_lists_the_contract_resources(desk: Desk) -> None:
    doc = httpx.get(desk.url + "/openapi.json").json()
    paths = set(doc["paths"])
    for p in ("/api/v1/me", "/api/v1/sites", "/api/v1/stages", "/api/v1/stages/{stage_id}",
              "/api/v1/pools", "/api/v1/bookings", "/api/v1/bookings/{booking_id}",
              "/api/v1/bookings/{booking_id}/hold", "/api/v1/bookings/{booking_id}/confirm",
              "/api/v1/bookings/{booking_id}/release", "/api/v1/bookings/{booking_id}/cancel",
              "/api/v1/bookings/{booking_id}/challenge", "/api/v1/bookings/{booking_id}/history",
              "/api/v1/solve", "/api/v1/outages", "/api/v1/reports", "/api/v1/farm/jobs",
              "/api/v1/farm/nodes", "/api/v1/farm/cost", "/api/v1/users",
              "/api/v1/users/{name}/disable", "/api/v1/tokens", "/api/v1/feeds",
              "/api/v1/session"):
        assert p in paths, p
    r = httpx.get(desk.url + "/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_stop_is_clean_with_a_keep_alive_client_and_a_request_in_flight(
        desk_template: Template, tmp_path: Path) -> None:
    server = start_desk(desk_template, tmp_path)
    # asyncio sets TCP_NODELAY only on IPPROTO_TCP sockets: else ~40 ms per reply
    assert server._sock is not None and server._sock.proto == socket.IPPROTO_TCP
    client = httpx.Client(base_url=server.url, timeout=30, headers={
        "Authorization": f"Bearer {desk_template.tokens['engineer']}"})
    try:
        assert client.get("/api/v1/me").status_code == 200  # leaves a keep-alive connection
        done: list[int] = []

        def slow() -> None:
            try:
                done.append(client.post("/api/v1/solve", json={"time_limit_s": 1}).status_code)
            except httpx.HTTPError:
                done.append(-1)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 10
        t.join(10)
        assert done and done[0] in (200, -1)
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/api/v1/me", timeout=2)
        server.stop()  # idempotent
    finally:
        client.close()
        server.stop()


def test_two_desks_on_one_file_never_confirm_twice(desk_template: Template,
                                                   tmp_path: Path) -> None:
    a = start_desk(desk_template, tmp_path)
    b_config = a.config
    from stagectl.desk.server import DeskServer

    b = DeskServer(b_config).start()
    try:
        auth = {"Authorization": f"Bearer {desk_template.tokens['producer']}"}
        ids = []
        for server in (a, b):
            r = httpx.post(server.url + "/api/v1/bookings", headers=auth, json={
                "production": "X", "duration_minutes": 60, "priority": 1,
                "earliest_start": "2031-03-04 08:00", "latest_end": "2031-03-04 20:00",
                "stage": "HP-3", "start": "2031-03-04 09:00"})
            assert r.status_code == 201
            ids.append(r.json()["id"])
            httpx.post(f"{server.url}/api/v1/bookings/{ids[-1]}/hold",
                       headers=auth).raise_for_status()
        r1 = httpx.post(f"{b.url}/api/v1/bookings/{ids[1]}/confirm", headers=auth)
        r0 = httpx.post(f"{a.url}/api/v1/bookings/{ids[0]}/confirm", headers=auth)
        assert r1.status_code == 409 and r0.status_code == 200
        r1 = httpx.post(f"{b.url}/api/v1/bookings/{ids[1]}/confirm", headers=auth)
        assert r1.status_code == 409 and r1.json()["error"]["details"]["explanation"]
    finally:
        a.stop()
        b.stop()


def test_cli_serve_answers_and_stops_on_sigterm(desk_template: Template,
                                                tmp_path: Path) -> None:
    db = desk_template.copy(tmp_path)
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[desk]\nbind = "127.0.0.1:0"\ndb = "{db}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-c", "from stagectl.cli.desk import app; app()", "serve",
         "--config", str(cfg)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"serving (http://127\.0\.0\.1:\d+)", line)
        assert m, line + (proc.stderr.read() if proc.stderr else "")
        url = m.group(1)
        r = httpx.post(url + "/api/v1/session",
                       json={"user": "viewer", "password": PASSWORDS["viewer"]}, timeout=30)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_a_bad_seed_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stagectl.cli.desk import app as desk_cli

    seed = tmp_path / "stages.json"
    cfg = tmp_path / "desk.toml"
    cfg.write_text(f'[desk]\nbind = "127.0.0.1:0"\ndb = "{tmp_path / "d.sqlite"}"\n'
                   f'seed = "{seed}"\n')
    runner = CliRunner()
    for text, words in (("", "cannot read the seed"), ('{"stages": []}', "lists no stages"),
                        ('{"stages": [{"id": "A", "colour": 1}]}', "stages[0].colour")):
        seed.write_text(text)
        r = runner.invoke(desk_cli, ["token", "create", "x", "--config", str(cfg)],
                          env={"COLUMNS": "300"})
        assert r.exit_code == 2, r.output
        assert str(seed) in r.output and words in r.output, r.output
