"""The console strings of the arm panel and the safety bar (merged into :mod:`gui.i18n`).

Chinese wording follows the crew's terms (``docs/i18n-glossary.md``): 使能 for motion enable
(布防/撤防 is burglar-alarm language), 急停未复位 for a latched e-stop, 回原点, 末端位姿,
横滚/俯仰/偏航. Full-width punctuation after Chinese text.
"""

from __future__ import annotations

import re

from gui import i18n
from gui.i18n import language, tr
from gui.messages import value_label
from stagectl.messages import safety_words

ARM_STATES: tuple[str, ...] = ("IDLE", "MOVING", "HOMING", "STOPPING", "ESTOP", "FAULT",
                               "DISCONNECTED")
ROLES: tuple[str, ...] = ("operator", "engineer", "producer", "viewer")
CONSOLE_ESTOP_REASON = "console E-STOP"  # the reason this console sends (audit log: English)
ENGINE_ESTOP_REASON = "e-stop pressed"  # the engine's reason when none is given

# the shared state words (stagectl.messages.SAFETY_WORDS) behind the safety bar's symbols
_WORDS = safety_words({"armed": "●", "disarmed": "○", "estop": "▲", "talent": "◆", "clear": "◇"})

STRINGS: dict[str, dict[str, str]] = {
    "estop": {"en": "E-STOP", "zh": "急停"},
    "estop_button": {"en": "E-STOP  ({shortcut})", "zh": "急停（{shortcut}）"},
    "estop_tip": {"en": "Stop every motion device now (F12)", "zh": "立即停止所有运动设备（F12）"},
    "kind_arm": {"en": "camera arm", "zh": "机械臂"},
    "arm_title": {"en": "Arm {device}", "zh": "机械臂 {device}"},
    "arm_stage": {"en": "Arm stage", "zh": "使能运动"},
    "disarm_stage": {"en": "Disarm", "zh": "解除使能"},
    "talent_on": {"en": "Talent on stage", "zh": "演员在台上"},
    "talent_off_button": {"en": "Confirm stage clear", "zh": "确认台上无人"},
    "safety_reset": {"en": "Reset", "zh": "复位"},
    "arm_colon": {"en": ": ", "zh": "："},
    # the safety bar's state words (symbol + word: tellable apart without colour)
    "armed": _WORDS["armed"],
    "disarmed": _WORDS["disarmed"],
    "latched": _WORDS["estop"],
    "talent_present": _WORDS["talent"],
    "talent_clear": _WORDS["clear"],
    "not_latched": {"en": "no e-stop", "zh": "无急停"},
    "safety_unknown": {"en": "? UNKNOWN — engine not connected",
                       "zh": "？状态未知（引擎未连接）"},
    "state_not_known_tip": {"en": "Waiting for the engine's current state",
                            "zh": "正在等待引擎的当前状态"},
    "latched_tip": {"en": "E-STOP by {by}: {reason}", "zh": "急停操作人：{by}；原因：{reason}"},
    # reset confirmation
    "reset_title": {"en": "Reset after E-STOP?", "zh": "急停后复位？"},
    "reset_intro": {"en": "Reset will:", "zh": "复位将："},
    "reset_clear_latch": {"en": "clear the E-STOP latch (by {by}: {reason})",
                          "zh": "复位急停（操作人：{by}；原因：{reason}）"},
    "reset_no_latch": {"en": "(no E-STOP is latched)", "zh": "（当前没有未复位的急停）"},
    "reset_arms": {"en": "reset the e-stopped or faulted arms: {arms}",
                   "zh": "复位处于急停或故障状态的机械臂：{arms}"},
    "reset_arms_none": {"en": "reset no arm (none is e-stopped or faulted)",
                        "zh": "不复位任何机械臂（没有机械臂处于急停或故障状态）"},
    "reset_arms_unknown": {"en": "reset every arm that is e-stopped or faulted and at rest",
                           "zh": "复位所有处于急停或故障状态且已静止的机械臂"},
    "reset_stays_disarmed": {"en": "The stage stays DISARMED. Arming it to move is a "
                                   "separate act (Arm stage).",
                             "zh": "复位后舞台仍为运动未使能状态；需要运动时，另行点击"
                                   "“使能运动”。"},
    "reset_question": {"en": "Reset now?", "zh": "现在复位吗？"},
    "arm_list_sep": {"en": ", ", "zh": "、"},
    "arm_unknown_value": {"en": "unknown", "zh": "未知"},
    # roles (``estop_by`` is "user (role)")
    "reason_console_estop": {"en": "console E-STOP", "zh": "控制台急停"},
    "reason_engine_estop": {"en": "e-stop pressed", "zh": "按下急停"},
    # arm panel
    "arm_state": {"en": "State", "zh": "状态"},
    "arm_state_unknown": {"en": "unknown", "zh": "未知"},
    "arm_state_IDLE": {"en": "IDLE", "zh": "空闲"},
    "arm_state_MOVING": {"en": "MOVING", "zh": "运动中"},
    "arm_state_HOMING": {"en": "HOMING", "zh": "回原点中"},
    "arm_state_STOPPING": {"en": "STOPPING", "zh": "停止中"},
    "arm_state_ESTOP": {"en": "ESTOP", "zh": "急停"},
    "arm_state_FAULT": {"en": "FAULT", "zh": "故障"},
    "arm_state_DISCONNECTED": {"en": "DISCONNECTED", "zh": "未连接"},
    "arm_fault": {"en": "Fault: {fault}", "zh": "故障：{fault}"},
    "arm_fault_estop": {"en": "e-stop", "zh": "急停"},
    "arm_joint": {"en": "Joint", "zh": "关节"},
    "arm_position": {"en": "Position", "zh": "位置"},
    "arm_velocity": {"en": "Velocity", "zh": "速度"},
    "arm_jog": {"en": "Jog", "zh": "点动"},
    "arm_axis_track": {"en": "track", "zh": "轨道位置"},
    "arm_home": {"en": "Home", "zh": "回原点"},
    "arm_stop": {"en": "Stop", "zh": "停止"},
    "arm_run_path": {"en": "Run path…", "zh": "运行轨迹…"},
    # a Qt file-dialog filter: the pattern must stay in ASCII parentheses
    "arm_path_files": {"en": "Paths (*.json *.toml)", "zh": "轨迹文件 (*.json *.toml)"},
    "arm_pose": {"en": "Tool pose", "zh": "末端位姿"},
    "pose_x": {"en": "x", "zh": "x"},
    "pose_y": {"en": "y", "zh": "y"},
    "pose_z": {"en": "z", "zh": "z"},
    "pose_roll": {"en": "roll", "zh": "横滚"},
    "pose_pitch": {"en": "pitch", "zh": "俯仰"},
    "pose_yaw": {"en": "yaw", "zh": "偏航"},
    # the cue tab's title (gui/app.py; the cue sheet has its own table in gui/cue_panel.py)
    "cue_title": {"en": "Cues", "zh": "提示点列表"},
}

_CLI_HINT = re.compile(r"\s*\((?:run )?stagectl [^)]*\)")
# the fault an arm reports after an e-stop: "e-stop", "e-stop: <reason>", "... (<user>)"
_ESTOP_FAULT = re.compile(r"^e-stop(?:: (?P<reason>.*?))?(?: \((?P<user>[^()]*)\))?$")
_BY = re.compile(r"^(?P<user>.*) \((?P<role>[a-z]+)\)$")


def label(key: str) -> str:
    """A field label with the language's colon (``State: `` / ``状态：``)."""
    return tr(key) + tr("arm_colon")


def tr_arm_state(state: object) -> str:
    """An arm state (wire name) for display; anything unknown reads "unknown"."""
    return tr(f"arm_state_{state}") if state in ARM_STATES else tr("arm_state_unknown")


def tr_role(role: str) -> str:
    """A role (wire name) for display; an unknown one is shown as sent."""
    return value_label("role", role)


def tr_estop_by(by: object) -> str:
    """``estop_by`` ("user (role)") with the role translated."""
    text = str(by or "")
    match = _BY.match(text)
    if not match:
        return text or tr("arm_unknown_value")
    role = tr_role(match["role"])
    return f"{match['user']}（{role}）" if language() == "zh" else f"{match['user']} ({role})"


def tr_estop_reason(reason: object) -> str:
    """An e-stop reason: the console's and the engine's own are translated, typed ones kept."""
    text = str(reason or "")
    if text == CONSOLE_ESTOP_REASON:
        return tr("reason_console_estop")
    if text == ENGINE_ESTOP_REASON:
        return tr("reason_engine_estop")
    return strip_cli_hints(text) or tr("arm_unknown_value")


def tr_arm_fault(fault: object) -> str:
    """An arm's fault text for display: an e-stop's is translated, a controller's kept.

    The arm reports ``e-stop: <reason> (<user>)`` after the engine's e-stop; any other fault
    is the controller's own text and is shown as sent (without CLI hints).
    """
    text = strip_cli_hints(str(fault or ""))
    match = _ESTOP_FAULT.match(text)
    if not match:
        return text
    parts = tr("arm_fault_estop")
    if match["reason"]:
        parts += tr("arm_colon") + tr_estop_reason(match["reason"])
    if match["user"]:
        parts += f"（{match['user']}）" if language() == "zh" else f" ({match['user']})"
    return parts


def strip_cli_hints(text: str) -> str:
    """``text`` without "(stagectl arm arm)"-style hints: a console user has buttons."""
    return _CLI_HINT.sub("", text)


def join_list(items: list[str]) -> str:
    """Names joined with the language's list separator."""
    return tr("arm_list_sep").join(items)


i18n.add_strings(STRINGS)
