"""The listener thread against a real engine over loopback sockets."""

from __future__ import annotations

from typing import Any

from gui.bridge import EngineBridge
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import OPERATOR, make_bridge, stop_bridge


def test_bridge_resyncs_status_and_sees_heartbeats(qtbot, harness: StageHarness) -> None:
    bridge = make_bridge(harness)
    statuses: list[dict[str, Any]] = []
    bridge.status_received.connect(statuses.append)
    try:
        with qtbot.waitSignal(bridge.connection_changed, timeout=3000):
            bridge.start()
        qtbot.waitUntil(lambda: bool(statuses), timeout=3000)
        status = statuses[0]
        assert status["stage"]["name"] == "gui-stage"
        assert [d["name"] for d in status["devices"]] == ["led-main"]
        assert bridge.connected
    finally:
        stop_bridge(bridge)


def test_bridge_reports_results_deltas_and_refusals(qtbot, harness: StageHarness) -> None:
    bridge = make_bridge(harness)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        with qtbot.waitSignal(bridge.command_succeeded, timeout=3000) as ok:
            bridge.command("ping")
        assert ok.args[0] == "ping" and ok.args[1]["pong"] is True

        with qtbot.waitSignal(bridge.device_delta, timeout=3000,
                              check_params_cb=lambda dev, d: d.get("gamma") == 2.2) as delta:
            bridge.command("led.set", {"key": "gamma", "value": 2.2})
        assert delta.args[0] == "led-main"

        with qtbot.waitSignal(bridge.command_failed, timeout=3000) as failed:
            bridge.command("led.set", {"key": "brightness_nits", "value": 99999})
        cmd, message = failed.args
        assert cmd == "led.set"
        assert "brightness_nits" in message and "99999" in message
    finally:
        stop_bridge(bridge)


def test_bridge_notices_engine_gone_and_drops_commands(qtbot) -> None:
    harness = StageHarness(free_port_config(stage="gui-gone")).start()
    bridge = make_bridge(harness, heartbeat_timeout_s=1.0, reply_timeout_s=0.5)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        with qtbot.waitSignal(bridge.connection_changed, timeout=3000,
                              check_params_cb=lambda up: not up):
            harness.stop()
        with qtbot.waitSignal(bridge.command_failed, timeout=3000) as failed:
            bridge.command("led.set", {"key": "gamma", "value": 2.6})
        assert failed.args[0] == "led.set"
        assert "no reply from the engine" in failed.args[1]
    finally:
        stop_bridge(bridge)
        if harness.loop.loop.is_running():
            harness.stop()


def test_bridge_stops_cleanly_without_an_engine(qtbot) -> None:
    config = free_port_config(stage="gui-nobody")
    bridge = EngineBridge(config, identity=OPERATOR)
    bridge.start()
    qtbot.wait(200)
    assert not bridge.connected
    stop_bridge(bridge)

