"""The console strings of the arm, safety bar and cue panels (merged into :mod:`gui.i18n`)."""

from __future__ import annotations

from gui import i18n

STRINGS: dict[str, dict[str, str]] = {
    "estop": {"en": "E-STOP", "zh": "急停"},
    "estop_tip": {"en": "Stop every motion device now (F12)", "zh": "立即停止所有运动设备（F12）"},
    "kind_arm": {"en": "camera arm", "zh": "摄像机械臂"},
    "arm_title": {"en": "Arm {device}", "zh": "机械臂 {device}"},
    "arm_stage": {"en": "Arm stage", "zh": "布防（允许运动）"},
    "disarm_stage": {"en": "Disarm", "zh": "撤防"},
    "talent_on": {"en": "Talent on stage", "zh": "演员在场"},
    "safety_reset": {"en": "Reset", "zh": "复位"},
    "safety_status": {"en": "{armed} · {talent} · {latch}",
                      "zh": "{armed} · {talent} · {latch}"},
    "armed": {"en": "ARMED", "zh": "已布防"},
    "disarmed": {"en": "disarmed", "zh": "已撤防"},
    "talent_present": {"en": "TALENT ON STAGE", "zh": "演员在场"},
    "talent_clear": {"en": "stage clear", "zh": "舞台无人"},
    "latched": {"en": "E-STOP LATCHED", "zh": "急停已锁定"},
    "not_latched": {"en": "no e-stop", "zh": "无急停"},
    "arm_state": {"en": "State", "zh": "状态"},
    "arm_joint": {"en": "Joint", "zh": "关节"},
    "arm_position": {"en": "Position", "zh": "位置"},
    "arm_velocity": {"en": "Velocity", "zh": "速度"},
    "arm_jog": {"en": "Jog", "zh": "点动"},
    "arm_home": {"en": "Home", "zh": "回零"},
    "arm_stop": {"en": "Stop", "zh": "停止"},
    "arm_run_path": {"en": "Run path…", "zh": "运行路径…"},
    "arm_pose": {"en": "Tool pose", "zh": "工具位姿"},
    "cue_title": {"en": "Cues", "zh": "Cue 列表"},
    "cue_go": {"en": "GO", "zh": "GO（执行）"},
    "cue_back": {"en": "Back", "zh": "上一个"},
    "cue_jump": {"en": "Jump to selected", "zh": "跳到所选"},
    "cue_ready": {"en": "ready", "zh": "就绪"},
}


i18n.add_strings(STRINGS)
