"""A live terminal view of the stage (rich): the console's stand-in with no display.

Used by ``stagectl watch`` and by ``stagectl demo`` when no display is available. It only
reads, against the contract in ``docs/protocols/console-state.md``:

* **Safety first**: a band at the top says ARMED / DISARMED / E-STOP LATCHED (reason, by
  whom) / TALENT ON STAGE in words and bracketed symbols as well as colour, from
  ``safety.status`` and the ``stage.safety`` deltas.
* **Live or says it is not**: the engine is live while any message (heartbeat, state, reply)
  arrived within :data:`LIVE_TIMEOUT_S`; otherwise the band says UNKNOWN and every value that
  came from the engine shows as stale, never its last value.
* **Gaps**: a ``seq`` that skips (or goes back: the engine restarted) re-fetches ``status``,
  ``safety.status`` and ``cue.list`` at once.
* **A layout that never reflows**: :func:`render` is a pure function of a :class:`StageModel`,
  a size and a time. Column widths come from the terminal width only, and at small sizes
  whole sections are dropped in priority order (safety band, cue summary and device health
  stay) instead of being cut off.

Text is English, or Simplified Chinese with ``STAGECTL_LANG=zh`` (or a Chinese locale).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import zmq
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stagectl import bus, messages
from stagectl.client import EngineClient, EngineError, StateSubscriber, unwrap
from stagectl.config import StageConfig

# A console treats the engine as live while it heard anything within this long
# (docs/protocols/console-state.md, the same as gui.bridge.LIVE_TIMEOUT_S): three of the
# engine's heartbeats (stagectl.engine.engine.HEARTBEAT_S, 0.25 s).
LIVE_TIMEOUT_S = 0.75
REFRESH_S = 0.125          # how often the screen is redrawn
REQUEST_TIMEOUT_S = 1.0    # a query unanswered this long is sent again (while live)
RESYNC_S = 5.0             # a full status refresh this often, belt and braces beside seq
FULL_REFRESH = ("status", "safety.status", "cue.list")
EVENTS_KEPT = 50

# ---- words ---------------------------------------------------------------------------------

# the band's state words behind an ASCII symbol (tellable apart without colour)
BAND_SYMBOLS = {"estop": "[X]", "armed": "[!]", "disarmed": "[-]", "talent": "[T]",
                "clear": "[ ]"}

STRINGS: dict[str, dict[str, str]] = {
    **{f"band_{state}": words
       for state, words in messages.safety_words(BAND_SYMBOLS).items()},
    "band_unknown": {"en": "[?] UNKNOWN — engine not answering",
                     "zh": "[?] 未知——引擎无响应"},
    "detail_estop": {"en": "reason: {reason} · by {by} · reset, then arm",
                     "zh": "原因：{reason}；操作人：{by}；先复位，再使能运动"},
    "detail_armed": {"en": "motion enabled: arms move on GO and jog",
                     "zh": "运动已使能：执行提示点或点动时机械臂会运动"},
    "detail_disarmed": {"en": "motion disabled: arm the stage to move",
                        "zh": "机械臂不会运动：需先使能运动"},
    "detail_talent": {"en": "motion stopped", "zh": "运动已停止"},
    "detail_clear": {"en": "", "zh": ""},
    "detail_unknown": {"en": "no message for {age}; safety state unknown",
                       "zh": "{age}内未收到消息；安全状态未知"},
    "detail_never": {"en": "no message from the engine yet; safety state unknown",
                     "zh": "尚未收到引擎消息；安全状态未知"},
    "band_waiting": {"en": "[?] UNKNOWN — waiting for the safety state",
                     "zh": "[?] 未知——等待安全状态"},
    "detail_nosafety": {"en": "the engine answers; safety.status has not yet",
                        "zh": "引擎在线，尚未收到安全状态"},
    "engine_live": {"en": "engine live", "zh": "引擎在线"},
    "engine_down": {"en": "ENGINE NOT ANSWERING", "zh": "引擎无响应"},
    "seconds": {"en": "{s:.1f} s", "zh": "{s:.1f} 秒"},
    "cues": {"en": "Cues", "zh": "提示点列表"},
    "cue_summary": {"en": "Cues: ", "zh": "提示点："},
    "cue_current": {"en": "current {cue}", "zh": "当前 {cue}"},
    "cue_running": {"en": "running {cue} {device} {pct}", "zh": "运行中 {cue} {device} {pct}"},
    "cue_next": {"en": "NEXT {cue}:", "zh": "待执行 {cue}："},
    "cue_end": {"en": "end of list", "zh": "已到列表末尾"},
    "cue_none": {"en": "no cue list", "zh": "没有提示点列表"},
    "cue_none_yet": {"en": "waiting for cue.list", "zh": "等待提示点列表"},
    "ready": {"en": "✓ ready", "zh": "✓ 就绪"},
    "blocked": {"en": "✗ ", "zh": "✗ "},
    "stale": {"en": "— stale", "zh": "— 数据过期"},
    "mark_next": {"en": "NEXT", "zh": "待执行"},
    "mark_current": {"en": "now", "zh": "当前"},
    "mark_running": {"en": "RUN", "zh": "运行中"},
    "col_cue": {"en": "#", "zh": "#"},
    "col_name": {"en": "name", "zh": "名称"},
    "col_does": {"en": "does", "zh": "动作"},
    "col_ready": {"en": "readiness", "zh": "就绪"},
    "devices": {"en": "Devices", "zh": "设备"},
    "col_device": {"en": "device", "zh": "设备"},
    "col_kind": {"en": "kind", "zh": "类型"},
    "col_health": {"en": "health", "zh": "状态"},
    "col_detail": {"en": "detail", "zh": "详情"},
    "more": {"en": "… {n} more", "zh": "……另有 {n} 个"},
    "kind_led": {"en": "LED", "zh": "LED"},
    "kind_arm": {"en": "arm", "zh": "机械臂"},
    "kind_tracking": {"en": "tracking", "zh": "摄像机跟踪"},
    "h_online": {"en": "+ online", "zh": "+ 在线"},
    "h_degraded": {"en": "! degraded", "zh": "! 异常"},
    "h_offline": {"en": "x offline", "zh": "x 离线"},
    "h_unknown": {"en": "? unknown", "zh": "? 未知"},
    "h_stale": {"en": "? stale", "zh": "? 数据过期"},
    "mismatch_count": {"en": "≠ {n} set≠actual", "zh": "≠ {n} 项实际值≠设定值"},
    "led_title": {"en": "LED {name}: {temp} °C · panels {panels} · alerts: {alerts} · "
                        "≠ actual differs from set",
                  "zh": "LED {name}：{temp} °C；灯板 {panels}；告警：{alerts}；"
                        "≠ 实际值与设定值不同"},
    "none": {"en": "none", "zh": "无"},
    "nits": {"en": "nits", "zh": "尼特"},
    "on": {"en": "on", "zh": "开"},
    "off": {"en": "off", "zh": "关"},
    "set": {"en": "set", "zh": "设定值"},
    "actual": {"en": "actual", "zh": "实际值"},
    "p_brightness_nits": {"en": "brightness", "zh": "亮度"},
    "p_colour_temperature_k": {"en": "colour temp", "zh": "色温"},
    "p_blackout": {"en": "blackout", "zh": "黑屏"},
    "p_freeze": {"en": "freeze", "zh": "冻结画面"},
    "p_test_pattern": {"en": "pattern", "zh": "测试画面"},
    "led_blackout": {"en": "BLACKOUT", "zh": "黑屏"},
    "led_freeze": {"en": "FROZEN", "zh": "冻结画面"},
    "led_test_pattern": {"en": "TEST {v}", "zh": "测试画面：{v}"},
    "arm_joints": {"en": "j°", "zh": "关节°"},
    "tracking": {"en": "Tracking", "zh": "摄像机跟踪"},
    "col_source": {"en": "source", "zh": "跟踪源"},
    "col_rate": {"en": "rate Hz", "zh": "速率 Hz"},
    "col_jitter": {"en": "jitter ms", "zh": "抖动 ms"},
    "col_loss": {"en": "loss %", "zh": "丢包 %"},
    "col_timecode": {"en": "timecode", "zh": "时间码"},
    "col_position": {"en": "position m", "zh": "位置 m"},
    "col_rotation": {"en": "pan/tilt/roll °", "zh": "水平摇/俯仰/横滚 °"},
    "loss": {"en": "loss", "zh": "丢包"},
    "events": {"en": "Events", "zh": "事件日志"},
    "src_engine": {"en": "engine", "zh": "引擎"},
    "src_dashboard": {"en": "dashboard", "zh": "看板"},
    "ev_health": {"en": "health {state}{reason}", "zh": "状态：{state}{reason}"},
    "a_brightness_nits": {"en": "brightness {v} nits", "zh": "亮度 {v} 尼特"},
    "a_colour_temperature_k": {"en": "colour temp {v} K", "zh": "色温 {v} K"},
}
SEP = {"en": "; ", "zh": "；"}
DOT = {"en": " · ", "zh": "；"}
LED_KEYS = ("brightness_nits", "colour_temperature_k", "blackout", "freeze", "test_pattern")
HEALTH_STYLE = {"online": "bold green", "degraded": "bold yellow", "offline": "bold red",
                "unknown": "dim", "stale": "dim"}
STALE_STYLE = "dim"
BAND_STYLE = {"estop": "bold white on red", "armed": "bold black on yellow",
              "disarmed": "bold black on green", "talent": "bold white on magenta",
              "clear": "white on grey23", "unknown": "bold white on grey35"}


def t(key: str, lang: str, **values: object) -> str:
    """The dashboard's string ``key`` in ``lang`` (English when ``lang`` is not known)."""
    entry = STRINGS[key]
    text = entry.get(lang, entry["en"])
    return text.format(**values) if values else text


def message_text(obj: object, lang: str) -> str:
    """A message (string, ``{"code", "params", "message"}`` or a list of them) as a sentence.

    English is the engine's ``message``; Chinese is rendered from the code and params by
    :func:`stagectl.messages.render` (the console's renderer), which falls back to English.

    Args:
        obj: the message as it came on the wire.
        lang: ``en`` or ``zh``.

    Returns:
        One line of text.
    """
    if obj is None:
        return ""
    if isinstance(obj, str):
        return obj
    if isinstance(obj, list | tuple):
        return SEP.get(lang, "; ").join(message_text(o, lang) for o in obj)
    if isinstance(obj, Mapping):
        return messages.render(obj, lang)
    return str(obj)


def _by(text: str, lang: str) -> str:
    """``"ana (operator)"`` as the engine sends it, with the role translated."""
    found = re.fullmatch(r"(.*) \((\w+)\)", text)
    if lang != "zh" or found is None:
        return text
    return f"{found[1]}（{messages.value_label('role', found[2], lang)}）"


# ---- the model -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EventLine:
    """One line of the event log."""

    t: float
    source: str
    level: str
    message: Any  # a wire message (str or dict), or (STRINGS key, {params}) for our own


def normalise_cues(listing: dict[str, Any]) -> dict[str, Any]:
    """A ``cue.list`` reply (or a ``stage.cues`` listing) in the spec's shape.

    Accepts the older listing too (``led``/``arm`` instead of ``actions``, string
    ``problems``, no ``ready`` or ``next``) so the dashboard works on either side of the
    engine change.

    Args:
        listing: the reply's result.

    Returns:
        ``{"source", "current", "next", "running", "cues": [{"number", "name", "mark",
        "actions", "ready", "problems"}]}``.
    """
    cues: list[dict[str, Any]] = []
    for raw in listing.get("cues") or []:
        actions = raw.get("actions")
        if actions is None:  # older listing
            actions = []
            arm = raw.get("arm")
            if arm:
                actions.append({"device": "", "kind": "arm", "what": str(arm)})
            led = raw.get("led") or {}
            for key in ("preset", "brightness_nits", "colour_temperature_k"):
                if led.get(key) is not None:
                    actions.append({"device": led.get("device") or "", "kind": "led",
                                    "what": key, "value": led[key]})
            if raw.get("mark"):
                actions.append({"device": "", "kind": "mark", "what": "mark",
                                "value": raw["mark"]})
        problems = list(raw.get("problems") or [])
        ready = raw.get("ready")
        cues.append({"number": raw.get("number"), "name": raw.get("name") or "",
                     "mark": raw.get("mark"), "actions": list(actions),
                     "ready": (not problems) if ready is None else bool(ready),
                     "problems": problems})
    current = listing.get("current")
    if "next" in listing:
        nxt = listing.get("next")
    else:
        nxt = _next_after(cues, current)
    return {"source": listing.get("source", ""), "current": current, "next": nxt,
            "running": listing.get("running"), "cues": cues}


def _concerns(cmd: str, topic: str, kind: object) -> bool:
    """Whether a stream message updates what the ``cmd`` snapshot holds."""
    if cmd == "safety.status":
        return topic == "stage.safety"
    if cmd == "cue.list":
        return topic == "stage.cues"
    return topic.startswith(bus.DEVICE_TOPIC_PREFIX) or kind == "heartbeat"


def _next_after(cues: list[dict[str, Any]], current: object) -> object:
    numbers = [c["number"] for c in cues]
    if current is None:
        return numbers[0] if numbers else None
    if current in numbers:
        i = numbers.index(current) + 1
        return numbers[i] if i < len(numbers) else None
    return None


class StageModel:
    """What the dashboard knows: safety, cues, device snapshots and a short event log.

    Args:
        config: the stage; its devices are listed (health unknown) before the engine answers.
        clock: monotonic time source (tests pass their own).
    """

    def __init__(self, config: StageConfig | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.devices: dict[str, dict[str, Any]] = {}
        self.events: deque[EventLine] = deque(maxlen=EVENTS_KEPT)
        self.stage: dict[str, Any] = {}
        self.safety: dict[str, Any] | None = None
        self.cues: dict[str, Any] | None = None
        self.last_heard: float | None = None
        self.last_seq: int | None = None
        self.wanted: set[str] = set(FULL_REFRESH)
        self.gaps = 0
        # stream messages that arrived while a snapshot query was out, replayed over its
        # reply: a reply computed before an e-stop must not overwrite the e-stop's delta
        self._journal: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        if config is not None:
            self.stage = {"name": config.stage.name, "site": config.stage.site,
                          "timezone": config.stage.timezone}
            for dev in config.devices:
                self._device(dev.name, str(dev.kind))

    # ---- liveness -----------------------------------------------------------------------

    def heard(self, now: float | None = None) -> None:
        """Something came from the engine; after a quiet spell, refresh everything."""
        now = self.clock() if now is None else now
        if not self.live(now):
            self.wanted.update(FULL_REFRESH)
        self.last_heard = now

    def live(self, now: float | None = None) -> bool:
        """The engine was heard within :data:`LIVE_TIMEOUT_S`."""
        if self.last_heard is None:
            return False
        now = self.clock() if now is None else now
        return now - self.last_heard < LIVE_TIMEOUT_S

    @property
    def engine_alive(self) -> bool:
        """The engine is live now (see :meth:`live`)."""
        return self.live()

    @property
    def last_heartbeat(self) -> float:
        """When the engine was last heard (monotonic; 0 when never)."""
        return self.last_heard or 0.0

    # ---- full snapshots -----------------------------------------------------------------

    def sent(self, cmd: str) -> None:
        """A query for one of :data:`FULL_REFRESH` went out: keep what the stream says meanwhile."""
        self._journal[cmd] = []

    def dropped(self, cmd: str) -> None:
        """The query for ``cmd`` was given up (no reply in time)."""
        self._journal.pop(cmd, None)

    def load(self, cmd: str, result: Any) -> None:
        """Apply the reply to one of :data:`FULL_REFRESH`, then what the stream said since.

        The reply and the stream come on different sockets, so a delta published after the
        reply was made can arrive before it; replaying the deltas keeps the newest state.
        """
        if cmd == "status":
            self.load_status(result)
        elif cmd == "safety.status":
            self.safety = dict(result)
        elif cmd == "cue.list":
            self.cues = normalise_cues(result)
        for topic, message in self._journal.pop(cmd, []):
            self._apply_state(topic, message, replay=True)

    def load_status(self, status: dict[str, Any]) -> None:
        """Replace device snapshots with a full ``status`` reply."""
        self.stage = {**self.stage, **status.get("stage", {})}
        fresh = {d["name"]: dict(d) for d in status.get("devices", [])}
        for name, dev in self.devices.items():  # configured but not reported: keep, unknown
            if name not in fresh:
                fresh[name] = {**dev, "health": "unknown"}
        self.devices = fresh

    # ---- the state stream ---------------------------------------------------------------

    def apply(self, topic: str, message: dict[str, Any], now: float | None = None) -> None:
        """Apply one state-socket message (and note a ``seq`` gap for a full refresh)."""
        self.heard(now)
        seq = message.get("seq")
        if isinstance(seq, int):
            if self.last_seq is not None and seq != self.last_seq + 1:
                self.gaps += 1
                self.wanted.update(FULL_REFRESH)
            self.last_seq = seq
        kind = message.get("type")
        if kind == "event":
            data = message.get("data") or {}
            self.events.append(EventLine(float(message.get("t") or time.time()),
                                         message.get("device") or "engine",
                                         str(data.get("level", "info")), data))
            return
        if kind == "sample" or topic.startswith(bus.TRACKING_TOPIC_PREFIX):
            return  # tracking samples: the source's stats come as deltas
        for cmd, journal in self._journal.items():
            if _concerns(cmd, topic, kind):
                journal.append((topic, message))
        self._apply_state(topic, message)

    def _apply_state(self, topic: str, message: dict[str, Any], replay: bool = False) -> None:
        kind, name = message.get("type"), message.get("device")
        data = message.get("data") or {}
        stamp = float(message.get("t") or time.time())
        if topic == "stage.safety":
            if kind == "delta" and isinstance(data, dict):
                self.safety = {**(self.safety or {}), **data}
            return
        if topic == "stage.cues":
            if kind == "cues":
                self.cues = normalise_cues(data)
            else:  # the older delta {current, name}: readiness needs the full listing
                if self.cues is not None and "current" in data:
                    self.cues["current"] = data["current"]
                    self.cues["next"] = _next_after(self.cues["cues"], data["current"])
                if not replay:
                    self.wanted.add("cue.list")
            return
        if kind == "heartbeat":
            for dev_name, health in (data.get("devices") or {}).items():
                dev = self.devices.get(dev_name)
                if dev is not None:
                    dev["health"] = health
            return
        if not name:
            return
        dev = self._device(name, "?")
        if kind == "delta":
            dev.setdefault("state", {}).update(data)
        elif kind == "desired":
            dev.setdefault("desired", {}).update(data)
        elif kind == "health":
            state = str(data.get("state", "unknown"))
            dev["health"] = state
            dev["health_reason"] = str(data.get("reason", ""))
            dev["health_problems"] = list(data.get("problems") or [])
            if not replay:
                self.events.append(
                    EventLine(stamp, name, "info" if state == "online" else "warning",
                              ("ev_health", {"state": state, "reason": dev["health_reason"],
                                             "problems": dev["health_problems"]})))

    def note(self, source: str, level: str, message: Any) -> None:
        """Add a line of the dashboard's own to the event log."""
        self.events.append(EventLine(time.time(), source, level, message))

    def _device(self, name: str, kind: str) -> dict[str, Any]:
        return self.devices.setdefault(name, {"name": name, "kind": kind, "state": {},
                                              "desired": {}, "health": "unknown",
                                              "health_reason": ""})


# ---- rendering -----------------------------------------------------------------------------

def _led_value(key: str, value: object, lang: str) -> str:
    """An LED value as shown: a test pattern by its name (``off`` stays short)."""
    if key == "test_pattern" and isinstance(value, str) and value != "off":
        return messages.value_label("test_pattern", value, lang)
    return _fmt(value, lang)


def _fmt(value: object, lang: str = "en") -> str:
    if isinstance(value, bool) or value in ("on", "off"):
        value = value in (True, "on")
        return t("on" if value else "off", lang)
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "—"
    return str(value)


def _line(text: Text, width: int, style: str = "") -> Text:
    """``text`` as exactly one line of ``width`` cells."""
    out = text.copy()
    out.no_wrap = True
    out.overflow = "ellipsis"
    out.truncate(width, overflow="ellipsis", pad=True)
    if style:
        out.style = style  # the base style: covers the padding, parts keep their own
    return out


def _table(title: str | None, widths: Iterable[int], headers: Iterable[str],
           show_header: bool = True) -> Table:
    table = Table(box=None, pad_edge=False, show_header=show_header,
                  title=None if title is None else Text(title, no_wrap=True, overflow="ellipsis"),
                  title_justify="left", title_style="bold", header_style="bold underline",
                  expand=False, show_edge=False)
    for width, header in zip(widths, headers, strict=True):
        table.add_column(header, width=width, min_width=width, max_width=width, no_wrap=True,
                         overflow="ellipsis")
    return table


def _row(table: Table, *cells: str | Text, style: str = "") -> None:
    """Add a row; plain strings stay plain (a device or cue name is never read as markup)."""
    table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells), style=style)


def _split(total: int, fixed: list[int], ratios: list[int]) -> list[int]:
    """Fixed widths plus the rest shared by ratio (two cells of padding between columns)."""
    count = len(fixed) + len(ratios)
    rest = max(len(ratios) * 4, total - sum(fixed) - 2 * (count - 1))
    shares = [rest * r // sum(ratios) for r in ratios]
    shares[-1] += rest - sum(shares)
    return fixed + shares


def _age(model: StageModel, now: float, lang: str) -> str:
    if model.last_heard is None:
        return ""
    return t("seconds", lang, s=now - model.last_heard)


def _header(model: StageModel, width: int, now: float, wall: float, lang: str,
            zone: tzinfo) -> Text:
    clock = datetime.fromtimestamp(wall, zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    name = str(model.stage.get("name", "stage"))
    site = str(model.stage.get("site", ""))
    if model.live(now):
        engine = Text(t("engine_live", lang), style="green")
    else:
        age = _age(model, now, lang)
        wrap = "（{}）" if lang == "zh" else " ({})"
        engine = Text(t("engine_down", lang) + (wrap.format(age) if age else ""),
                      style="bold white on red")
    text = Text.assemble(engine, "  ", (f"stagectl {name}", "bold"), f"  {site}  {clock}")
    return _line(text, width)


def _band(model: StageModel, width: int, now: float, lang: str) -> list[Text]:
    """The safety band: two lines, full width."""
    safety = model.safety
    if not model.live(now) or safety is None:
        word = "band_unknown"
        if model.last_heard is None:
            detail = t("detail_never", lang)
        elif not model.live(now):
            detail = t("detail_unknown", lang, age=_age(model, now, lang))
        else:
            word, detail = "band_waiting", t("detail_nosafety", lang)
        style = BAND_STYLE["unknown"]
        return [_line(Text(" " + t(word, lang)), width, style),
                _line(Text(" " + detail), width, style.replace("bold ", ""))]
    if safety.get("estop_latched"):
        key = "estop"
        detail = t("detail_estop", lang, reason=safety.get("estop_reason") or "—",
                   by=_by(str(safety.get("estop_by") or "—"), lang))
    elif safety.get("armed"):
        key, detail = "armed", t("detail_armed", lang)
    else:
        key, detail = "disarmed", t("detail_disarmed", lang)
    talent = "talent" if safety.get("talent_on_stage") else "clear"
    right_w = min(22, width // 3)  # fixed: the band never shifts when a state changes
    left_w = width - right_w
    lines = []
    for left, right in ((" " + t(f"band_{key}", lang), " " + t(f"band_{talent}", lang)),
                        (" " + detail, " " + t(f"detail_{talent}", lang))):
        row = _line(Text(left), left_w, BAND_STYLE[key])
        row.append_text(_line(Text(right), right_w, BAND_STYLE[talent]))
        lines.append(row)
    lines[1].stylize("not bold")
    return lines


def _cue_label(cue: dict[str, Any] | None, number: object) -> str:
    if cue is None:
        return str(number)
    return f"{cue['number']} {cue['name']}".strip()


def _readiness(cue: dict[str, Any], lang: str) -> Text:
    if cue.get("ready"):
        return Text(t("ready", lang), style="bold green")
    return Text(t("blocked", lang) + message_text(cue.get("problems") or [], lang),
                style="bold red")


def _cue_summary(model: StageModel, width: int, now: float, lang: str) -> Text:
    text = Text(t("cue_summary", lang), style="bold")
    cues = model.cues
    if not model.live(now):
        text.append(t("stale", lang), style=STALE_STYLE)
        return _line(text, width)
    if cues is None:
        text.append(t("cue_none_yet", lang), style=STALE_STYLE)
        return _line(text, width)
    if not cues["cues"]:
        text.append(t("cue_none", lang))
        return _line(text, width)
    by_number = {c["number"]: c for c in cues["cues"]}
    running = cues.get("running")
    if running:
        progress = running.get("progress")
        pct = "" if progress is None else f"{100 * float(progress):.0f}%"
        text.append(t("cue_running", lang, cue=running.get("cue"),
                      device=running.get("device") or "", pct=pct) + DOT[lang],
                    style="bold cyan")
    elif cues.get("current") is not None:
        text.append(t("cue_current", lang,
                      cue=_cue_label(by_number.get(cues["current"]), cues["current"]))
                    + DOT[lang])
    nxt = cues.get("next")
    if nxt is None:
        text.append(t("cue_end", lang))
        return _line(text, width)
    cue = by_number.get(nxt)
    text.append(t("cue_next", lang, cue=_cue_label(cue, nxt)), style="bold reverse")
    if cue is not None:
        text.append(" " if lang == "en" else "")
        text.append_text(_readiness(cue, lang))
    return _line(text, width)


def _action_text(action: dict[str, Any], lang: str) -> str:
    what = str(action.get("what", ""))
    value = action.get("value")
    key = f"a_{what}"
    if key in STRINGS:  # a value with its unit
        label = t(key, lang, v=_fmt(value, lang))
    else:
        label = messages.value_label("what", what, lang)
        if value is not None:
            label += f" {_fmt(value, lang)}"
    device = action.get("device")
    return f"{device}: {label}" if device else label


def _cue_sheet(model: StageModel, width: int, rows: int, now: float, lang: str) -> Table | None:
    cues = model.cues
    if cues is None or not cues["cues"] or rows < 1:
        return None
    widths = _split(width, [6, 4, 14], [2, 3])
    source = Path(str(cues.get("source") or "")).name
    table = _table(t("cues", lang) + (f"  {source}" if source else ""),
                   widths, [t(k, lang) for k in ("col_cue", "col_cue", "col_name", "col_does",
                                                 "col_ready")])
    table.columns[0].header = ""
    live = model.live(now)
    numbers = [c["number"] for c in cues["cues"]]
    anchor = cues.get("next") if cues.get("next") in numbers else cues.get("current")
    start = max(0, numbers.index(anchor) - 1) if anchor in numbers else 0
    start = max(0, min(start, len(numbers) - rows))
    running = (cues.get("running") or {}).get("cue")
    for cue in cues["cues"][start:start + rows]:
        if not live:
            mark, ready = Text(""), Text(t("stale", lang), style=STALE_STYLE)
        else:
            ready = _readiness(cue, lang)
            if cue["number"] == running:
                mark = Text(t("mark_running", lang), style="bold cyan")
            elif cue["number"] == cues.get("next"):
                mark = Text(t("mark_next", lang), style="bold reverse")
            elif cue["number"] == cues.get("current"):
                mark = Text(t("mark_current", lang), style="bold")
            else:
                mark = Text("")
        does = SEP.get(lang, "; ").join(_action_text(a, lang) for a in cue["actions"]) or "—"
        _row(table, mark, str(cue["number"]), cue["name"], does, ready,
                      style="" if live else STALE_STYLE)
    return table


def _health_cell(dev: dict[str, Any], live: bool, lang: str) -> Text:
    if not live:
        return Text(t("h_stale", lang), style=STALE_STYLE)
    state = str(dev.get("health", "unknown"))
    key = f"h_{state}" if f"h_{state}" in STRINGS else "h_unknown"
    return Text(t(key, lang), style=HEALTH_STYLE.get(state, "dim"))


def _mismatches(dev: dict[str, Any]) -> list[str]:
    state, desired = dev.get("state") or {}, dev.get("desired") or {}
    return [k for k in LED_KEYS
            if desired.get(k) is not None and state.get(k) is not None
            and desired[k] != state[k]]


def _arm_state(state: dict[str, Any], lang: str) -> str:
    value = state.get("state")
    return "—" if value is None else messages.value_label("state", value, lang)


def _device_detail(dev: dict[str, Any], lang: str) -> Text:
    state = dev.get("state") or {}
    kind = dev.get("kind")
    health = dev.get("health")
    reason = Text("")
    if health in ("offline", "degraded"):
        said = messages.render_health({"reason": dev.get("health_reason") or "",
                                       "problems": dev.get("health_problems") or []}, lang)
        reason = Text(said, style="yellow")
    if kind == "led":
        text = Text(f"{_fmt(state.get('brightness_nits'))} {t('nits', lang)}  "
                    f"{_fmt(state.get('colour_temperature_k'))} K")
        for key in ("blackout", "freeze"):
            if state.get(key):
                text.append("  " + t(f"led_{key}", lang), style="bold")
        pattern = state.get("test_pattern")
        if pattern not in (None, "off", False):
            text.append("  " + t("led_test_pattern", lang,
                                 v=_led_value("test_pattern", pattern, lang)), style="bold")
        wrong = _mismatches(dev)
        if wrong:
            text.append("  " + t("mismatch_count", lang, n=len(wrong)), style="bold red")
    elif kind == "arm":
        text = Text(_arm_state(state, lang), style="bold")
        joints = state.get("joints_deg") or []
        if joints:
            text.append(f"  {t('arm_joints', lang)} " + " ".join(f"{v:.1f}" for v in joints))
        if state.get("state") in ("MOVING", "HOMING") and state.get("progress") is not None:
            text.append(f"  {100 * float(state['progress']):.0f}%")
    elif kind == "tracking":
        text = Text(f"{_fmt(state.get('rate_hz'))} Hz  {t('loss', lang)} "
                    f"{_fmt(state.get('loss_pct'))} %  {_fmt(state.get('timecode'))}")
    else:
        text = Text("")
    if reason.plain:
        text = Text.assemble(reason, "  ", text) if text.plain else reason
    return text


def _devices(model: StageModel, width: int, rows: int, now: float, lang: str) -> Table:
    widths = _split(width, [12, 10, 12], [1])
    table = _table(t("devices", lang), widths,
                   [t(k, lang) for k in ("col_device", "col_kind", "col_health", "col_detail")])
    live = model.live(now)
    devices = list(model.devices.values())
    shown = devices if len(devices) <= rows else devices[:max(0, rows - 1)]
    for dev in shown:
        kind = str(dev.get("kind", "?"))
        kind_label = t(f"kind_{kind}", lang) if f"kind_{kind}" in STRINGS else kind
        detail = _device_detail(dev, lang) if live else Text("—", style=STALE_STYLE)
        _row(table, str(dev["name"]), kind_label, _health_cell(dev, live, lang), detail)
    if len(shown) < len(devices):
        _row(table, Text(t("more", lang, n=len(devices) - len(shown)), style="dim"), "", "",
                      "")
    return table


def _led_detail(model: StageModel, dev: dict[str, Any], width: int, now: float,
                lang: str) -> Table:
    live = model.live(now)
    state, desired = dev.get("state") or {}, dev.get("desired") or {}
    alerts = state.get("alerts") or []
    panels = f"{_fmt(state.get('panels_online'))}/{_fmt(state.get('panels_total'))}"
    title = t("led_title", lang, name=dev["name"],
              temp=_fmt(state.get("temperature_c")) if live else "—",
              panels=panels if live else "—",
              alerts=(", ".join(map(str, alerts)) or t("none", lang)) if live else "—")
    count = len(LED_KEYS)
    label_w = 8
    each = max(6, (width - label_w - 2 * count) // count)
    table = _table(title, [label_w] + [each] * count,
                   [""] + [t(f"p_{k}", lang) for k in LED_KEYS])
    wrong = set(_mismatches(dev)) if live else set()
    set_row: list[Text] = [Text(t("set", lang), style="bold")]
    act_row: list[Text] = [Text(t("actual", lang), style="bold")]
    for key in LED_KEYS:
        if not live:
            set_row.append(Text("—", style=STALE_STYLE))
            act_row.append(Text("—", style=STALE_STYLE))
            continue
        marker = " ≠" if key in wrong else ""
        style = "bold red reverse" if key in wrong else ""
        set_row.append(Text(_led_value(key, desired.get(key), lang) + marker, style=style))
        act_row.append(Text(_led_value(key, state.get(key), lang) + marker, style=style))
    _row(table, *set_row)
    _row(table, *act_row)
    return table


def _led_section(model: StageModel, dev: dict[str, Any], width: int, now: float, lang: str,
                 _rows: int) -> RenderableType:
    return _led_detail(model, dev, width, now, lang)


def _tracking(model: StageModel, width: int, now: float, lang: str) -> Table | None:
    sources = [d for d in model.devices.values() if d.get("kind") == "tracking"]
    if not sources:
        return None
    widths = _split(width, [12, 8, 9, 7, 11], [1, 1])
    table = _table(t("tracking", lang), widths,
                   [t(k, lang) for k in ("col_source", "col_rate", "col_jitter", "col_loss",
                                         "col_timecode", "col_position", "col_rotation")])
    live = model.live(now)
    for dev in sources:
        state = dev.get("state") or {}
        if not live:
            _row(table, str(dev["name"]), *[Text("—", style=STALE_STYLE)] * 6)
            continue
        pos, rot = state.get("position_m"), state.get("rotation_deg")
        _row(table, str(dev["name"]), _fmt(state.get("rate_hz")),
                      _fmt(state.get("jitter_ms")), _fmt(state.get("loss_pct")),
                      _fmt(state.get("timecode")),
                      " ".join(f"{v:+.2f}" for v in pos) if pos else "—",
                      " ".join(f"{v:+.1f}" for v in rot) if rot else "—")
    return table


def _event_text(event: EventLine, lang: str) -> str:
    message = event.message
    if isinstance(message, tuple):
        key, params = message
        if key == "ev_health":
            state = str(params.get("state", ""))
            label = t(f"h_{state}", lang)[2:] if f"h_{state}" in STRINGS else state
            reason = messages.render_health(params, lang)
            wrap = ("（{}）" if lang == "zh" else " ({})").format(reason) if reason else ""
            return t("ev_health", lang, state=label, reason=wrap)
        if key == "ev_error":
            return messages.render_error(str(params["cmd"]), params["error"], lang)
        return t(key, lang, **{k: message_text(v, lang) for k, v in params.items()})
    return message_text(message, lang)


def _events(model: StageModel, width: int, rows: int, lang: str, zone: tzinfo) -> Table | None:
    if rows < 1:
        return None
    widths = _split(width, [8, 12], [1])
    table = _table(t("events", lang), widths, ["", "", ""], show_header=False)
    for event in list(model.events)[-rows:]:
        style = {"warning": "yellow", "error": "bold red"}.get(event.level, "")
        _row(table, datetime.fromtimestamp(event.t, zone).strftime("%H:%M:%S"),
                      t(f"src_{event.source}", lang) if f"src_{event.source}" in STRINGS
                      else event.source, Text(_event_text(event, lang), style=style))
    return table


def _measurer(width: int) -> Callable[[RenderableType], int]:
    """How many lines a renderable takes at ``width`` (a scratch console, nothing printed)."""
    scratch = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False,
                      legacy_windows=False)
    options = scratch.options.update(width=width)
    return lambda renderable: len(scratch.render_lines(renderable, options, pad=False))


def render(model: StageModel, width: int = 80, height: int = 24, *, lang: str = "en",
           now: float | None = None, wall: float | None = None) -> Group:
    """The dashboard for a ``width`` x ``height`` terminal, as rich renderables.

    A pure function of its arguments: column widths depend on ``width`` only, and sections
    that do not fit in ``height`` are left out whole, lowest priority first (events, tracking,
    LED detail, cue sheet); the header, the safety band, the cue summary and the device table
    always stay.

    Args:
        model: what the dashboard knows.
        width: terminal columns.
        height: terminal lines.
        lang: ``en`` or ``zh``.
        now: monotonic time for liveness (the model's clock by default).
        wall: wall time for the clock in the header (``time.time()`` by default).

    Returns:
        A group of at most ``height`` lines, none wider than ``width``.
    """
    now = model.clock() if now is None else now
    wall = time.time() if wall is None else wall
    width, height = max(40, width), max(8, height)
    zone: tzinfo
    try:
        zone = ZoneInfo(str(model.stage.get("timezone") or "UTC"))
    except (ValueError, KeyError):
        zone = ZoneInfo("UTC")
    parts: list[RenderableType] = [_header(model, width, now, wall, lang, zone),
                                   *_band(model, width, now, lang),
                                   _cue_summary(model, width, now, lang)]
    left = height - len(parts)
    _height = _measurer(width)
    devices = _devices(model, width, max(1, left - 2), now, lang)
    parts.append(devices)
    left -= _height(devices)
    optional: list[Callable[[int], RenderableType | None]] = [
        lambda rows: _cue_sheet(model, width, max(2, min(rows // 3, 8)), now, lang)]
    for dev in model.devices.values():
        if dev.get("kind") == "led":
            optional.append(partial(_led_section, model, dev, width, now, lang))
    optional.append(lambda _rows: _tracking(model, width, now, lang))
    for build in optional:
        section = build(left - 2)  # a title and a header line around the rows
        if section is None:
            continue
        lines = _height(section)
        if lines > left:
            break  # nothing of lower priority shows while this one cannot
        parts.append(section)
        left -= lines
    else:
        events = _events(model, width, min(left - 1, 10), lang, zone)
        if events is not None and model.events:
            parts.append(events)
    return Group(*parts)


# ---- the loop ------------------------------------------------------------------------------

class EngineLink:
    """The dashboard's two sockets: the state stream and non-blocking queries.

    Queries are sent without waiting (a dead engine never freezes the screen), one per
    command at a time, and sent again after :data:`REQUEST_TIMEOUT_S` while the engine is live.

    Args:
        config: the stage whose engine to watch.
    """

    def __init__(self, config: StageConfig) -> None:
        self.sub = StateSubscriber(config)
        self.client = EngineClient(config, timeout_s=REQUEST_TIMEOUT_S)
        self.pending: dict[str, tuple[str, float]] = {}  # request id -> (command, sent at)
        self.next_resync = time.monotonic() + RESYNC_S
        self._sent_once = False
        self._poller = zmq.Poller()
        self._poller.register(self.sub.socket, zmq.POLLIN)
        self._poller.register(self.client.socket, zmq.POLLIN)

    def close(self) -> None:
        """Close both sockets."""
        self.client.close()
        self.sub.close()

    def _send_wanted(self, model: StageModel, now: float) -> None:
        for rid, (cmd, sent) in list(self.pending.items()):
            if now - sent > REQUEST_TIMEOUT_S:
                del self.pending[rid]
                model.dropped(cmd)
                model.wanted.add(cmd)
        if now >= self.next_resync:
            self.next_resync = now + RESYNC_S
            model.wanted.add("status")
        # a first query goes out at once; retries wait for the engine to be heard (a DEALER
        # queues what it cannot deliver, so a long outage must not pile requests up)
        if self._sent_once and not model.live(now):
            return
        busy = {cmd for cmd, _ in self.pending.values()}
        for cmd in sorted(model.wanted - busy):
            try:
                rid = self.client.send(cmd)
            except EngineError as exc:
                model.note("dashboard", "warning", str(exc))
                continue
            self.pending[rid] = (cmd, now)
            model.sent(cmd)
            self._sent_once = True
        model.wanted.clear()

    def pump(self, model: StageModel, wait_s: float) -> None:
        """Send the queries ``model`` wants and apply what arrives for up to ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            now = time.monotonic()
            self._send_wanted(model, now)
            remaining = deadline - now
            if remaining <= 0:
                return
            ready = dict(self._poller.poll(max(1, int(remaining * 1000))))
            if self.sub.socket in ready:
                while (message := self.sub.recv(0)) is not None:
                    model.apply(*message)
            if self.client.socket in ready:
                while self.client.socket.poll(0):
                    self._reply(model, json.loads(self.client.socket.recv()))

    def _reply(self, model: StageModel, reply: dict[str, Any]) -> None:
        model.heard()
        entry = self.pending.pop(str(reply.get("id")), None)
        if entry is None:
            return  # a late answer to a query already sent again
        cmd = entry[0]
        try:
            model.load(cmd, unwrap(reply))
        except EngineError as exc:
            model.dropped(cmd)
            error = {"code": exc.code, "message": str(exc), **exc.details}
            model.note("dashboard", "warning", ("ev_error", {"cmd": cmd, "error": error}))


def run_dashboard(config: StageConfig, duration_s: float | None = None,
                  console: Console | None = None) -> int:
    """Show the live dashboard until Ctrl-C or ``duration_s``; returns an exit code.

    Args:
        config: the stage whose engine to watch.
        duration_s: stop after this long (None: until Ctrl-C).
        console: where to draw (a terminal by default); the layout follows its size.

    Returns:
        0.
    """
    console = console or Console()
    lang = messages.pick_language()
    model = StageModel(config)
    link = EngineLink(config)
    deadline = None if duration_s is None else time.monotonic() + duration_s

    def frame() -> Group:
        width, height = console.size
        # one line less than the terminal: Live ends a frame with a newline, and a full-height
        # frame would scroll its first line (the header) away on every refresh
        return render(model, width, height - 1, lang=lang)

    try:
        with Live(frame(), console=console, auto_refresh=False, screen=False,
                  redirect_stdout=False, redirect_stderr=False,
                  vertical_overflow="crop") as live:
            while deadline is None or time.monotonic() < deadline:
                link.pump(model, REFRESH_S)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        link.close()
    return 0
