"""Every string the console shows, in Simplified Chinese and English.

The language comes from ``STAGECTL_LANG`` (``zh`` or ``en``), else from the system locale
(Chinese locales get ``zh``), else English. Strings are looked up by key with :func:`tr`, so a
missing translation is a ``KeyError`` in the tests rather than a silent English label.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QLocale

from stagectl.messages import render_health, value_label

LANGUAGES: tuple[str, ...] = ("en", "zh")

STRINGS: dict[str, dict[str, str]] = {
    # window and status bar
    "window_title": {"en": "stagectl console — {stage}", "zh": "stagectl 控制台 — {stage}"},
    "engine_connected": {"en": "Engine connected ({address})",
                         "zh": "引擎已连接（{address}）"},
    "engine_disconnected": {"en": "Engine not connected ({address})",
                            "zh": "引擎未连接（{address}）"},
    "identity": {"en": "{user} · {role}", "zh": "{user} · {role}"},
    "devices": {"en": "Devices", "zh": "设备"},
    "event_log": {"en": "Event log", "zh": "事件日志"},
    # health table
    "col_device": {"en": "Device", "zh": "设备"},
    "col_kind": {"en": "Kind", "zh": "类型"},
    "col_health": {"en": "Health", "zh": "状态"},
    "col_reason": {"en": "Reason", "zh": "原因"},
    "health_online": {"en": "online", "zh": "在线"},
    "health_degraded": {"en": "degraded", "zh": "异常"},
    "health_offline": {"en": "offline", "zh": "离线"},
    "health_unknown": {"en": "unknown", "zh": "未知"},
    "kind_led": {"en": "LED processor", "zh": "LED 处理器"},
    # LED panel
    "led_title": {"en": "LED wall {device}", "zh": "LED 屏 {device}"},
    "col_parameter": {"en": "Parameter", "zh": "参数"},
    "col_control": {"en": "Control", "zh": "控制"},
    "col_desired": {"en": "Desired", "zh": "设定值"},
    "col_reported": {"en": "Reported", "zh": "实际值"},
    "brightness": {"en": "Brightness", "zh": "亮度"},
    "colour_temperature": {"en": "Colour temperature", "zh": "色温"},
    "blackout": {"en": "Blackout", "zh": "黑屏"},
    "freeze": {"en": "Freeze", "zh": "冻结画面"},
    "test_pattern": {"en": "Test pattern", "zh": "测试画面"},
    "preset": {"en": "Preset", "zh": "预设"},
    "recall": {"en": "Recall", "zh": "调用"},
    "adopt": {"en": "Adopt wall settings", "zh": "采用屏幕当前设置"},
    "adopt_tip": {"en": "Make what the wall reports the engine's desired state "
                        "(accept front-panel changes)",
                  "zh": "以屏幕的实际值作为引擎的设定值（接受在处理器前面板上的修改）"},
    "drift_tip": {"en": "The wall differs from the desired value",
                  "zh": "屏幕实际值与设定值不一致"},
    "on": {"en": "on", "zh": "开"},
    "off": {"en": "off", "zh": "关"},
    "unset": {"en": "—", "zh": "—"},
    "output": {"en": "Light output", "zh": "实际输出亮度"},
    "processor_temperature": {"en": "Processor temperature", "zh": "处理器温度"},
    "panels": {"en": "Panels online", "zh": "在线灯板"},
    "panels_value": {"en": "{online} / {total}", "zh": "{online} / {total}"},
    "current_preset": {"en": "Active preset", "zh": "当前预设"},
    "alerts": {"en": "Alerts", "zh": "告警"},
    "no_alerts": {"en": "none", "zh": "无"},
    "status_group": {"en": "Wall status", "zh": "屏幕状态"},
    "settings_group": {"en": "Settings", "zh": "设置"},
    "nits": {"en": "{value:.0f} nits", "zh": "{value:.0f} 尼特"},
    "kelvin": {"en": "{value} K", "zh": "{value} K"},
    "celsius": {"en": "{value:.1f} °C", "zh": "{value:.1f} °C"},
    "nits_suffix": {"en": " nits", "zh": " 尼特"},
    # test patterns (keys from drivers.led.protocol.TEST_PATTERNS)
    "pattern_off": {"en": "off (programme)", "zh": "关（节目画面）"},
    "pattern_white": {"en": "white", "zh": "白场"},
    "pattern_black": {"en": "black", "zh": "黑场"},
    "pattern_red": {"en": "red", "zh": "红场"},
    "pattern_green": {"en": "green", "zh": "绿场"},
    "pattern_blue": {"en": "blue", "zh": "蓝场"},
    "pattern_grid": {"en": "grid", "zh": "网格"},
    "pattern_ramp": {"en": "ramp", "zh": "灰阶渐变"},
    "pattern_colour_bars": {"en": "colour bars", "zh": "彩条"},
    "pattern_checkerboard": {"en": "checkerboard", "zh": "棋盘格"},
    # event log
    "level_info": {"en": "info", "zh": "信息"},
    "level_warning": {"en": "warning", "zh": "警告"},
    "level_error": {"en": "error", "zh": "错误"},
    "log_command_failed": {"en": "{cmd} failed: {message}", "zh": "{cmd} 失败：{message}"},
    "log_connected": {"en": "engine connected", "zh": "引擎已连接"},
    "log_disconnected": {"en": "engine not heard from; waiting for it",
                         "zh": "未收到引擎消息，正在等待"},
    "log_health": {"en": "{state} {reason}", "zh": "{state} {reason}"},
    # with a reason ("异常：急停未复位"); log_health stays for a state without one
    "log_health_reason": {"en": "{state}: {reason}", "zh": "{state}：{reason}"},
    "console": {"en": "console", "zh": "控制台"},
}

_active: str | None = None


def pick_language(env: dict[str, str] | None = None, locale: QLocale | None = None) -> str:
    """``STAGECTL_LANG`` if it names a language, else the system locale's, else English."""
    values = os.environ if env is None else env
    wanted = values.get("STAGECTL_LANG", "").strip().lower()
    for lang in LANGUAGES:
        if wanted == lang or wanted.startswith(lang + "_") or wanted.startswith(lang + "-"):
            return lang
    system = locale if locale is not None else QLocale.system()
    return "zh" if system.language() == QLocale.Language.Chinese else "en"


def add_strings(table: dict[str, dict[str, str]]) -> None:
    """Merge a panel's own strings into the table (idempotent; existing keys win).

    Raises:
        ValueError: an entry lacks one of the languages.
    """
    for key, value in table.items():
        missing = [lang for lang in LANGUAGES if lang not in value]
        if missing:
            raise ValueError(f"string {key!r} has no {', '.join(missing)} text")
        STRINGS.setdefault(key, value)


def set_language(lang: str | None) -> None:
    """Use ``lang`` from now on (``None``: pick again from the environment).

    Raises:
        ValueError: an unknown language.
    """
    global _active
    if lang is not None and lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    _active = lang


def language() -> str:
    """The language in use."""
    global _active
    if _active is None:
        _active = pick_language()
    return _active


def tr(key: str, **values: object) -> str:
    """The string for ``key`` in the current language, formatted with ``values``.

    A value named ``role`` that is a wire role (``operator``, ...) is shown translated, so
    ``tr("identity", user=..., role=identity.role)`` reads "ana · 操作员" in Chinese.
    """
    text = STRINGS[key][language()]
    if "role" in values:
        values["role"] = value_label("role", values["role"], language())
    return text.format(**values) if values else text


def tr_health(state: str) -> str:
    """A health state (``online``/``degraded``/``offline``) for display."""
    key = f"health_{state}"
    return tr(key) if key in STRINGS else tr("health_unknown")


def tr_pattern(pattern: str) -> str:
    """A test pattern name for display (the wire name when there is no translation)."""
    key = f"pattern_{pattern}"
    return tr(key) if key in STRINGS else pattern


def tr_level(level: str) -> str:
    """An event level for display."""
    key = f"level_{level}"
    return tr(key) if key in STRINGS else level


def tr_reason(health: dict[str, object]) -> str:
    """A health reason in the current language (the sent English text when a code is unknown).

    The codes and their templates are :data:`stagectl.messages.HEALTH_REASONS`, shared with
    the terminal dashboard.
    """
    return render_health(health, language())
