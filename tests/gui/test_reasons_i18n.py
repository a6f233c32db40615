"""Health reasons arrive with codes and show in the operator's language."""

from __future__ import annotations

from drivers.device import Problem, problem_dicts
from gui import i18n
from gui.i18n import tr_reason


def test_problem_is_a_str_with_a_code() -> None:
    p = Problem("12 of 240 panels offline", "panels_offline", offline=12, total=240)
    assert p == "12 of 240 panels offline" and "; ".join([p, "x"]).startswith("12 of")
    assert problem_dicts([p, "plain"]) == (
        {"code": "panels_offline", "params": {"offline": 12, "total": 240}},)


def test_reason_translated_in_chinese_and_english() -> None:
    health = {"state": "degraded", "reason": "12 of 240 panels offline; processor at 61.5 C",
              "problems": [{"code": "panels_offline", "params": {"offline": 12, "total": 240}},
                           {"code": "processor_hot", "params": {"temperature_c": 61.5}}]}
    i18n.set_language("zh")
    try:
        assert tr_reason(health) == "240 块灯板中 12 块离线；处理器温度 61.5 °C"
    finally:
        i18n.set_language("en")
    assert tr_reason(health) == "12 of 240 panels offline; processor at 61.5 °C"


def test_reason_numbers_are_compact_and_arm_reasons_translate() -> None:
    i18n.set_language("zh")
    try:
        assert tr_reason({"reason": "no reply from udp://127.0.0.1:9000 for 3 s", "problems": [
            {"code": "no_reply", "params": {"address": "udp://127.0.0.1:9000", "seconds": 3.0}}]}
        ) == "udp://127.0.0.1:9000 已 3 秒无响应"
        assert tr_reason({"reason": "e-stop latched",
                          "problems": [{"code": "estop_latched", "params": {}}]}) == "急停未复位"
        assert tr_reason({"reason": "x", "problems": [
            {"code": "arm_lease_held", "params": {"holder": "pendant"}}]}
        ) == "无控制权：机械臂由 pendant 控制"
    finally:
        i18n.set_language("en")


def test_identity_shows_the_role_translated() -> None:
    i18n.set_language("zh")
    try:
        assert i18n.tr("identity", user="ana", role="operator") == "ana · 操作员"
        assert i18n.tr("identity", user="ana", role="martian") == "ana · martian"
    finally:
        i18n.set_language("en")
    assert i18n.tr("identity", user="ana", role="operator") == "ana · operator"


def test_unknown_code_or_bad_params_falls_back_to_the_sent_text() -> None:
    assert tr_reason({"reason": "odd", "problems": [{"code": "martian", "params": {}}]}) == "odd"
    assert tr_reason({"reason": "odd", "problems": [{"code": "loss", "params": {}}]}) == "odd"
    assert tr_reason({"reason": "plain"}) == "plain"


def test_console_shows_translated_reason(qtbot, console) -> None:  # type: ignore[no-untyped-def]
    from stagectl.client import ClientIdentity, EngineClient

    i18n.set_language("zh")
    try:
        with EngineClient(console.harness.config, ClientIdentity("e", "engineer")) as client:
            client.call("sim.fault", {"fault": "panels_offline", "value": 7})
        panel = console.window.health_panel
        qtbot.waitUntil(lambda: panel.health_of("led-main") == "degraded", timeout=3000)
        row = panel._items["led-main"]
        qtbot.waitUntil(lambda: row[3].text() == "240 块灯板中 7 块离线", timeout=3000)
    finally:
        i18n.set_language("en")
