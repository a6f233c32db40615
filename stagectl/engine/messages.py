"""The engine's operator-facing messages and error codes, in English and Simplified Chinese.

Events, interlock problems, cue blockers and refusals carry a code and params (the shape is in
:mod:`drivers.messages` and ``docs/protocols/console-state.md``), so the console and the
dashboard render them in the reader's language. Chinese wording follows
``docs/i18n-glossary.md``.

:data:`ERRORS` gives a sentence for every error-reply code the engine (or a device it relays)
can send; the reply's details fill it, and its ``problems`` follow it.
"""

from __future__ import annotations

from typing import Any

from drivers.messages import Message, build

# code: (English, Simplified Chinese)
ENGINE_MESSAGES: dict[str, tuple[str, str]] = {
    # ---- safety events -------------------------------------------------------------------
    "estop": ("E-STOP by {user} ({role}): {reason}", "{user}（{role}）按下急停：{reason}"),
    "estop_disarmed": ("E-STOP by {user} ({role}): {reason}; stage disarmed",
                       "{user}（{role}）按下急停：{reason}；运动已解除使能"),
    "estop_unreached": ("E-STOP by {user} ({role}): {reason}; NOT REACHED: {devices}",
                        "{user}（{role}）按下急停：{reason}；未能送达：{devices}"),
    "estop_default_reason": ("e-stop pressed", "未注明原因"),
    "reset_done": ("safety reset by {user} ({role}): {devices}",
                   "{user}（{role}）执行了安全复位：{devices}"),
    "reset_done_disarmed": ("safety reset by {user} ({role}): {devices}; motion stays disabled "
                            "until the stage is armed",
                            "{user}（{role}）执行了安全复位：{devices}；运动仍未使能，需另行使能"),
    "reset_refused": ("safety reset by {user} ({role}) refused: {devices} still moving",
                      "{user}（{role}）的安全复位被拒绝：{devices} 仍在运动"),
    "reset_no_motion_devices": ("no motion devices", "无运动设备"),
    "reset_device": ("{device} {was} -> {state}", "{device} {was} → {state}"),
    "reset_device_moving": ("{device} {state}: still moving, not reset",
                            "{device} {state}：仍在运动，未复位"),
    "reset_device_nothing": ("{device} {state}: nothing to reset", "{device} {state}：无需复位"),
    "reset_device_failed": ("{device} not reset: {reason}", "{device} 未复位：{reason}"),
    "stage_armed": ("stage ARMED by {user} ({role})", "{user}（{role}）使能了运动"),
    "stage_disarmed": ("stage disarmed by {user} ({role})", "{user}（{role}）解除了运动使能"),
    "talent_on": ("talent ON STAGE ({user}, {role})", "演员在台上（{user}，{role}）"),
    "talent_clear": ("talent clear ({user}, {role})", "台上无人（{user}，{role}）"),
    "device_fault": ("{device}: fault: {fault}", "{device}：故障：{fault}"),
    "device_watchdog_trip": ("{device}: watchdog trip: {fault}", "{device}：看门狗触发：{fault}"),
    # ---- interlocks and other problems (why something cannot happen now) -----------------
    "interlock_estop": ("interlock: e-stop latched ({reason}); reset first",
                        "联锁：急停未复位（{reason}），请先复位"),
    "interlock_not_armed": ("interlock: stage not armed", "联锁：运动未使能"),
    "interlock_talent": ("interlock: talent on stage", "联锁：演员在台上"),
    "device_offline": ("{device} is offline: {reason}", "{device} 离线：{reason}"),
    "device_in_state": ("{device} is in {state}; reset first", "{device} 处于{state}，请先复位"),
    "device_in_state_fault": ("{device} is in {state}: {fault}; reset first",
                              "{device} 处于{state}：{fault}，请先复位"),
    "not_connected": ("not connected", "未连接"),
    "no_device_of_kind": ("this stage has no {kind} device", "本舞台没有{kind}设备"),
    "no_such_device": ("no device named {device}", "没有名为 {device} 的设备"),
    "wrong_device_kind": ("{device} is a {kind} device, not {wanted}",
                          "{device} 是{kind}设备，不是{wanted}"),
    "arm_motion_refused": ("{device}: {reason}", "{device}：{reason}"),
    "arm_limit": ("{device}: {axis} would reach {value} {unit} at t={at_s} s, beyond its "
                  "{limit_kind} of {limit_value} {unit}",
                  "{device}：{axis} 将在第 {at_s} 秒到达 {value} {unit}，超出{limit_kind}"
                  " {limit_value} {unit}"),
    "led_value_invalid": ("{reason}", "{reason}"),
    "led_value_out_of_range": ("{device}: setting {param} to {value}: expected {expected}",
                               "{device}：{param} 设为 {value} 无效，应为 {expected}"),
    "nothing_to_reset": ("nothing to reset: no e-stop latched and no arm in ESTOP or FAULT",
                         "无需复位：没有未复位的急停，也没有处于急停或故障的机械臂"),
    "device_moving": ("{device} is moving", "{device} 正在运动"),
    "end_of_list": ("no next cue: the list is finished", "没有下一个提示点：列表已执行完"),
    "start_of_list": ("no previous cue", "没有上一个提示点"),
    "no_cues": ("no cues loaded for this stage", "本舞台未加载提示点"),
    "cue_not_ready": ("cue {cue} is not ready: {problems}", "提示点 {cue} 未就绪：{problems}"),
    # ---- cues ----------------------------------------------------------------------------
    "cue_go": ("GO cue {cue} {name} by {user} ({role}): {fired}",
               "{user}（{role}）执行提示点 {cue} {name}：{fired}"),
    "cue_fired_arm": ("{device}: {what}", "{device}：{what}"),
    "cue_fired_preset": ("{device}: preset {value}", "{device}：预设 {value}"),
    "cue_fired_set": ("{device}: {key} = {value}", "{device}：{key} = {value}"),
    "cue_fired_mark": ("take marked: {value}", "已打标记：{value}"),
    "cue_fired_nothing": ("nothing", "无动作"),
    # ---- commands and the engine ---------------------------------------------------------
    "command_done": ("{user} ({role}): {cmd} {args}", "{user}（{role}）：{cmd} {args}"),
    "command_refused_role": ("{user} ({role}) refused {cmd}", "{user}（{role}）无权{cmd}，已拒绝"),
    "engine_stopped": ("engine stopped", "引擎已停止"),
}

# Error-reply codes: (English, Simplified Chinese) over the reply's details plus ``cmd``.
ERRORS: dict[str, tuple[str, str]] = {
    "bad_request": ("{cmd}: malformed request", "{cmd}：请求格式错误"),
    "bad_json": ("{cmd}: the request is not JSON", "{cmd}：请求不是 JSON"),
    "unknown_command": ("unknown command {cmd}", "未知指令 {cmd}"),
    "invalid_value": ("{cmd}: a value is out of range or of the wrong type",
                      "{cmd}：数值超出范围或类型错误"),
    "unknown_device": ("{cmd}: no such device", "{cmd}：没有该设备"),
    "wrong_kind": ("{cmd}: that device is of another kind", "{cmd}：设备类型不符"),
    "internal": ("{cmd} failed inside the engine (see its log)",
                 "{cmd} 在引擎内部出错（见引擎日志）"),
    "interlock": ("{cmd} refused by an interlock", "{cmd} 被联锁禁止"),
    "forbidden": ("your role may not run {cmd}", "当前角色无权{cmd}"),
    "busy": ("{cmd} refused: a device is busy", "{cmd} 被拒绝：设备忙"),
    "precondition_failed": ("{cmd}: the cue was not fired", "{cmd}：提示点未执行"),
    "unknown_cue": ("{cmd}: no such cue", "{cmd}：没有该提示点"),
    "start_of_list": ("{cmd}: no previous cue", "{cmd}：没有上一个提示点"),
    "end_of_list": ("{cmd}: no next cue", "{cmd}：没有下一个提示点"),
    "no_take": ("{cmd}: no take is being recorded", "{cmd}：当前没有在录制"),
    "audit_unreadable": ("{cmd}: the safety audit file cannot be read",
                         "{cmd}：无法读取安全审计文件"),
    "overloaded": ("{cmd} refused: the engine is overloaded; try again",
                   "{cmd} 被拒绝：引擎过载，请重试"),
    "superseded": ("{cmd} not run: an e-stop or stop came after it",
                   "{cmd} 未执行：之后有急停或停止指令"),
    "unavailable": ("{cmd} not run: the engine is stopping", "{cmd} 未执行：引擎正在停止"),
    "timeout": ("{cmd}: no reply from the engine; the command was dropped",
                "{cmd}：引擎无响应，指令已丢弃"),
    "listener": ("the console lost its engine link; restart the console",
                 "控制台与引擎的连接已失效，请重启控制台"),
    "device_error": ("{cmd}: the device could not do it", "{cmd}：设备无法执行"),
    "device_offline": ("{cmd}: the device is offline", "{cmd}：设备离线"),
    "device_timeout": ("{cmd}: the device did not reply", "{cmd}：设备无响应"),
    "unsupported": ("{cmd}: this processor cannot do that (unsupported, not broken)",
                    "{cmd}：该处理器不支持此功能（不是故障）"),
    "led_refused": ("{cmd}: the processor refused it", "{cmd}：处理器拒绝执行"),
    "not_a_simulator": ("{cmd}: faults go only to a stagectl simulator",
                        "{cmd}：故障注入只能用于 stagectl 模拟器"),
    "soft_limit": ("{cmd}: outside the arm's soft limits", "{cmd}：超出机械臂软限位"),
    "velocity_limit": ("{cmd}: faster than the arm's velocity limit", "{cmd}：超出机械臂速度限制"),
    "acceleration_limit": ("{cmd}: beyond the arm's acceleration limit",
                           "{cmd}：超出机械臂加速度限制"),
    "unreachable": ("{cmd}: the pose is out of the arm's reach",
                    "{cmd}：目标位姿超出机械臂可达范围"),
    "estop_active": ("{cmd}: the arm is e-stopped; reset first", "{cmd}：机械臂处于急停，请先复位"),
    "fault": ("{cmd}: the arm is in FAULT; reset first", "{cmd}：机械臂故障，请先复位"),
    "not_lease_holder": ("{cmd}: the engine does not hold the arm's control lease",
                         "{cmd}：引擎未持有机械臂控制权"),
    "lease_held": ("{cmd}: another client holds the arm's control lease",
                   "{cmd}：机械臂控制权被其他客户端占用"),
    "too_large": ("{cmd}: the request is too large", "{cmd}：请求过大"),
    "too_many_requests": ("{cmd}: too many requests in flight", "{cmd}：未完成的请求过多"),
}


def message(code: str, **params: Any) -> Message:
    """An engine message object (see :data:`ENGINE_MESSAGES`)."""
    return build(ENGINE_MESSAGES, code, **params)


def event_data(code: str, level: str = "info", **params: Any) -> dict[str, Any]:
    """The ``data`` of an engine ``event`` message: the message object plus its level."""
    return {**message(code, **params), "level": level}
