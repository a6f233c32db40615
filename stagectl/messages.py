"""Render engine and driver messages in the reader's language (English or Simplified Chinese).

A message object is ``{"code", "params", "message"}`` (``docs/protocols/console-state.md``):
``message`` is the English sentence, and ``code`` with ``params`` lets a console say the same
in Chinese from the catalogues in :mod:`drivers.messages` and :mod:`stagectl.engine.messages`.
This module is the one renderer: the Qt console (through ``gui.messages``) and the terminal
dashboard both use it, so a sentence reads the same on either. No Qt here.

Chinese wording follows ``docs/i18n-glossary.md``; a code or a template this module cannot
render falls back to the English ``message`` and is counted in :data:`fallbacks`, which the
tests read to catch catalogue gaps.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from drivers.messages import DRIVER_MESSAGES
from stagectl.engine.messages import ENGINE_MESSAGES, ERRORS

LANGUAGES: tuple[str, ...] = ("en", "zh")

# Health reasons (``health.problems``: ``{"code", "params"}`` beside the English ``reason``;
# a driver's ``link_lost`` event carries one as its ``reason``).
HEALTH_REASONS: dict[str, tuple[str, str]] = {
    "not_started": ("not started", "未启动"),
    "stopped": ("stopped", "已停止"),
    "no_reply": ("no reply from {address} for {seconds} s", "{address} 已 {seconds} 秒无响应"),
    "panels_offline": ("{offline} of {total} panels offline", "{total} 块灯板中 {offline} 块离线"),
    "processor_hot": ("processor at {temperature_c} °C", "处理器温度 {temperature_c} °C"),
    # vendor HTTP APIs (drivers/led/http.py and the Tessera, HELIOS and NovaStar drivers)
    "http_timeout": ("no reply from {address} within {seconds} s",
                     "{address} 在 {seconds} 秒内无响应"),
    "http_unreachable": ("cannot reach {address}: {error}", "无法连接 {address}：{error}"),
    "http_redirect": ("{address} redirected to {location} (HTTP {status}; a login page in front "
                      "of the processor?)",
                      "{address} 重定向到 {location}（HTTP {status}；处理器前面有登录页？）"),
    "http_html": ("{address} answered a web page, not JSON (a login or captive page in front of "
                  "the processor?)",
                  "{address} 返回的是网页而不是 JSON（处理器前面有登录页或认证页？）"),
    "http_malformed": ("{address} answered something that is not valid JSON",
                       "{address} 的应答不是有效的 JSON"),
    "http_status": ("{address} answered HTTP {status}", "{address} 返回 HTTP {status}"),
    "http_auth": ("{address} refused the credentials (HTTP {status}); check the credentials "
                  "file or variable",
                  "{address} 拒绝了登录凭据（HTTP {status}），请检查凭据文件或环境变量"),
    "http_too_large": ("{address} answered far too much data", "{address} 返回的数据过大"),
    "vendor_error": ("the processor answered an error: {detail}", "处理器返回错误：{detail}"),
    "no_project_loaded": ("processor has no project loaded", "处理器未加载工程"),
    "ip_control_disabled": ("IP control is switched off on the processor (Live Control)",
                            "处理器未开启 IP 控制（Live Control）"),
    "device_locked": ("processor locked by VMP at {ip}", "处理器被 {ip} 上的 VMP 锁定"),
    "processor_busy": ("processor busy; backing off", "处理器忙，稍后重试"),
    "processor_alerts": ("processor alerts: {alerts}", "处理器告警：{alerts}"),
    "screen_missing": ("screen {screen} is not on the processor", "处理器上没有屏幕 {screen}"),
    "silent": ("silent for {frames} frames (udp port {port})",
               "已 {frames} 帧无数据（UDP 端口 {port}）"),
    "loss": ("loss {pct} % over the last {window_s} s", "最近 {window_s} 秒丢包 {pct}%"),
    "bad_packets": ("{count} bad packets in the last {window_s} s",
                    "最近 {window_s} 秒有 {count} 个错误数据包"),
    "estop_latched": ("e-stop latched", "急停未复位"),
    "arm_fault": ("FAULT: {fault}", "故障：{fault}"),
    "arm_lease_held": ("no control: the arm is controlled by {holder}",
                       "无控制权：机械臂由 {holder} 控制"),
}

_ARM_STATES: dict[str, tuple[str, str]] = {
    "IDLE": ("IDLE", "空闲"),
    "MOVING": ("MOVING", "运动中"),
    "HOMING": ("HOMING", "回原点中"),
    "STOPPING": ("STOPPING", "停止中"),
    "ESTOP": ("ESTOP", "急停"),
    "FAULT": ("FAULT", "故障"),
    "DISCONNECTED": ("DISCONNECTED", "未连接"),
}
_KINDS: dict[str, tuple[str, str]] = {
    "led": ("LED", "LED"),
    "arm": ("arm", "机械臂"),
    "tracking": ("tracking", "摄像机跟踪"),
}
# LED parameter keys (drivers.led.protocol.PARAMS) and the other things a cue or a command sets
_LED_KEYS: dict[str, tuple[str, str]] = {
    "brightness_nits": ("brightness", "亮度"),
    "colour_temperature_k": ("colour temperature", "色温"),
    "gamma": ("gamma", "伽马"),
    "blackout": ("blackout", "黑屏"),
    "freeze": ("freeze", "冻结画面"),
    "test_pattern": ("test pattern", "测试画面"),
    "output_frame_rate_hz": ("output frame rate", "输出帧率"),
    "genlock_source": ("genlock source", "同步锁相源"),
    "genlock_phase_deg": ("genlock phase", "同步锁相相位"),
    "preset": ("preset", "预设"),
    "delay_frames": ("delay", "延迟补偿"),
}
_TEST_PATTERNS: dict[str, tuple[str, str]] = {
    "off": ("off (programme)", "关（节目画面）"),
    "white": ("white", "白场"),
    "black": ("black", "黑场"),
    "red": ("red", "红场"),
    "green": ("green", "绿场"),
    "blue": ("blue", "蓝场"),
    "grid": ("grid", "网格"),
    "ramp": ("ramp", "灰阶渐变"),
    "colour_bars": ("colour bars", "彩条"),
    "checkerboard": ("checkerboard", "棋盘格"),
}
_GENLOCK_SOURCES: dict[str, tuple[str, str]] = {
    "internal": ("internal", "内同步"),
    "reference": ("reference", "外参考"),
    "sdi": ("SDI", "SDI"),
    "st2110": ("ST 2110", "ST 2110"),
}

# param name -> wire value -> (English, Chinese)
VALUE_LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "role": {
        "operator": ("operator", "操作员"),
        "engineer": ("engineer", "工程师"),
        "producer": ("producer", "制片"),
        "viewer": ("viewer", "访客"),
        "system": ("system", "系统"),  # the audit's user and role for the engine's own acts
    },
    "state": _ARM_STATES,
    "was": _ARM_STATES,
    "health": {
        "online": ("online", "在线"),
        "degraded": ("degraded", "异常"),
        "offline": ("offline", "离线"),
        "unknown": ("unknown", "未知"),
    },
    "interlock": {
        "estop": ("e-stop latched", "急停未复位"),
        "not_armed": ("stage not armed", "运动未使能"),
        "talent_on_stage": ("talent on stage", "演员在台上"),
        "device": ("device not ready", "设备未就绪"),
        # the names a control's ``needs`` lists (``controls``)
        "estop_clear": ("no e-stop latched", "急停已复位"),
        "armed": ("stage armed", "运动已使能"),
        "talent_clear": ("stage clear", "台上无人"),
        "device_ready": ("device ready", "设备就绪"),
        "resettable": ("something to reset", "有可复位项"),
    },
    "kind": _KINDS,
    "wanted": _KINDS,
    "limit_kind": {
        "soft_min": ("soft minimum", "软限位下限"),
        "soft_max": ("soft maximum", "软限位上限"),
        "max_velocity": ("velocity limit", "速度上限"),
        "max_acceleration": ("acceleration limit", "加速度上限"),
    },
    "key": _LED_KEYS,
    "what": {
        "move_joints": ("move joints", "关节运动"),
        "move_pose": ("move to pose", "末端位姿运动"),
        "run_path": ("run path", "轨迹运动"),
        "home": ("home", "回原点"),
        "jog": ("jog", "点动"),
        "stop": ("stop", "停止"),
        "reset": ("reset", "复位"),
        "set_limits": ("set limits", "设置限位"),
        "mark": ("mark", "标记"),
        "preset": ("preset", "预设"),
        "brightness_nits": ("brightness", "亮度"),
        "colour_temperature_k": ("colour temperature", "色温"),
    },
    "level": {
        "info": ("info", "信息"),
        "warning": ("warning", "警告"),
        "error": ("error", "错误"),
    },
    # the desired-state keys a driver re-applies on reconnect (``connected_reapplying``)
    "keys": {**_LED_KEYS, "limits": ("limits", "限位")},
    # values of an LED key, looked up through the sibling ``key`` param
    "test_pattern": _TEST_PATTERNS,
    "genlock_source": _GENLOCK_SOURCES,
}

# Every command in stagectl.engine.commands.COMMANDS; English keeps the command name.
COMMAND_LABELS: dict[str, tuple[str, str]] = {
    "ping": ("ping", "检测引擎"),
    "status": ("status", "查询状态"),
    "commands": ("commands", "列出指令"),
    "controls": ("controls", "查询可用操作"),
    "engine.counters": ("engine.counters", "查询引擎计数"),
    "led.set": ("led.set", "设置 LED 参数"),
    "led.preset": ("led.preset", "调用 LED 预设"),
    "led.adopt": ("led.adopt", "采用屏幕当前设置"),
    "sim.fault": ("sim.fault", "注入模拟故障"),
    "estop": ("estop", "急停"),
    "safety.reset": ("safety.reset", "安全复位"),
    "safety.status": ("safety.status", "查询安全状态"),
    "safety.arm": ("safety.arm", "使能运动"),
    "safety.disarm": ("safety.disarm", "解除使能"),
    "safety.talent": ("safety.talent", "设置在台状态"),
    "audit.tail": ("audit.tail", "查看安全审计记录"),
    "arm.status": ("arm.status", "查询机械臂状态"),
    "arm.home": ("arm.home", "机械臂回原点"),
    "arm.move_joints": ("arm.move_joints", "机械臂关节运动"),
    "arm.move_pose": ("arm.move_pose", "机械臂末端位姿运动"),
    "arm.run_path": ("arm.run_path", "机械臂轨迹运动"),
    "arm.jog": ("arm.jog", "点动机械臂"),
    "arm.stop": ("arm.stop", "停止机械臂"),
    "arm.reset": ("arm.reset", "复位机械臂"),
    "arm.set_limits": ("arm.set_limits", "设置机械臂限位"),
    "cue.list": ("cue.list", "查询提示点列表"),
    "cue.go": ("cue.go", "执行提示点"),
    "cue.back": ("cue.back", "重新执行上一个提示点"),
    "cue.jump": ("cue.jump", "跳转执行提示点"),
    "tracking.delay": ("tracking.delay", "设置跟踪延迟补偿"),
    "tracking.sources": ("tracking.sources", "查询跟踪源"),
    "take.start": ("take.start", "开始录制镜次"),
    "take.stop": ("take.stop", "结束录制镜次"),
    "take.status": ("take.status", "查询录制状态"),
}

# Argument names in a command's ``args`` (the ``command_done`` event), for "name value" pairs.
ARG_LABELS: dict[str, tuple[str, str]] = {
    "device": ("device", "设备"),
    "key": ("key", "参数"),
    "value": ("value", "值"),
    "number": ("number", "编号"),
    "axis": ("axis", "轴"),
    "velocity": ("velocity", "速度"),
    "duration_s": ("duration", "时长"),
    "on": ("on", "开启"),
    "reason": ("reason", "原因"),
    "joints_deg": ("joints", "关节角度"),
    "pose": ("pose", "末端位姿"),
    "track_mm": ("track", "轨道位置"),
    "profile": ("profile", "速度曲线"),
    "speed_scale": ("speed scale", "速度比例"),
    "velocity_scale": ("velocity scale", "速度比例"),
    "keyframes": ("keyframes", "关键帧"),
    "start_timecode": ("start timecode", "起始时间码"),
    "start_utc_s": ("start time", "起始时间"),
    "soft_min": ("soft min", "软限位下限"),
    "soft_max": ("soft max", "软限位上限"),
    "fault": ("fault", "故障"),
    "frames": ("frames", "帧数"),
    "slate": ("slate", "场记板"),
    "take": ("take", "镜次"),
    "limit": ("limit", "条数"),
    "event": ("event", "事件"),
    "x_mm": ("x", "X"),
    "y_mm": ("y", "Y"),
    "z_mm": ("z", "Z"),
    "roll_deg": ("roll", "横滚"),
    "pitch_deg": ("pitch", "俯仰"),
    "yaw_deg": ("yaw", "偏航"),
}
# a validation error's ``param`` (an LED key or a command argument), for codes that carry one
VALUE_LABELS["param"] = {**_LED_KEYS, **{k: v for k, v in ARG_LABELS.items() if k != "key"}}

# arg values translated by arg name (beyond VALUE_LABELS)
_ARG_VALUES: dict[str, dict[str, tuple[str, str]]] = {
    "fault": {
        "panels_offline": ("panels offline", "灯板离线"),
        "mute": ("processor silent", "处理器无响应"),
        "temperature_offset": ("temperature offset", "温度偏移"),
    },
    "profile": {
        "trapezoid": ("trapezoid", "梯形"),
        "scurve": ("S-curve", "S 形"),
    },
}

fallbacks: Counter[str] = Counter()
"""Codes (or ``"error:<code>"``) rendered from the English text because the catalogue could
not render them; a test asserts this stays empty."""

_SEP = {"en": "; ", "zh": "；"}
_PAIR_SEP = {"en": ", ", "zh": "，"}
_LIST_SEP = {"en": ", ", "zh": "、"}
_ON_OFF = {True: ("on", "开"), False: ("off", "关")}


def pick_language(env: Mapping[str, str] | None = None) -> str:
    """The reader's language: ``STAGECTL_LANG``, else a Chinese locale, else English.

    Args:
        env: the environment to read (default ``os.environ``).

    Returns:
        ``"zh"`` or ``"en"``.
    """
    values = os.environ if env is None else env
    wanted = values.get("STAGECTL_LANG", "").strip().lower()
    for lang in LANGUAGES:
        if wanted == lang or wanted.startswith((lang + "_", lang + "-")):
            return lang
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = values.get(name, "").strip().lower()
        if value:  # the first one set decides, as in POSIX
            return "zh" if value.startswith("zh") else "en"
    return "en"


def catalogue() -> dict[str, tuple[str, str]]:
    """Every message code: driver, engine and health reason templates ``(en, zh)``."""
    return {**HEALTH_REASONS, **DRIVER_MESSAGES, **ENGINE_MESSAGES}


def _index(lang: str) -> int:
    return 1 if lang == "zh" else 0


# The stage's safety state in the words every screen shows (the console's safety bar and the
# terminal dashboard each put their own symbol in front): (English, Chinese).
SAFETY_WORDS: dict[str, tuple[str, str]] = {
    "estop": ("E-STOP LATCHED", "急停未复位"),
    "armed": ("ARMED", "运动已使能"),
    "disarmed": ("DISARMED", "运动未使能"),
    "talent": ("TALENT ON STAGE", "演员在台上"),
    "clear": ("stage clear", "台上无人"),
}


def safety_words(symbols: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``{state: {lang: "<symbol> <word>"}}`` for each state in ``symbols`` (a string table)."""
    return {state: {lang: f"{symbol} {word}"
                    for lang, word in zip(LANGUAGES, SAFETY_WORDS[state], strict=True)}
            for state, symbol in symbols.items()}


def value_label(kind: str, value: object, lang: str) -> str:
    """The label of wire ``value`` of param ``kind`` (``str(value)`` when it has none).

    Args:
        kind: a param name in :data:`VALUE_LABELS` (``role``, ``state``, ``health``, ...).
        value: the wire value.
        lang: ``"en"`` or ``"zh"``.
    """
    if isinstance(value, bool):
        return _ON_OFF[value][_index(lang)]
    table = VALUE_LABELS.get(kind, {})
    label = table.get(str(value))
    if label is None and isinstance(value, str):
        label = table.get(value.upper()) or table.get(value.lower())
    return str(value) if label is None else label[_index(lang)]


def command_label(cmd: str, lang: str) -> str:
    """A command for display: its name in English, what it does in Chinese."""
    label = COMMAND_LABELS.get(cmd)
    return cmd if label is None else label[_index(lang)]


def _number(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    return f"{value:.6g}" if abs(value) < 1e15 else str(value)


def _plain(value: object, lang: str) -> str:
    if isinstance(value, bool):
        return _ON_OFF[value][_index(lang)]
    if isinstance(value, float):
        return _number(value)
    if value is None:
        return "—"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_plain(v, lang) for v in value) + "]"
    if isinstance(value, Mapping):
        return _args(value, lang)
    return str(value)


def _is_message_like(value: object) -> bool:
    return isinstance(value, Mapping) and isinstance(value.get("code"), str) \
        and ("message" in value or "params" in value)


def _arg_value(name: str, value: object, args: Mapping[str, Any], lang: str) -> str:
    if name == "value" and isinstance(args.get("key"), str) and args["key"] in VALUE_LABELS:
        return value_label(args["key"], value, lang)
    if name in VALUE_LABELS and not isinstance(value, (list, dict)):
        return value_label(name, value, lang)
    table = _ARG_VALUES.get(name)
    if table is not None and isinstance(value, str) and value in table:
        return table[value][_index(lang)]
    if name == "keyframes" and isinstance(value, list) and len(value) > 3:
        return f"{len(value)} 个" if lang == "zh" else f"{len(value)} keyframes"
    return _plain(value, lang)


def _args(args: Mapping[str, Any], lang: str) -> str:
    """A command's arguments as "name value" pairs (private ``_user``/``_role`` left out)."""
    shown = {k: v for k, v in args.items() if not str(k).startswith("_")}
    parts = []
    if "key" in shown and "value" in shown:  # led.set: "亮度 800", not "参数 亮度，值 800"
        key = shown.pop("key")
        parts.append(_pair(value_label("key", key, lang),
                           _arg_value("value", shown.pop("value"), {"key": key}, lang)))
    if "interlock" in shown:  # a state, not a "name value" pair (safety.talent)
        parts.append(value_label("interlock", shown.pop("interlock"), lang))
    for name, value in shown.items():
        label = ARG_LABELS.get(str(name))
        shown_name = str(name) if label is None else label[_index(lang)]
        parts.append(_pair(shown_name, _arg_value(str(name), value, args, lang)))
    return _PAIR_SEP[lang].join(parts)


def _talent_args(cmd: object, args: Mapping[str, Any]) -> Mapping[str, Any]:
    # safety.talent {"on": true} reads "演员在台上", not "开启：开"
    on = args.get("on")
    if cmd != "safety.talent" or not isinstance(on, bool):
        return args
    rest = {k: v for k, v in args.items() if k != "on"}
    return {"interlock": "talent_on_stage" if on else "talent_clear", **rest}


def _pair(name: str, value: str) -> str:
    # "轴 2", but "黑屏：开" (two Chinese words need a mark between them, not a space)
    if name and value and _is_cjk(name[-1]) and _is_cjk(value[0]):
        return f"{name}：{value}"
    return f"{name} {value}"


def _is_cjk(char: str) -> bool:
    return "\u3400" <= char <= "\u9fff"


def _param(name: str, value: Any, params: Mapping[str, Any], lang: str) -> str:
    if _is_message_like(value):
        return render(value, lang)
    if isinstance(value, list) and value and all(_is_message_like(v) for v in value):
        return _SEP[lang].join(render(v, lang) for v in value)
    if name == "cmd" and isinstance(value, str):
        return command_label(value, lang)
    if name == "args" and isinstance(value, Mapping):
        pairs = _args(_talent_args(params.get("cmd"), value), lang)
        return f"（{pairs}）" if lang == "zh" and pairs else pairs
    if name == "value" and isinstance(params.get("key"), str) and params["key"] in VALUE_LABELS:
        return value_label(params["key"], value, lang)
    if name == "keys" and isinstance(value, str):  # "brightness_nits, gamma"
        value = [k.strip() for k in value.split(",") if k.strip()]
    if name in VALUE_LABELS and isinstance(value, (list, tuple)):
        return _LIST_SEP[lang].join(value_label(name, v, lang) for v in value)
    if name in VALUE_LABELS and isinstance(value, (str, bool)):
        return value_label(name, value, lang)
    if isinstance(value, list):
        return _LIST_SEP[lang].join(_plain(v, lang) for v in value)
    return _plain(value, lang)


_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_FULL_WIDTH = "\u3000-\u303f\uff00-\uffef"
# Chinese puts no space between words nor around full-width punctuation; a template's space
# beside a placeholder is for a Latin name or a number ("{device} 离线", "已 3 秒")
_ZH_SPACE = re.compile(f"(?<=[{_CJK}{_FULL_WIDTH}]) +(?=[{_CJK}{_FULL_WIDTH}])"
                       f"|(?<=[{_FULL_WIDTH}]) +| +(?=[{_FULL_WIDTH}])")


def _format(template: str, params: Mapping[str, Any], lang: str) -> str:
    shown = {str(k): _param(str(k), v, params, lang) for k, v in params.items()}
    text = re.sub(" {2,}", " ", template.format(**shown)).strip()
    return _ZH_SPACE.sub("", text) if lang == "zh" else text


def render(obj: Mapping[str, Any], lang: str) -> str:
    """A message object as a sentence in ``lang``.

    English is the object's own ``message`` when it has one; otherwise (and in Chinese) the
    catalogue template is filled with the params: nested messages rendered the same way,
    wire values (role, arm state, LED key, ...) and commands translated, booleans as on/off,
    numbers compact. A code or template that cannot be rendered gives the English
    ``message`` and is counted in :data:`fallbacks`.

    Args:
        obj: ``{"code", "params", "message"}`` (``message`` may be absent for health reasons).
        lang: ``"en"`` or ``"zh"``.
    """
    english = obj.get("message")
    if lang != "zh" and isinstance(english, str):
        return english
    code = obj.get("code")
    params = obj.get("params") or {}
    templates = catalogue().get(code) if isinstance(code, str) else None
    if templates is not None and isinstance(params, Mapping):
        try:
            return _format(templates[_index(lang)], params, lang)
        except (KeyError, IndexError, ValueError, AttributeError):
            pass
    fallbacks[str(code)] += 1
    return str(english) if english is not None else str(code)


def render_problems(problems: list[Any], lang: str) -> str:
    """Problems (message objects; plain strings shown as sent) joined with ``；``/``; ``."""
    return _SEP[lang].join(render(p, lang) if isinstance(p, Mapping) else str(p)
                           for p in problems)


def render_health(health: Mapping[str, Any], lang: str) -> str:
    """A device's health reason: its ``problems`` rendered, else the English ``reason``.

    Any problem without a code this module knows makes the whole reason the sent English
    text (a half-translated reason is worse than an untranslated one).
    """
    text = str(health.get("reason") or "")
    problems = health.get("problems")
    if not isinstance(problems, (list, tuple)) or not problems:
        return text
    parts = []
    for problem in problems:
        if not isinstance(problem, Mapping) or not isinstance(problem.get("code"), str):
            return text
        templates = catalogue().get(problem["code"])
        params = problem.get("params")
        if templates is None or not isinstance(params, Mapping):
            fallbacks[str(problem.get("code"))] += 1
            return text
        try:
            parts.append(_format(templates[_index(lang)], params, lang))
        except (KeyError, IndexError, ValueError, AttributeError):
            fallbacks[problem["code"]] += 1
            return text
    return _SEP[lang].join(parts)


def render_error(cmd: str, error: Mapping[str, Any], lang: str) -> str:
    """An error reply's ``error`` for ``cmd`` as a sentence, its problems after it.

    English is the reply's own ``message``. Chinese fills ``ERRORS[code]`` with the error's
    details and the command's label, then adds ``：`` and the rendered ``problems``.
    """
    english = str(error.get("message") or "")
    if lang != "zh":
        return english
    code = str(error.get("code") or "")
    details = {k: v for k, v in error.items() if k not in ("code", "message", "problems")}
    details["cmd"] = cmd
    templates = ERRORS.get(code)
    text = None
    if templates is not None:
        try:
            text = _format(templates[1], details, lang)
        except (KeyError, IndexError, ValueError, AttributeError):
            text = None
    if text is None:
        # an unknown code (or a template the details do not fill) is a catalogue gap:
        # tests/core/test_messages.py walks the sources so that every code sent is in ERRORS
        fallbacks[f"error:{code}"] += 1
        text = f"{command_label(cmd, lang)}被拒绝（代码 {code}）"
    problems = error.get("problems")
    if isinstance(problems, list) and problems:
        text += "：" + render_problems(problems, lang)
    return text
