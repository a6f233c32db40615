"""Every indicator is live or says it is not: the engine dies, the whole console goes stale.

A real stage (LED wall, arm, tracking source, a cue) and a real engine: the engine is stopped
while its simulators keep running, so nothing but the engine's silence can make the console
change its look; then a fresh engine starts on the same addresses and the console recovers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from gui.app import MainWindow
from gui.bridge import EngineBridge
from stagectl.engine.engine import Engine
from stagectl.harness import StageHarness, free_port_config
from tests.gui.conftest import LIVE_S, make_bridge, stop_bridge, with_tracking

CUES = """
[[cues]]
number = 1
name = "warm"
led = { brightness_nits = 700.0 }
"""
# the console must look stale this soon after the engine's last message (issue 12: 1 s)
STALE_WITHIN_MS = int((LIVE_S + 0.25) * 1000)
DEVICES = ("led-main", "arm-a", "cam-a")


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[StageHarness]:
    cues = tmp_path / "cues.toml"
    cues.write_text(CUES, encoding="utf-8")
    harness = StageHarness(with_tracking(free_port_config(stage="gui-live", arms=1,
                                                          cues_file=str(cues)))).start()
    try:
        yield harness
    finally:
        harness.stop()


def kill_engine(harness: StageHarness) -> None:
    """Stop the engine only (devices made safe); the simulators keep running."""
    engine = harness.engine
    assert engine is not None
    harness.loop.run(engine.stop(), timeout=15)


def restart_engine(harness: StageHarness) -> None:
    """A fresh engine on the same addresses (the harness stops it at the end)."""
    async def up() -> None:
        engine = Engine(harness.config, harness.base_dir)
        await engine.start()
        harness.engine = engine
    harness.loop.run(up(), timeout=15)


class View:
    """What the operator sees, read through each panel's public state."""

    def __init__(self, window: MainWindow) -> None:
        self.w = window
        self.arm = window.arm_panels["arm-a"]
        self.led = window.led_panels["led-main"]
        tracking = window.tracking_panel
        assert tracking is not None
        self.tracking = tracking

    # ---- indicators ------------------------------------------------------------------

    def health_unknown(self) -> bool:
        return all(self.w.health_panel.health_of(d) == "unknown" for d in DEVICES)

    def health_online(self) -> bool:
        return all(self.w.health_panel.health_of(d) == "online" for d in DEVICES)

    def safety_stale(self) -> bool:  # waits on helper A2's SafetyBar.known / unknown_label
        bar = self.w.safety_bar
        return not bar.known and not bar.unknown_label.isHidden() \
            and bar.motion_label.isHidden()

    def arm_stale(self) -> bool:  # waits on helper A2's ArmPanel.known
        return not self.arm.known and self.arm.reported == {} \
            and all(label.text() == "—" for label in self.arm.position_labels.values())

    def led_stale(self) -> bool:  # waits on helper A3's LedPanel.set_live
        labels = [*self.led.reported_labels.values(), self.led.output_label]
        return not self.led.live and not self.led.stale_banner.isHidden() \
            and all(label.property("stale") for label in labels[:-1]) \
            and "brightness_nits" not in self.led.reported

    def cues_stale(self) -> bool:  # waits on helper C's CuePanel.fresh
        return not self.w.cue_panel.fresh

    def tracking_stale(self) -> bool:
        t = self.tracking
        return not t.stale_label.isHidden() and all(
            t.stat("cam-a", key) == "—" for key in ("rate_hz", "jitter_ms", "loss_pct"))

    def everything_stale(self) -> bool:
        return all(check() for check in (
            self.health_unknown, self.safety_stale, self.arm_stale, self.led_stale,
            self.cues_stale, self.tracking_stale))

    def everything_live(self) -> bool:
        t = self.tracking
        rate = t.stat("cam-a", "rate_hz")
        return (self.w.controls.live and self.health_online() and self.w.safety_bar.known
                and self.arm.known and self.led.live and "brightness_nits" in self.led.reported
                and self.w.cue_panel.fresh and t.stale_label.isHidden()
                and rate not in (None, "", "—"))

    # ---- controls ---------------------------------------------------------------------

    def engine_controls(self) -> dict[str, bool]:
        """Controls that need the engine, by name: enabled?"""
        bar, arm, led, cue = self.w.safety_bar, self.arm, self.led, self.w.cue_panel
        return {"arm stage": bar.arm_button.isEnabled(),
                "reset": bar.reset_button.isEnabled(),
                "jog": arm.jog_buttons[("j1", 1)].isEnabled(),
                "home": arm.home_button.isEnabled(),
                "brightness": led.brightness_slider.isEnabled(),
                "blackout": led.blackout_button.isEnabled(),
                "GO": cue.go_button.isEnabled()}


@pytest.fixture
def console(qtbot: QtBot, stage: StageHarness) -> Iterator[tuple[View, EngineBridge]]:
    bridge = make_bridge(stage)
    window = MainWindow(stage.config, bridge)
    qtbot.addWidget(window)
    window.show()
    bridge.start()
    try:
        yield View(window), bridge
    finally:
        stop_bridge(bridge)
        window.close()


def test_engine_loss_turns_every_indicator_stale_and_recovery_restores(
        qtbot: QtBot, stage: StageHarness, console: tuple[View, EngineBridge]) -> None:
    view, bridge = console
    qtbot.waitUntil(view.everything_live, timeout=8000)
    controls = view.engine_controls()
    assert controls["arm stage"] and controls["brightness"] and controls["blackout"], controls
    assert not view.everything_stale()

    kill_engine(stage)
    qtbot.waitUntil(view.everything_stale, timeout=STALE_WITHIN_MS)
    assert not bridge.connected and not view.w.controls.live
    assert not any(view.engine_controls().values()), view.engine_controls()
    estop = view.w.safety_bar.estop_button
    assert estop.isEnabled() and estop.isVisible()
    assert view.w.connection_label.property("connected") is False
    # nothing the simulators still do shows while the engine is away
    qtbot.wait(500)
    assert view.everything_stale()

    gaps_before = bridge.gaps
    restart_engine(stage)
    qtbot.waitUntil(view.everything_live, timeout=8000)
    assert bridge.gaps > gaps_before  # the new engine's seq went back: a full refresh
    qtbot.waitUntil(lambda: view.engine_controls()["brightness"], timeout=3000)
    assert view.engine_controls()["arm stage"]
    assert estop.isEnabled()


def test_a_seq_gap_refreshes_the_window(qtbot: QtBot, console: tuple[View, EngineBridge]
                                        ) -> None:
    view, bridge = console
    qtbot.waitUntil(view.everything_live, timeout=8000)
    statuses: list[dict[str, object]] = []
    controls: list[dict[str, object]] = []
    cues: list[dict[str, object]] = []
    bridge.status_received.connect(statuses.append)
    bridge.controls_changed.connect(controls.append)
    bridge.cues_changed.connect(cues.append)
    listener = bridge._listener
    last = listener._last_seq
    assert last is not None
    # a message that skipped ahead, as a slow reader past the high-water mark would see
    listener.dispatch("engine", {"type": "heartbeat", "seq": last + 10_000, "data": {}})
    qtbot.waitUntil(lambda: bool(statuses and controls and cues), timeout=3000)
    assert bridge.gaps >= 1
    assert statuses[0]["devices"] and "commands" in controls[0]
