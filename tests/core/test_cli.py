"""The CLI as an operator uses it: real processes, real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagectl.harness import free_port

STAGECTL = [sys.executable, "-m", "stagectl"]


def stage_toml(tmp_path: Path, name: str = "cli-stage") -> Path:
    udp = free_port(socket.SOCK_DGRAM)
    text = f"""
[stage]
name = "{name}"
site = "Nansha"
timezone = "Asia/Shanghai"
frame_rate = 25

[engine]
command = "tcp://127.0.0.1:{free_port()}"
state = "tcp://127.0.0.1:{free_port()}"

[mqtt]
enabled = false

[[devices]]
name = "led-main"
kind = "led"
driver = "osc"
address = "127.0.0.1:{udp}"
max_brightness_nits = 1500

[[simulators]]
name = "led-main-sim"
kind = "led"
listen = "127.0.0.1:{udp}"
latency_ms = 1
"""
    path = tmp_path / "stage.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*STAGECTL, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


@pytest.fixture
def running_stage(tmp_path: Path) -> Iterator[Path]:
    config = stage_toml(tmp_path)
    procs = [subprocess.Popen([*STAGECTL, "sim", "--config", str(config)],
                              stderr=subprocess.PIPE, text=True),
             subprocess.Popen([*STAGECTL, "serve", "--config", str(config)],
                              stderr=subprocess.PIPE, text=True)]
    try:
        deadline = time.monotonic() + 20
        while True:
            result = run("status", "--json", "--config", str(config))
            if result.returncode == 0 and json.loads(result.stdout)["devices"][0]["health"] \
                    == "online":
                break
            assert time.monotonic() < deadline, f"stage never came up: {result.stderr}"
            time.sleep(0.3)
        yield config
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGINT)
        for proc in reversed(procs):
            try:
                assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
            finally:
                if proc.poll() is None:
                    proc.kill()
                if proc.stderr:
                    proc.stderr.close()


def test_status_json_shape_and_led_commands(running_stage: Path) -> None:
    cfg = str(running_stage)
    status = json.loads(run("status", "--json", "--config", cfg).stdout)
    (dev,) = status["devices"]
    assert set(dev) >= {"name", "kind", "health", "state"}
    assert (dev["name"], dev["kind"], dev["health"]) == ("led-main", "led", "online")

    assert run("led", "set", "brightness", "1200", "--config", cfg).returncode == 0
    assert run("led", "set", "colour_temperature", "5600", "--config", cfg).returncode == 0
    assert run("led", "blackout", "on", "--config", cfg).returncode == 0
    assert run("led", "pattern", "grid", "--config", cfg).returncode == 0
    deadline = time.monotonic() + 3
    while True:
        state = json.loads(run("status", "--json", "--config", cfg).stdout)["devices"][0][
            "state"]
        if (state["brightness_nits"], state["colour_temperature_k"], state["blackout"],
                state["test_pattern"]) == (1200.0, 5600, True, "grid"):
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.1)
    table = run("status", "--config", cfg)
    assert table.returncode == 0 and "led-main" in table.stdout and "online" in table.stdout


def test_led_errors_and_exit_codes(running_stage: Path) -> None:
    cfg = str(running_stage)
    bad = run("led", "set", "brightness", "99999", "--config", cfg)
    assert bad.returncode == 2
    assert "brightness_nits" in bad.stderr and "99999" in bad.stderr
    assert run("led", "set", "sparkle", "1", "--config", cfg).returncode == 2
    assert run("led", "blackout", "maybe", "--config", cfg).returncode == 2
    assert run("led", "preset", "500", "--config", cfg).returncode == 2
    refused = run("led", "set", "gamma", "2.2", "--role", "viewer", "--config", cfg)
    assert refused.returncode == 1 and "may not run led.set" in refused.stderr
    ok = run("led", "preset", "2", "--json", "--config", cfg)
    assert ok.returncode == 0 and json.loads(ok.stdout) == {"device": "led-main", "preset": 2}


def test_no_engine_is_a_clear_failure(tmp_path: Path) -> None:
    result = run("status", "--config", str(stage_toml(tmp_path)), timeout=20)
    assert result.returncode == 1
    assert "no reply from the engine" in result.stderr


@pytest.mark.parametrize("command", ["serve", "sim", "status", "demo"])
def test_bad_config_exits_2_and_starts_nothing(tmp_path: Path, command: str) -> None:
    config = stage_toml(tmp_path)
    text = config.read_text().replace("frame_rate = 25", "frame_rate = 26")
    config.write_text(text)
    result = run(command, "--config", str(config))
    assert result.returncode == 2
    assert str(config) in result.stderr and "stage.frame_rate" in result.stderr
    assert "26" in result.stderr


def test_demo_headless_duration_exits_cleanly(tmp_path: Path) -> None:
    config = stage_toml(tmp_path, "demo-stage")
    result = run("demo", "--headless", "--duration", "4", "--config", str(config), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "led-main" in result.stdout and "online" in result.stdout
    # everything is gone: nothing listens on the engine port any more. SO_REUSEADDR lets the
    # bind through connections left in TIME_WAIT by the engine's own close (a race that has
    # failed this test); it still fails while any process listens there.
    port = int(config.read_text().split("command = \"tcp://127.0.0.1:")[1].split('"')[0])
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))


def test_keys_generate(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert run("keys", "generate", "--name", "server", "--dir", str(keys)).returncode == 0
    assert run("keys", "generate", "--name", "ana", "--role", "operator", "--dir",
               str(keys)).returncode == 0
    assert (keys / "authorized" / "ana.key").exists()
    assert (keys / "server.key_secret").stat().st_mode & 0o077 == 0
    assert run("keys", "generate", "--name", "bob", "--dir", str(keys)).returncode == 2
    assert run("keys", "generate", "--name", "bob", "--role", "admin", "--dir",
               str(keys)).returncode == 2


def test_error_lines_are_text_not_rich_markup(tmp_path: Path) -> None:
    """Brackets in an error are shown as written: rich used to eat `[invalid_value]`-like
    text and raise MarkupError on `[/x]`, turning a one-line error into a traceback."""
    from typer.testing import CliRunner

    from stagectl.cli.main import app

    odd = tmp_path / "[/x]" / "stage.toml"
    result = CliRunner().invoke(app, ["status", "--config", str(odd)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "[/x]" in result.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[stage]\nname = "bad"\nframe_rate = "[fast]"\n')
    result = CliRunner().invoke(app, ["status", "--config", str(bad)])
    assert result.exit_code == 2 and "[fast]" in result.stderr, result.stderr
