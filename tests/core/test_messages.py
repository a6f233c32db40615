"""The message catalogues and their renderer: complete, consistent, Chinese that reads right.

Every code the engine or a driver can send must render in both languages (the console shows
the Chinese, the log keeps the English), and every code the sources use must be in a
catalogue: :func:`test_every_code_the_sources_use_is_in_a_catalogue` walks ``drivers/`` and
``stagectl/`` for them, so a new event or refusal cannot ship untranslated.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

import stagectl.engine.engine  # noqa: F401  imports (registers) every command module
from drivers.arm import protocol as arm_protocol
from drivers.messages import DRIVER_MESSAGES
from stagectl import messages as m
from stagectl.engine.commands import COMMANDS
from stagectl.engine.messages import ENGINE_MESSAGES, ERRORS
from stagectl.engine.messages import message as engine_message

ROOT = Path(__file__).resolve().parents[2]

CJK = "\u3400-\u4dbf\u4e00-\u9fff"
# What may stay in Latin letters inside Chinese text (docs/i18n-glossary.md, "What stays
# English"): units, protocol and signal names, the product name, URL schemes, axis letters.
ALLOWED_LATIN = ("°C", "K", "Hz", "ms", "mm", "fps", "UDP", "OSC", "JSON", "ZeroMQ", "MQTT",
                 "HTTP", "IP", "VMP", "Live Control", "Tessera", "HELIOS", "NovaStar", "COEX",
                 "FreeD", "OpenTrackIO", "LED", "SDI", "ST", "stagectl", "udp", "X", "Y", "Z", "S")
_ALLOWED = re.compile("(?<![A-Za-z])(?:" + "|".join(map(re.escape, ALLOWED_LATIN))
                      + ")(?![A-Za-z])")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_ASCII_AFTER_CJK = re.compile(f"[{CJK}\u3000-\u303f\uff00-\uffef] *[:;,(]")


def _fields(template: str) -> set[str]:
    return {re.split(r"[.\[!:]", name)[0] for _, name, _, _ in string.Formatter().parse(template)
            if name is not None}


def _latin_left(text: str, placeholders: bool = True) -> list[str]:
    if placeholders:
        text = _PLACEHOLDER.sub(" ", text)
    return re.findall("[A-Za-z]+", _ALLOWED.sub(" ", text))


TEMPLATES: dict[str, tuple[str, str]] = {
    **{f"message:{k}": v for k, v in m.catalogue().items()},
    **{f"error:{k}": v for k, v in ERRORS.items()},
}


def test_no_code_is_in_two_message_catalogues() -> None:
    tables = [m.HEALTH_REASONS, DRIVER_MESSAGES, ENGINE_MESSAGES]
    for i, a in enumerate(tables):
        for b in tables[i + 1:]:
            assert not set(a) & set(b), f"codes in two catalogues: {sorted(set(a) & set(b))}"


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_template_has_both_languages_with_the_same_placeholders(code: str) -> None:
    en, zh = TEMPLATES[code]
    assert en.strip() and zh.strip(), f"{code}: an empty template"
    assert _fields(en) == _fields(zh), f"{code}: en {_fields(en)} != zh {_fields(zh)}"
    dummy = {name: 1 for name in _fields(en)}
    en.format(**dummy), zh.format(**dummy)  # a format spec that cannot take a number fails


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_chinese_template_has_no_english_and_full_width_punctuation(code: str) -> None:
    zh = TEMPLATES[code][1]
    assert not _latin_left(zh), f"{code}: English left in {zh!r}: {_latin_left(zh)}"
    assert not _ASCII_AFTER_CJK.search(zh), f"{code}: ASCII punctuation after Chinese in {zh!r}"


def test_every_command_has_a_label_in_chinese() -> None:
    assert set(COMMANDS) <= set(m.COMMAND_LABELS), sorted(set(COMMANDS) - set(m.COMMAND_LABELS))
    for cmd, (en, zh) in m.COMMAND_LABELS.items():
        assert en == cmd, f"{cmd}: English keeps the command name"
        assert zh and not _latin_left(zh), f"{cmd}: English left in {zh!r}"
        assert m.command_label(cmd, "zh") == zh and m.command_label(cmd, "en") == cmd
    assert m.command_label("no.such", "zh") == "no.such"


def test_value_and_argument_labels_are_chinese() -> None:
    for kind, table in m.VALUE_LABELS.items():
        for value, (en, zh) in table.items():
            assert en and zh and not _latin_left(zh), f"{kind}={value}: {zh!r}"
    for name, (en, zh) in m.ARG_LABELS.items():
        assert en and zh and not _latin_left(zh), f"arg {name}: {zh!r}"


# ---- rendering ---------------------------------------------------------------------------

def test_nested_messages_and_value_labels() -> None:
    obj = engine_message("reset_done", user="ana", role="engineer", devices=[
        engine_message("reset_device", device="arm-a", was="ESTOP", state="IDLE"),
        engine_message("reset_device_nothing", device="arm-b", state="IDLE")])
    assert m.render(obj, "zh") == ("ana（工程师）执行了安全复位："
                                   "arm-a 急停 → 空闲；arm-b 空闲：无需复位")
    assert m.render(obj, "en") == obj["message"]
    assert "arm-a ESTOP -> IDLE; arm-b IDLE: nothing to reset" in obj["message"]


def test_params_in_value_labels_are_translated() -> None:
    assert m.render(engine_message("stage_armed", user="ana", role="operator"), "zh") \
        == "ana（操作员）使能了运动"
    assert m.render(engine_message("device_in_state", device="arm-a", state="FAULT"), "zh") \
        == "arm-a 处于故障，请先复位"
    assert m.render(engine_message("wrong_device_kind", device="w", kind="led", wanted="arm"),
                    "zh") == "w 是LED设备，不是机械臂"
    fired = engine_message("cue_go", cue=3, name="Opening wide", user="ana", role="operator",
                           fired=[engine_message("cue_fired_set", device="wall-a",
                                                 key="test_pattern", value="grid"),
                                  engine_message("cue_fired_arm", device="arm-a",
                                                 what="move_joints")])
    assert m.render(fired, "zh") == ("ana（操作员）执行提示点 3 Opening wide："
                                     "wall-a：测试画面 = 网格；arm-a：关节运动")
    assert m.value_label("health", "degraded", "zh") == "异常"
    assert m.value_label("state", "idle", "zh") == "空闲"
    assert m.value_label("role", "martian", "zh") == "martian"
    assert m.value_label("nothing", True, "zh") == "开"


def test_command_args_render_as_name_value_pairs() -> None:
    done = engine_message("command_done", user="ana", role="operator", cmd="led.set",
                          args={"key": "blackout", "value": True, "device": "wall-a",
                                "_user": "ana"})
    assert m.render(done, "zh") == "ana（操作员）：设置 LED 参数（黑屏：开，设备 wall-a）"
    jog = engine_message("command_done", user="ana", role="operator", cmd="arm.jog",
                         args={"axis": 2, "velocity": 5.0, "duration_s": 0.25})
    assert m.render(jog, "zh") == "ana（操作员）：点动机械臂（轴 2，速度 5，时长 0.25）"
    bare = engine_message("command_done", user="ana", role="operator", cmd="safety.arm",
                          args={})
    assert m.render(bare, "zh") == "ana（操作员）：使能运动"
    brightness = engine_message("command_done", user="b", role="engineer", cmd="led.set",
                                args={"key": "brightness_nits", "value": 800.0})
    assert m.render(brightness, "zh") == "b（工程师）：设置 LED 参数（亮度 800）"


def test_health_reason_inside_a_driver_event() -> None:
    lost = {"code": "link_lost", "message": "link lost: no reply",
            "params": {"reason": {"code": "no_reply", "message": "no reply",
                                  "params": {"address": "udp://127.0.0.1:9000",
                                             "seconds": 3.0}}}}
    assert m.render(lost, "zh") == "连接中断：udp://127.0.0.1:9000 已 3 秒无响应"
    health = {"reason": "odd", "problems": [{"code": "panels_offline",
                                             "params": {"offline": 2, "total": 240}}]}
    assert m.render_health(health, "zh") == "240 块灯板中 2 块离线"
    assert m.render_health(health, "en") == "2 of 240 panels offline"
    assert m.render_health({"reason": "plain"}, "zh") == "plain"


def test_unknown_code_or_bad_params_fall_back_to_english_and_are_counted() -> None:
    m.fallbacks.clear()
    assert m.render({"code": "martian", "params": {}, "message": "beep"}, "zh") == "beep"
    assert m.render({"code": "stage_armed", "params": {}, "message": "armed"}, "zh") == "armed"
    assert m.render_health({"reason": "odd", "problems": [{"code": "loss", "params": {}}]},
                           "zh") == "odd"
    assert m.fallbacks == {"martian": 1, "stage_armed": 1, "loss": 1}
    m.fallbacks.clear()


def test_refusals_render_the_error_code_then_the_problems() -> None:
    error = {"code": "interlock", "message": "arm.jog refused: interlock: stage not armed",
             "problems": [engine_message("interlock_not_armed"),
                          engine_message("interlock_talent")]}
    assert m.render_error("arm.jog", error, "zh") == ("点动机械臂被联锁禁止："
                                                      "联锁：运动未使能；联锁：演员在台上")
    assert m.render_error("arm.jog", error, "en") == error["message"]
    forbidden = m.render_error("arm.jog", {"code": "forbidden", "message": "no",
                                           "role": "viewer"}, "zh")
    assert forbidden.endswith("点动机械臂") and not _latin_left(forbidden, placeholders=False)
    m.fallbacks.clear()
    assert m.render_error("arm.jog", {"code": "martian", "message": "beep"}, "zh") \
        == "点动机械臂被拒绝（代码 martian）"
    assert m.render_error("arm.jog", {"code": "martian", "message": "beep"}, "en") == "beep"
    assert m.fallbacks == {"error:martian": 1}
    m.fallbacks.clear()


def test_pick_language() -> None:
    assert m.pick_language({"STAGECTL_LANG": "zh"}) == "zh"
    assert m.pick_language({"STAGECTL_LANG": "zh_CN", "LANG": "en_GB.UTF-8"}) == "zh"
    assert m.pick_language({"STAGECTL_LANG": "en", "LANG": "zh_CN.UTF-8"}) == "en"
    assert m.pick_language({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert m.pick_language({"LC_ALL": "en_US.UTF-8", "LANG": "zh_CN.UTF-8"}) == "en"
    assert m.pick_language({"STAGECTL_LANG": "fr"}) == "en"
    assert m.pick_language({}) == "en"


@pytest.mark.parametrize("code", sorted(m.catalogue()))
def test_every_code_renders_in_chinese_without_english(code: str) -> None:
    en, _ = m.catalogue()[code]
    params = {name: 7 for name in _fields(en)}
    m.fallbacks.clear()
    text = m.render({"code": code, "params": params, "message": "ENGLISH"}, "zh")
    assert not m.fallbacks, f"{code} fell back to English"
    assert not _latin_left(text, placeholders=False), f"{code}: {text!r}"


@pytest.mark.parametrize("code", sorted(ERRORS))
def test_every_error_renders_in_chinese_without_english(code: str) -> None:
    m.fallbacks.clear()
    text = m.render_error("arm.jog", {"code": code, "message": "ENGLISH"}, "zh")
    assert not m.fallbacks, f"{code} fell back to English"
    assert not _latin_left(text, placeholders=False), f"{code}: {text!r}"


# ---- the engine's code table: every code the sources send is in a catalogue -----------------

# callable name -> (index of the code among positional args, keyword, which table)
_CODE_ARGS: dict[str, tuple[int, str, str]] = {
    "message": (0, "code", "message"),
    "event_data": (0, "code", "message"),
    "build": (1, "code", "message"),
    "Problem": (1, "code", "message"),
    "CommandFailure": (0, "code", "error"),
    "ArmProtocolError": (0, "code", "error"),
    "error_reply": (1, "code", "error"),
    "CommandError": (2, "code", "error"),
    "ArmRefused": (2, "code", "error"),
}
_MESSAGE_MODULES = ("drivers.messages", "stagectl.engine.messages")


def _constants(node: ast.expr) -> Iterator[str | None]:
    """The string codes an argument can be (``None``: not a constant, cannot check)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _constants(node.body)
        yield from _constants(node.orelse)
    elif isinstance(node, (ast.Name, ast.Attribute)):
        name = node.id if isinstance(node, ast.Name) else node.attr
        value = getattr(arm_protocol, name, None) if name.isupper() else None
        yield value if isinstance(value, str) else None
    else:
        yield None


def _codes_used() -> Iterator[tuple[str, str, str]]:
    """(table, code, "file:line") for every code passed to a message or error builder."""
    for path in sorted([*ROOT.glob("drivers/**/*.py"), *ROOT.glob("stagectl/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in _MESSAGE_MODULES:
                aliases.update({a.asname or a.name: a.name for a in node.names})
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else \
                func.attr if isinstance(func, ast.Attribute) else ""
            name = aliases.get(name, name)
            if name in ("message", "event_data", "build") and isinstance(func, ast.Name) \
                    and func.id not in aliases and path.name != "messages.py":
                continue  # a local function of the same name, not the catalogue's builder
            if name not in _CODE_ARGS:
                continue
            index, keyword, table = _CODE_ARGS[name]
            arg = node.args[index] if len(node.args) > index else next(
                (k.value for k in node.keywords if k.arg == keyword), None)
            if arg is None:
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            for code in _constants(arg):
                if code is not None:
                    yield table, code, where


def _arm_protocol_error_codes() -> list[str]:
    source = (ROOT / "drivers/arm/protocol.py").read_text(encoding="utf-8")
    block = source.split("# Error codes", 1)[1].split("class ArmProtocolError", 1)[0]
    return re.findall(r'^[A-Z_]+ = "([a-z_]+)"', block, re.MULTILINE)


def test_the_source_walk_finds_codes() -> None:
    used = {(table, code) for table, code, _ in _codes_used()}
    assert ("error", "unknown_device") in used and ("message", "panels_offline") in used
    assert ("error", "soft_limit") in {("error", c) for c in _arm_protocol_error_codes()}


def test_every_code_the_sources_use_is_in_a_catalogue() -> None:
    tables = {"message": m.catalogue(), "error": ERRORS}
    missing = sorted({f"{table} {code!r} ({where})" for table, code, where in _codes_used()
                      if code not in tables[table]})
    missing += [f"error {code!r} (drivers/arm/protocol.py constant)"
                for code in _arm_protocol_error_codes() if code not in ERRORS]
    assert not missing, "codes with no catalogue entry:\n" + "\n".join(missing)


def test_no_event_is_built_as_english_only() -> None:
    """An event dict with ``message`` and ``level`` but no ``code`` cannot be translated."""
    english_only = []
    for path in sorted([*ROOT.glob("drivers/**/*.py"), *ROOT.glob("stagectl/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Dict):
                continue
            keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
            spread = any(k is None for k in node.keys)  # {**message(...), "level": ...}
            if {"message", "level"} <= keys and "code" not in keys and not spread:
                english_only.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not english_only, "events with English only (use event_data/message):\n" + \
        "\n".join(english_only)


def test_reapplied_keys_are_named_in_chinese() -> None:
    why = {"code": "why_restart", "params": {}, "message": "processor restarted"}
    for keys in ("brightness_nits, test_pattern", ["brightness_nits", "test_pattern"]):
        obj = {"code": "connected_reapplying", "params": {"why": why, "keys": keys},
               "message": "connected"}
        assert m.render(obj, "zh") == "已连接（处理器已重启），正在重新下发设定值：亮度、测试画面"


def test_talent_command_reads_as_the_stage_state() -> None:
    for on, text in ((True, "演员在台上"), (False, "台上无人")):
        done = engine_message("command_done", user="ana", role="operator", cmd="safety.talent",
                              args={"on": on})
        assert m.render(done, "zh") == f"ana（操作员）：设置在台状态（{text}）"


def test_a_validation_param_is_named_in_chinese() -> None:
    assert m.value_label("param", "brightness_nits", "zh") == "亮度"
    assert m.value_label("param", "joints_deg", "zh") == "关节角度"
    assert m.value_label("param", "martian", "zh") == "martian"
