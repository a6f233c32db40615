"""The listener thread against a real engine over loopback sockets (and a scripted one)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from pytestqt.qtbot import QtBot

from gui.bridge import REFRESH_CMDS, EngineBridge
from stagectl.config import StageConfig
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import OPERATOR, make_bridge, stop_bridge


class ScriptedEngine:
    """A stand-in engine on real sockets: answers every request, publishes what a test says.

    It numbers its messages (``seq``) and sends a heartbeat every 0.1 s like an engine, but a
    test can make the counter jump (:meth:`jump`), which a real engine never does on purpose.
    """

    def __init__(self, config: StageConfig) -> None:
        self.config = config
        self.requests: list[str] = []
        self.results: dict[str, Any] = {
            "status": {"stage": {"name": config.stage.name}, "devices": []},
            "safety.status": {"armed": False, "talent_on_stage": False,
                              "estop_latched": False},
            "controls": {"you": {"user": "gui-test", "role": "viewer"}, "commands": {},
                         "interlocks": {}, "devices": {}},
            "cue.list": {"current": None, "next": None, "running": None, "cues": []},
        }
        self._lock = threading.Lock()
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self.seq = 0
        self.reply_seq: int | None = None  # the seq replies say they were computed at
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scripted-engine")
        self._ready = threading.Event()

    def start(self) -> ScriptedEngine:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        with self._lock:
            self._outbox.append((topic, message))

    def jump(self, seq: int) -> None:
        """The next message carries ``seq + 1``."""
        with self._lock:
            self.seq = seq

    def asked(self, cmd: str) -> int:
        with self._lock:
            return self.requests.count(cmd)

    def _run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        pub = ctx.socket(zmq.PUB)
        router = ctx.socket(zmq.ROUTER)
        try:
            for sock in (pub, router):
                sock.setsockopt(zmq.LINGER, 0)
            pub.bind(self.config.engine.state)
            router.bind(self.config.engine.command)
            self._ready.set()
            next_beat = 0.0
            while not self._stop.is_set():
                if time.monotonic() >= next_beat:
                    self.publish("engine", {"type": "heartbeat", "device": None, "data": {}})
                    next_beat = time.monotonic() + 0.1
                if router.poll(20):
                    peer, payload = router.recv_multipart()
                    request = json.loads(payload)
                    cmd = str(request["cmd"])
                    with self._lock:
                        self.requests.append(cmd)
                    reply = ({"id": request["id"], "ok": True, "result": self.results[cmd],
                              **({} if self.reply_seq is None else {"seq": self.reply_seq})}
                             if cmd in self.results else
                             {"id": request["id"], "ok": False,
                              "error": {"code": "unknown_command", "message": f"no {cmd}"}})
                    router.send_multipart([peer, json.dumps(reply).encode()])
                with self._lock:
                    outbox, self._outbox = self._outbox, []
                for topic, message in outbox:
                    with self._lock:
                        self.seq += 1
                        message = {**message, "seq": self.seq, "t": time.time()}
                    pub.send_multipart([topic.encode(), json.dumps(message).encode()])
        finally:
            pub.close()
            router.close()
            ctx.term()


@pytest.fixture
def scripted() -> Iterator[ScriptedEngine]:
    engine = ScriptedEngine(free_port_config(stage="gui-scripted")).start()
    try:
        yield engine
    finally:
        engine.stop()


def test_bridge_resyncs_status_and_sees_heartbeats(qtbot: QtBot, harness: StageHarness) -> None:
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


def test_bridge_reports_results_deltas_and_refusals(qtbot: QtBot, harness: StageHarness) -> None:
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

        with qtbot.waitSignal(bridge.command_error, timeout=3000) as error, \
                qtbot.waitSignal(bridge.command_failed, timeout=3000) as failed:
            bridge.command("led.set", {"key": "brightness_nits", "value": 99999})
        cmd, message = failed.args
        assert cmd == "led.set"
        assert "brightness_nits" in message and "99999" in message
        assert error.args[0] == "led.set"
        assert error.args[1]["code"] not in ("", "error") and error.args[1]["message"] == message
    finally:
        stop_bridge(bridge)


def test_bridge_notices_engine_gone_and_drops_commands(qtbot: QtBot) -> None:
    harness = StageHarness(free_port_config(stage="gui-gone")).start()
    bridge = make_bridge(harness, heartbeat_timeout_s=1.0, reply_timeout_s=0.5)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        with qtbot.waitSignal(bridge.connection_changed, timeout=3000,
                              check_params_cb=lambda up: not up):
            harness.stop()
        with qtbot.waitSignal(bridge.command_error, timeout=3000) as error, \
                qtbot.waitSignal(bridge.command_failed, timeout=3000) as failed:
            bridge.command("led.set", {"key": "gamma", "value": 2.6})
        assert failed.args[0] == "led.set"
        assert "no reply from the engine" in failed.args[1]
        assert error.args[1]["code"] == "timeout" and error.args[1]["timeout_s"] == 0.5
    finally:
        stop_bridge(bridge)
        if harness.loop.loop.is_running():
            harness.stop()


def test_bridge_stops_cleanly_without_an_engine(qtbot: QtBot) -> None:
    config = free_port_config(stage="gui-nobody")
    bridge = EngineBridge(config, identity=OPERATOR)
    bridge.start()
    qtbot.wait(200)
    assert not bridge.connected
    stop_bridge(bridge)



def test_start_fetches_every_snapshot_and_routes_them(qtbot: QtBot,
                                                     scripted: ScriptedEngine) -> None:
    bridge = EngineBridge(scripted.config, identity=OPERATOR)
    got: dict[str, list[dict[str, Any]]] = {"safety": [], "controls": [], "cues": []}
    bridge.safety_changed.connect(got["safety"].append)
    bridge.controls_changed.connect(got["controls"].append)
    bridge.cues_changed.connect(got["cues"].append)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: all(got.values()), timeout=3000)
        assert all(scripted.asked(cmd) >= 1 for cmd in REFRESH_CMDS)
        assert got["controls"][0]["you"]["role"] == "viewer"
        assert got["safety"][0]["armed"] is False
        # published copies arrive on their own topics
        scripted.publish("stage.safety", {"type": "delta", "data": {"armed": True}})
        scripted.publish("stage.controls", {"type": "controls",
                                            "data": {"commands": {"x": {}}}})
        scripted.publish("stage.cues", {"type": "cues", "data": {"next": 4}})
        qtbot.waitUntil(lambda: got["cues"][-1].get("next") == 4, timeout=3000)
        assert got["safety"][-1] == {"armed": True}
        assert got["controls"][-1] == {"commands": {"x": {}}}
        assert bridge.gaps == 0
    finally:
        stop_bridge(bridge)


@pytest.mark.parametrize("jump", [+5, -1_000_000], ids=["gap", "engine-restarted"])
def test_a_seq_gap_triggers_a_full_refresh(qtbot: QtBot, scripted: ScriptedEngine,
                                           jump: int) -> None:
    scripted.jump(1_000_000)
    bridge = EngineBridge(scripted.config, identity=OPERATOR)
    bridge.start()

    def asked() -> list[int]:
        return [scripted.asked(cmd) for cmd in REFRESH_CMDS]
    try:
        qtbot.waitUntil(lambda: bridge.connected, timeout=3000)
        qtbot.waitUntil(lambda: min(asked()) >= 1, timeout=3000)
        before = asked()
        seen = scripted.seq
        qtbot.waitUntil(lambda: (bridge._listener._last_seq or 0) > seen + 3, timeout=3000)
        assert bridge.gaps == 0  # heartbeats in order: nothing asked again
        assert asked() == before

        scripted.jump(scripted.seq + jump)
        qtbot.waitUntil(lambda: asked() == [n + 1 for n in before], timeout=3000)
        assert bridge.gaps == 1
        assert bridge.connected
    finally:
        stop_bridge(bridge)


def test_refreshes_the_engine_does_not_offer_stay_quiet(qtbot: QtBot,
                                                        scripted: ScriptedEngine) -> None:
    del scripted.results["controls"]  # an engine from before the controls query
    bridge = EngineBridge(scripted.config, identity=OPERATOR)
    failures: list[tuple[str, str]] = []
    bridge.command_failed.connect(lambda cmd, msg: failures.append((cmd, msg)))
    bridge.start()
    try:
        qtbot.waitUntil(lambda: scripted.asked("controls") >= 1, timeout=3000)
        errors: list[tuple[str, dict[str, Any]]] = []
        bridge.command_error.connect(lambda cmd, error: errors.append((cmd, error)))
        bridge.command("controls")  # asked for by a person: reported
        qtbot.waitUntil(lambda: bool(failures), timeout=3000)
        assert errors == [("controls", {"code": "unknown_command", "message": "no controls"})]
        assert failures == [("controls", "no controls")]
    finally:
        stop_bridge(bridge)


def test_a_snapshot_older_than_an_applied_delta_is_not_shown(qtbot: QtBot,
                                                             scripted: ScriptedEngine) -> None:
    """Replies and deltas travel on different sockets: the reply's seq says which is newer."""
    bridge = EngineBridge(scripted.config, identity=OPERATOR)
    shown: list[dict[str, Any]] = []
    bridge.safety_changed.connect(shown.append)
    bridge.start()
    try:
        qtbot.waitUntil(lambda: bridge.connected and bool(shown), timeout=3000)
        scripted.publish("stage.safety", {"type": "delta", "device": None,
                                          "data": {"armed": True, "estop_latched": True}})
        qtbot.waitUntil(lambda: shown[-1].get("estop_latched") is True, timeout=3000)
        applied = scripted.seq
        scripted.reply_seq = applied - 1  # computed before the e-stop's delta went out
        bridge.command("safety.status")
        qtbot.waitUntil(lambda: scripted.asked("safety.status") >= 2, timeout=3000)
        qtbot.wait(300)
        assert shown[-1].get("estop_latched") is True  # the older snapshot was not applied
        scripted.reply_seq = applied + 5  # newer than the delta: applied
        bridge.command("safety.status")
        qtbot.waitUntil(lambda: shown[-1].get("estop_latched") is False, timeout=3000)
    finally:
        stop_bridge(bridge)
