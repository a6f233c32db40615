"""The terminal dashboard (`stagectl watch`, `stagectl demo --headless`).

Render tests build the model from messages shaped as in docs/protocols/console-state.md and
read the text a recording rich Console got; the end-to-end test runs the dashboard loop
against a real engine and simulators and drives the stage through an EngineClient.
"""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from stagectl.cli import dashboard
from stagectl.cli.dashboard import FULL_REFRESH, LIVE_TIMEOUT_S, StageModel, render
from stagectl.client import ClientIdentity, EngineClient
from stagectl.harness import StageHarness, free_port_config
from tests.stage_toml import cue_stage_config

NOW = 1000.0  # the model's monotonic clock in render tests
WALL = 1_790_000_000.0
SAFE = {"armed": False, "talent_on_stage": False, "estop_latched": False, "estop_reason": "",
        "estop_by": "", "estop_led_action": "freeze"}


def led(name: str = "led-main", reported: float = 1000.0, desired: float | None = None,
        **state: Any) -> dict[str, Any]:
    return {"name": name, "kind": "led", "health": "online", "health_reason": "",
            "health_problems": [],
            "state": {"brightness_nits": reported, "colour_temperature_k": 6500,
                      "blackout": False, "freeze": False, "test_pattern": "off",
                      "temperature_c": 27.0, "panels_online": 240, "panels_total": 240,
                      "alerts": [], **state},
            "desired": {} if desired is None else {"brightness_nits": desired}}


def arm(name: str = "arm-a", state: str = "IDLE") -> dict[str, Any]:
    return {"name": name, "kind": "arm", "health": "online", "health_reason": "",
            "state": {"state": state, "joints_deg": [0.0, -60.0, 90.0, -30.0, 0.0, 0.0],
                      "progress": 0.0}, "desired": {}}


def tracker(name: str = "cam-a", rate: float = 50.0) -> dict[str, Any]:
    return {"name": name, "kind": "tracking", "health": "online", "health_reason": "",
            "state": {"rate_hz": rate, "jitter_ms": 0.4, "loss_pct": 0.0,
                      "timecode": "10:00:00:01", "position_m": [1.0, 2.0, 1.5],
                      "rotation_deg": [10.0, -3.0, 0.0]}, "desired": {}}


def problem(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "params": {}, "message": message}


def listing(next_ready: bool = False, count: int = 3) -> dict[str, Any]:
    """A cue.list reply in the spec's shape: cue 1 fired, cue 2 next."""
    cues = []
    for i in range(1, count + 1):
        ready = next_ready if i == 2 else False
        cues.append({"number": i, "name": f"cue {i} name", "mark": None,
                     "actions": [{"device": "arm-a", "kind": "arm", "what": "move_joints"},
                                 {"device": "led-main", "kind": "led", "what": "preset",
                                  "value": 2}],
                     "ready": ready,
                     "problems": [] if ready else [problem("interlock_not_armed",
                                                           "interlock: stage not armed")]})
    return {"source": "cues.toml", "current": 1, "next": 2, "running": None, "cues": cues,
            "marks": []}


def model(devices: list[dict[str, Any]] | None = None, safety: dict[str, Any] | None = None,
          cues: dict[str, Any] | None = None) -> StageModel:
    m = StageModel(clock=lambda: NOW)
    m.stage = {"name": "test-stage", "site": "Huangpu", "timezone": "Asia/Shanghai"}
    m.load_status({"devices": [led(), arm(), tracker()] if devices is None else devices})
    m.apply("stage.safety", {"type": "delta", "device": None, "seq": 1,
                             "data": {**SAFE, **(safety or {})}}, now=NOW)
    m.load("cue.list", listing() if cues is None else cues)
    m.apply("engine", {"type": "event", "device": None, "seq": 2, "t": WALL,
                       "data": {"code": "stage_disarmed",
                                "params": {"user": "ana", "role": "operator"},
                                "message": "stage disarmed by ana (operator)",
                                "level": "info"}}, now=NOW)
    return m


def screen(m: StageModel, width: int = 80, height: int = 24, lang: str = "en",
           now: float = NOW) -> list[str]:
    console = Console(width=width, height=height, record=True, file=io.StringIO(),
                      color_system=None)
    console.print(render(m, width, height, lang=lang, now=now, wall=WALL))
    return console.export_text().splitlines()


def segment_styles(m: StageModel) -> list[tuple[str, Any]]:
    """(text, style) of every segment drawn at 80x24."""
    console = Console(width=80, height=24, file=io.StringIO(), color_system="truecolor")
    lines = console.render_lines(render(m, 80, 24, now=NOW, wall=WALL), pad=False)
    return [(seg.text, seg.style) for line in lines for seg in line if seg.style is not None]


def band(lines: list[str]) -> str:
    """The safety band: the two lines under the header."""
    return "\n".join(lines[1:3])


ARMED = re.compile(r"(?<!DIS)ARMED")


# ---- the safety band ------------------------------------------------------------------------

def test_band_says_disarmed_and_stage_clear() -> None:
    text = band(screen(model()))
    assert "[-] DISARMED" in text and "stage clear" in text
    assert not ARMED.search(text) and "E-STOP" not in text and "TALENT" not in text


def test_band_says_armed() -> None:
    text = band(screen(model(safety={"armed": True})))
    assert "[!] ARMED" in text and "motion enabled" in text
    assert "DISARMED" not in text and "E-STOP" not in text


def test_band_says_estop_latched_with_reason_and_who() -> None:
    text = band(screen(model(safety={"estop_latched": True, "estop_reason": "drill",
                                     "estop_by": "ana (operator)"})))
    assert "[X] E-STOP LATCHED" in text
    assert "reason: drill" in text and "by ana (operator)" in text
    assert not ARMED.search(text) and "DISARMED" not in text  # the latch is the state


def test_band_says_talent_on_stage_beside_the_motion_state() -> None:
    text = band(screen(model(safety={"talent_on_stage": True, "armed": True})))
    assert "[T] TALENT ON STAGE" in text and "[!] ARMED" in text
    assert "stage clear" not in text


def test_band_follows_safety_deltas() -> None:
    m = model()
    m.apply("stage.safety", {"type": "delta", "device": None, "seq": 3,
                             "data": {**SAFE, "armed": True}}, now=NOW)
    assert "[!] ARMED" in band(screen(m))
    m.apply("stage.safety", {"type": "delta", "device": None, "seq": 4,
                             "data": {**SAFE, "estop_latched": True, "estop_reason": "x",
                                      "estop_by": "eve (engineer)"}}, now=NOW)
    assert "E-STOP LATCHED" in band(screen(m))


@pytest.mark.parametrize(("safety", "words", "background"), [
    ({}, "[-] DISARMED", "green"),
    ({"armed": True}, "[!] ARMED", "yellow"),
    ({"estop_latched": True}, "[X] E-STOP LATCHED", "red"),
    ({"talent_on_stage": True}, "[T] TALENT ON STAGE", "magenta"),
])
def test_band_words_are_bold_on_their_colour(safety: dict[str, Any], words: str,
                                             background: str) -> None:
    found = [style for text, style in segment_styles(model(safety=safety)) if words in text]
    assert found and all(s.bold and s.bgcolor is not None and s.bgcolor.name == background
                         for s in found)


@pytest.mark.parametrize(("safety", "words"), [
    ({}, "运动未使能"),
    ({"armed": True}, "运动已使能"),
    ({"estop_latched": True, "estop_reason": "演练", "estop_by": "ana (operator)"},
     "急停未复位"),
    ({"talent_on_stage": True}, "演员在台上"),
])
def test_band_in_chinese(safety: dict[str, Any], words: str) -> None:
    text = band(screen(model(safety=safety), lang="zh"))
    assert words in text
    assert not re.search(r"[A-Za-z]{3,}", text.replace("ana", "")), text  # a user's name
    if safety.get("estop_latched"):
        assert "原因：演练" in text and "ana（操作员）" in text


# ---- desired vs reported ----------------------------------------------------------------

def led_rows(lines: list[str]) -> tuple[str, str]:
    set_row = next(line for line in lines if line.startswith("set "))
    actual_row = next(line for line in lines if line.startswith("actual "))
    return set_row, actual_row


def test_mismatch_marker_for_desired_800_reported_1200() -> None:
    lines = screen(model(devices=[led(reported=1200.0, desired=800.0)]))
    set_row, actual_row = led_rows(lines)
    assert re.search(r"800 ≠", set_row) and re.search(r"1200 ≠", actual_row)
    device_row = next(line for line in lines if line.startswith("led-main"))
    assert "1200 nits" in device_row and "≠ 1 set≠actual" in device_row
    styles = segment_styles(model(devices=[led(reported=1200.0, desired=800.0)]))
    assert any("1200 ≠" in text and style.color is not None and style.color.name == "red"
               for text, style in styles)  # colour as well as the sign


def test_no_mismatch_marker_when_desired_equals_reported() -> None:
    lines = screen(model(devices=[led(reported=800.0, desired=800.0)]))
    set_row, actual_row = led_rows(lines)
    assert "800" in set_row and "800" in actual_row
    assert "≠" not in set_row + actual_row
    device_row = next(line for line in lines if line.startswith("led-main"))
    assert "≠" not in device_row


def test_mismatch_for_blackout_and_test_pattern_too() -> None:
    dev = led(blackout=False, test_pattern="off")
    dev["desired"] = {"blackout": True, "test_pattern": "grid"}
    set_row, actual_row = led_rows(screen(model(devices=[dev])))
    assert set_row.count("≠") == 2 and actual_row.count("≠") == 2


# ---- size and stability -------------------------------------------------------------------

def assert_fits(lines: list[str], width: int, height: int) -> None:
    assert len(lines) <= height, "\n".join(lines)
    wide = [line for line in lines if cell_len(line) > width]
    assert not wide, wide


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_80x24_keeps_band_cue_summary_and_devices(lang: str) -> None:
    lines = screen(model(safety={"estop_latched": True, "estop_reason": "drill",
                                 "estop_by": "ana (operator)"}), lang=lang)
    assert_fits(lines, 80, 24)
    text = "\n".join(lines)
    assert ("E-STOP LATCHED" if lang == "en" else "急停未复位") in lines[1]
    summary = lines[3]
    assert ("NEXT 2 cue 2 name" if lang == "en" else "待执行 2 cue 2 name") in summary
    assert ("stage not armed" if lang == "en" else "运动未使能") in summary
    for name in ("led-main", "arm-a", "cam-a"):
        assert name in text


def test_small_terminals_drop_sections_whole_in_priority_order() -> None:
    m = model()
    tall = "\n".join(screen(m, 100, 60))
    for title in ("Devices", "Cues", "LED led-main", "Tracking", "Events"):
        assert title in tall
    small = screen(m, 80, 16)
    assert_fits(small, 80, 16)
    text = "\n".join(small)
    assert "DISARMED" in small[1] and "NEXT 2" in small[3] and "Devices" in text
    assert "Events" not in text and "Tracking" not in text
    if "LED led-main" in text:  # a section is there whole or not at all
        assert any(line.startswith("actual ") for line in small)


def test_many_devices_and_cues_still_fit_80x24() -> None:
    devices = [led(f"led-{i}") for i in range(16)] + [arm(f"arm-{i}") for i in range(8)]
    m = model(devices=devices, cues=listing(count=40))
    lines = screen(m)
    assert_fits(lines, 80, 24)
    assert "DISARMED" in lines[1] and "NEXT 2" in lines[3]
    assert any("more" in line for line in lines)


def column_starts(line: str, words: list[str]) -> list[int]:
    return [line.index(w) for w in words]


def test_column_widths_do_not_change_with_the_values() -> None:
    one = model(devices=[led(reported=5.0), arm(state="IDLE"), tracker(rate=5.0)],
                cues=listing(next_ready=True))
    two = model(devices=[led(reported=1499.5, desired=1000.0, test_pattern="colour_bars"),
                         arm(state="DISCONNECTED"), tracker(rate=59.94)],
                cues=listing(next_ready=False))
    first, second = screen(one, 100, 60), screen(two, 100, 60)
    for header in (("device", "kind", "health", "detail"),
                   ("brightness", "colour temp", "blackout", "freeze", "pattern"),
                   ("source", "rate Hz", "jitter ms", "loss %", "timecode"),
                   ("name", "does", "readiness")):
        a = next(line for line in first if all(w in line for w in header))
        b = next(line for line in second if all(w in line for w in header))
        assert column_starts(a, list(header)) == column_starts(b, list(header))
    for name, kind in (("led-main", "LED"), ("arm-a", "arm"), ("cam-a", "tracking")):
        a = next(line for line in first if line.startswith(name))
        b = next(line for line in second if line.startswith(name))
        assert a.index(kind, len(name)) == b.index(kind, len(name))
        assert a.index("+ online") == b.index("+ online")
        assert a.index("+ online") + len("+ online") < len(a) - 1  # the detail column


# ---- liveness -----------------------------------------------------------------------------

def test_not_live_shows_unknown_and_stale_never_the_last_values() -> None:
    m = model(devices=[led(reported=1234.0, desired=800.0), arm(state="MOVING"), tracker()],
              safety={"armed": True}, cues=listing(next_ready=True))
    live = screen(m, 100, 60, now=NOW + LIVE_TIMEOUT_S / 2)
    assert "[!] ARMED" in live[1] and "1234" in "\n".join(live)
    lines = screen(m, 100, 60, now=NOW + LIVE_TIMEOUT_S + 0.05)
    text = "\n".join(lines)
    assert "[?] UNKNOWN — engine not answering" in lines[1]
    assert "ENGINE NOT ANSWERING" in lines[0]
    assert not ARMED.search(text.split("Events")[0])
    for last_value in ("1234", "MOVING", "50 Hz", "10:00:00:01", "✓ ready", "online",
                       "NEXT"):
        assert last_value not in text.split("Events")[0], last_value
    assert "? stale" in text and "— stale" in text


def test_never_heard_is_unknown() -> None:
    m = StageModel(clock=lambda: NOW)
    lines = screen(m)
    assert "UNKNOWN" in lines[1] and "no message from the engine yet" in lines[2]


def test_live_without_a_safety_state_is_unknown_too() -> None:
    m = StageModel(clock=lambda: NOW)
    m.apply("engine", {"type": "heartbeat", "seq": 1, "data": {}}, now=NOW)
    lines = screen(m)
    assert "[?] UNKNOWN — waiting for the safety state" in lines[1]
    assert "ARMED" not in lines[1] and "engine live" in lines[0]


def test_live_timeout_is_the_contracts() -> None:
    assert LIVE_TIMEOUT_S == 0.75
    m = model()
    assert m.live(NOW + 0.74) and not m.live(NOW + 0.76)


# ---- the stream ---------------------------------------------------------------------------

def test_seq_gap_or_restart_wants_a_full_refresh() -> None:
    m = model()
    m.wanted.clear()
    for seq in (3, 4, 5):
        m.apply("engine", {"type": "heartbeat", "seq": seq, "data": {}}, now=NOW)
    assert m.wanted == set()
    m.apply("engine", {"type": "heartbeat", "seq": 7, "data": {}}, now=NOW)  # 6 was lost
    assert m.wanted == set(FULL_REFRESH) == {"status", "safety.status", "cue.list"}
    m.wanted.clear()
    m.apply("engine", {"type": "heartbeat", "seq": 1, "data": {}}, now=NOW)  # restarted
    assert m.wanted == set(FULL_REFRESH)


def test_hearing_the_engine_after_a_quiet_spell_wants_a_full_refresh() -> None:
    m = model()
    m.wanted.clear()
    m.apply("engine", {"type": "heartbeat", "seq": 3, "data": {}}, now=NOW + 5)
    assert m.wanted == set(FULL_REFRESH)


def test_a_reply_made_before_an_estop_never_overwrites_it() -> None:
    m = model(safety={"armed": True})
    m.sent("safety.status")
    m.apply("stage.safety", {"type": "delta", "device": None, "seq": 3,
                             "data": {**SAFE, "estop_latched": True, "estop_reason": "drill",
                                      "estop_by": "ana (operator)"}}, now=NOW)
    m.load("safety.status", {**SAFE, "armed": True})  # made before the e-stop, arrived after
    assert "[X] E-STOP LATCHED" in band(screen(m))
    m.sent("safety.status")
    m.load("safety.status", {**SAFE, "talent_on_stage": True})  # nothing newer meanwhile
    assert "[T] TALENT ON STAGE" in band(screen(m))


def test_a_status_reply_keeps_device_deltas_that_overtook_it() -> None:
    m = model(devices=[led(reported=1000.0)])
    m.sent("status")
    m.apply("device.led-main", {"type": "delta", "device": "led-main", "seq": 3,
                                "data": {"brightness_nits": 900.0}}, now=NOW)
    m.load("status", {"devices": [led(reported=1000.0, temperature_c=31.0)]})
    row = next(line for line in screen(m) if line.startswith("led-main"))
    assert "900 nits" in row
    assert m.devices["led-main"]["state"]["temperature_c"] == 31.0  # the rest is the reply's


def test_cues_messages_replace_the_listing() -> None:
    m = model()
    fresh = listing(next_ready=True)
    fresh["running"] = {"cue": 1, "device": "arm-a", "progress": 0.42}
    m.apply("stage.cues", {"type": "cues", "device": None, "seq": 3, "data": fresh}, now=NOW)
    lines = screen(m)
    assert "running 1 arm-a 42%" in lines[3] and "NEXT 2 cue 2 name: ✓ ready" in lines[3]
    assert any(line.startswith("RUN ") for line in lines)


def test_older_listing_with_string_problems_is_accepted() -> None:
    old = {"source": "cues.toml", "current": None, "marks": [],
           "cues": [{"number": 1, "name": "wide", "led": {"preset": 2},
                     "arm": "move_joints", "mark": "sc1",
                     "problems": ["interlock: stage not armed (stagectl arm arm)"]},
                    {"number": 2, "name": "warm", "led": {"brightness_nits": 700.0},
                     "arm": None, "mark": None, "problems": []}]}
    m = model(cues=old)
    lines = screen(m, 100, 40)
    assert "NEXT 1 wide: ✗ interlock: stage not armed" in lines[3]
    row = next(line for line in lines if line.startswith("NEXT"))
    assert "move joints" in row and "preset 2" in row
    m.apply("stage.cues", {"type": "delta", "device": None, "seq": 3,
                           "data": {"current": 1, "name": "wide"}}, now=NOW)
    assert "cue.list" in m.wanted and "NEXT 2 warm: ✓ ready" in screen(m, 100, 40)[3]


def test_events_are_sentences_in_the_readers_language() -> None:
    m = model()
    m.apply("engine", {"type": "event", "device": None, "seq": 3, "t": WALL,
                       "data": {"code": "stage_armed", "params": {"user": "ana",
                                                                  "role": "operator"},
                                "message": "stage ARMED by ana (operator)",
                                "level": "warning"}}, now=NOW)
    m.apply("device.arm-a", {"type": "health", "device": "arm-a", "seq": 4, "t": WALL,
                             "data": {"state": "degraded", "reason": "e-stop latched",
                                      "problems": [{"code": "estop_latched", "params": {}}]}},
            now=NOW)
    english = "\n".join(screen(m, 100, 60))
    assert "stage ARMED by ana (operator)" in english
    assert "health degraded (e-stop latched)" in english
    chinese = "\n".join(screen(m, 100, 60, lang="zh"))
    assert "ana" in chinese and "stage ARMED" not in chinese
    assert "状态：异常（急停未复位）" in chinese


PROPER = {"stagectl", "test", "stage", "Huangpu", "CST", "led", "main", "arm", "cam", "a", "ana",
          "cues", "toml", "LED", "Hz", "ms", "K", "C", "m",
          "X", "T"}  # the band's symbols: [X] e-stop, [T] talent


def test_chinese_screen_has_no_english_but_names_and_units() -> None:
    m = model(devices=[led(reported=1200.0, desired=800.0, test_pattern="colour_bars"),
                       arm(state="MOVING"), tracker()],
              safety={"estop_latched": True, "estop_reason": "演练",
                      "estop_by": "ana (operator)", "talent_on_stage": True})
    for cue in m.cues["cues"] if m.cues else []:
        cue["name"] = f"第 {cue['number']} 场"  # a cue name is typed by a person
    m.apply("engine", {"type": "event", "device": None, "seq": 3, "t": WALL,
                       "data": {"code": "estop", "params": {"user": "ana", "role": "operator",
                                                            "reason": "演练"},
                                "message": "E-STOP by ana (operator): 演练", "level": "error"}},
            now=NOW)
    m.apply("device.arm-a", {"type": "health", "device": "arm-a", "seq": 4, "t": WALL,
                             "data": {"state": "degraded", "reason": "e-stop latched",
                                      "problems": [{"code": "estop_latched", "params": {}}]}},
            now=NOW)
    lines = screen(m, 120, 60, lang="zh")
    words = set(re.findall(r"[A-Za-z]+", "\n".join(lines)))
    assert words - PROPER == set(), "\n".join(lines)
    assert "尼特" in "\n".join(lines) and "彩条" in "\n".join(lines)
    assert_fits(screen(m, 80, 24, lang="zh"), 80, 24)


# ---- end to end ---------------------------------------------------------------------------

CUES = """
[[cues]]
number = 1
name = "wide"
arm = { joints_deg = [0.0, -10.0, 10.0, 0.0, 0.0, 0.0] }
"""


@pytest.fixture
def stage(tmp_path: Path) -> Any:
    with StageHarness(cue_stage_config(tmp_path, "dash-stage", CUES)) as h:
        yield h


def recording_console() -> Console:
    return Console(width=100, height=40, record=True, force_terminal=True, file=io.StringIO(),
                   color_system=None)


def wait_shown(console: Console, *texts: str, after: str = "", timeout_s: float = 5.0) -> None:
    """Wait until the dashboard has drawn every one of ``texts`` (after ``after``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shown = console.export_text(clear=False)
        shown = shown[shown.find(after):] if after in shown else ("" if after else shown)
        if all(text in shown for text in texts):
            return
        time.sleep(0.02)
    raise AssertionError(f"the dashboard never showed {texts}")


def run_beside(config: Any, duration_s: float, console: Console,
               operate: Callable[[], None]) -> None:
    """Run the dashboard loop while ``operate`` drives the stage on another thread."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            operate()
        except BaseException as exc:  # raised again below, on the test's thread
            errors.append(exc)

    worker = threading.Thread(target=guarded, name="dashboard-operator")
    worker.start()
    try:
        assert dashboard.run_dashboard(config, duration_s, console) == 0
    finally:
        worker.join(10)
    if errors:
        raise errors[0]


def test_dashboard_loop_shows_arm_and_estop_from_a_live_engine(stage: StageHarness,
                                                               monkeypatch: Any) -> None:
    monkeypatch.setenv("STAGECTL_LANG", "en")
    console = recording_console()

    def operate() -> None:
        with EngineClient(stage.config, ClientIdentity("ana", "operator")) as op:
            wait_shown(console, "[-] DISARMED", "NEXT 1 wide: ✗")
            op.call("safety.arm")
            wait_shown(console, "[!] ARMED", "NEXT 1 wide: ✓ ready", after="[!] ARMED")
            op.call("estop", {"reason": "drill"})
            wait_shown(console, "[X] E-STOP LATCHED", "NEXT 1 wide: ✗",
                       after="[X] E-STOP LATCHED")

    run_beside(stage.config, 4.0, console, operate)
    text = console.export_text()
    disarmed = text.find("[-] DISARMED")
    armed = text.find("[!] ARMED")
    estop = text.find("[X] E-STOP LATCHED")
    assert 0 <= disarmed < armed < estop, text[-3000:]
    tail = text[estop:]
    assert "reason: drill" in tail and "by ana (operator)" in tail
    assert "e-stop" in tail.split("NEXT 1 wide: ✗", 1)[1].splitlines()[0]
    assert "arm-a" in tail and "UNKNOWN" not in text[disarmed:]


def test_dashboard_loop_turns_stale_when_the_engine_stops(tmp_path: Path,
                                                          monkeypatch: Any) -> None:
    monkeypatch.setenv("STAGECTL_LANG", "en")
    h = StageHarness(free_port_config(stage="dash-stage", devices=1)).start()
    console = recording_console()
    stopped = False

    def operate() -> None:
        nonlocal stopped
        wait_shown(console, "[-] DISARMED", "+ online")
        h.stop()
        stopped = True
        wait_shown(console, "[?] UNKNOWN — engine not answering", after="+ online")

    try:
        run_beside(h.config, 4.0, console, operate)
    finally:
        if not stopped:
            h.stop()
    text = console.export_text()
    last = text[text.rfind("ENGINE NOT ANSWERING"):]
    assert "[?] UNKNOWN" in last and "? stale" in last
    assert "DISARMED" not in last and "+ online" not in last and "1000 nits" not in last
