"""Operator-facing messages as a code with parameters, in English and Simplified Chinese.

Every sentence a driver or the engine shows a person is a *message object*::

    {"code": "link_lost", "params": {"reason": "no reply for 3 s"},
     "message": "link lost: no reply for 3 s"}

``message`` is the English rendering; a console renders ``code`` and ``params`` in its own
language from the catalogue (``docs/protocols/console-state.md``). This module holds the
driver codes and the builder; the engine's codes are in :mod:`stagectl.engine.messages`, and
:mod:`stagectl.messages` renders either catalogue in either language.

A catalogue entry is ``(english, chinese)``: ``str.format`` templates over the params. A
param whose value is a message object (or a list of them) is rendered recursively and joined
with ``; `` (``；`` in Chinese).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Message = dict[str, Any]

# code: (English, Simplified Chinese)
DRIVER_MESSAGES: dict[str, tuple[str, str]] = {
    # link lifecycle (drivers/device.py)
    "connected": ("connected ({why})", "已连接（{why}）"),
    "connected_reapplying": ("connected ({why}); re-applying desired state {keys}",
                             "已连接（{why}），正在重新下发设定值：{keys}"),
    "link_lost": ("link lost: {reason}", "连接中断：{reason}"),
    "safe_shutdown_late": ("safe shutdown did not finish within {seconds} s; left as is",
                           "安全关机未在 {seconds} 秒内完成，设备保持原状"),
    "why_restart": ("processor restarted", "处理器已重启"),
    "why_subscribed": ("subscription answered", "订阅已应答"),
    "why_first_sample": ("first sample on udp port {port}", "UDP 端口 {port} 收到首个数据"),
    "why_telemetry": ("telemetry received", "收到遥测数据"),
    "why_http_answered": ("the processor's API answered", "处理器接口已应答"),
    # LED processor (drivers/led/driver.py)
    "led_stopping": ("engine stopping; wall left as is (holding its current look)",
                     "引擎正在停止，屏幕保持当前画面"),
    "led_foreign_datagrams": ("ignored datagrams from udp://{host}:{port}: not the configured "
                              "processor ({expected})",
                              "已忽略来自 udp://{host}:{port} 的数据包：不是配置的处理器"
                              "（{expected}）"),
    "led_restarted": ("processor restarted (session {old} -> {new})",
                      "处理器已重启（会话 {old} → {new}）"),
    "led_refused": ("processor refused {what}: {why}", "处理器拒绝了{what}：{why}"),
    "led_alert_panels_offline": ("panels offline: {count}", "灯板离线：{count} 块"),
    "led_alert_over_temperature": ("over temperature: {temperature_c} °C",
                                   "温度过高：{temperature_c} °C"),
    "led_alert": ("processor alert: {text}", "处理器告警：{text}"),
    # camera arm (drivers/arm/driver.py)
    "arm_lease_refused": ("controller refused control: {reason}; retrying",
                          "控制器拒绝交出控制权：{reason}，正在重试"),
    "arm_envelope_not_applied": ("controller did not apply the stage envelope: {reason}; "
                                 "checking motion against the limits it holds",
                                 "控制器未采用舞台运动范围：{reason}，按其现有限位检查运动"),
    "arm_stop_unreachable": ("engine stopping: controller unreachable, no stop sent",
                             "引擎正在停止：控制器不可达，未发送停止"),
    "arm_stopping_at_rest": ("engine stopping; arm at rest ({state})",
                             "引擎正在停止，机械臂已静止（{state}）"),
    "arm_estop_sent": ("E-STOP sent: {reason}", "已发送急停：{reason}"),
    "arm_estop_not_sent": ("E-STOP could not be sent (controller unreachable): {reason}",
                           "急停未能发出（控制器不可达）：{reason}"),
    "arm_lease_lost": ("control lease lost: {reason}; taking it again",
                       "控制权已丢失：{reason}，正在重新获取"),
    "arm_command_refused": ("controller refused a command: {reason}",
                            "控制器拒绝了一条指令：{reason}"),
    "arm_controller_restarted": ("controller restarted (telemetry sequence went back)",
                                 "控制器已重启（遥测序号回退）"),
    "arm_watchdog_tripped": ("controller watchdog tripped: {fault}",
                             "控制器看门狗触发：{fault}"),
}


def _english(value: Any) -> Any:
    """A param as the English sentence shows it (never a Python repr)."""
    if is_message(value):
        return value["message"]
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list) and value and all(is_message(v) for v in value):
        return "; ".join(v["message"] for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_english(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_english(v)) for v in value)
    return value


def as_message(reason: Any) -> Any:
    """A health reason as a message object when it has a code (``Problem``), else as is."""
    code, params = getattr(reason, "code", None), getattr(reason, "params", None)
    if isinstance(code, str) and isinstance(params, dict):
        return {"code": code, "params": dict(params), "message": str(reason)}
    return reason


def is_message(value: Any) -> bool:
    """Whether ``value`` looks like a message object (a dict with a string ``code``)."""
    return isinstance(value, Mapping) and isinstance(value.get("code"), str) \
        and "message" in value


def build(catalogue: Mapping[str, tuple[str, str]], code: str, **params: Any) -> Message:
    """A message object for ``code`` from ``catalogue``, its English text filled in.

    Raises:
        KeyError: ``code`` is not in the catalogue (a programming error: add it).
    """
    template = catalogue[code][0]
    shown = {k: _english(v) for k, v in params.items()}
    try:
        text = template.format(**shown)
    except (KeyError, IndexError, ValueError):  # a template/param mismatch must not crash
        text = f"{code} {shown}"
    return {"code": code, "params": params, "message": text}


def message(code: str, **params: Any) -> Message:
    """A driver message object (see :data:`DRIVER_MESSAGES`)."""
    return build(DRIVER_MESSAGES, code, **params)
