"""What each console control may do now: the engine's ``controls`` data, held for the widgets.

The engine publishes, per command, the roles allowed and the interlocks it needs, and the
current state of every interlock (``docs/protocols/console-state.md``, "Controls"). A
:class:`Controls` object keeps the last copy, the identity the engine resolved for this console
and whether the engine is live, and answers one question for every widget: may this command
be sent now, and if not, why (in the console's language). Widgets are bound once with
:meth:`Controls.bind` and follow every change; nothing here decides anything the engine does
not decide again when the command arrives.
"""

from __future__ import annotations

from typing import Any, Protocol

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from gui import i18n
from gui.arm_i18n import strip_cli_hints
from gui.i18n import tr
from gui.messages import render_problems, value_label
from stagectl.client import ClientIdentity

ROLE_NAMES: tuple[str, ...] = ("operator", "engineer", "producer", "viewer")

i18n.add_strings({
    "console_engine_offline": {"en": "The engine is not connected; this control is unavailable",
                               "zh": "引擎未连接，无法操作"},
    "console_no_controls": {"en": "Waiting for the engine to say what this console may do",
                            "zh": "正在等待引擎告知本控制台的操作权限"},
    "console_role": {"en": "The {role} role may not use this control (allowed: {roles})",
                     "zh": "{role}无权执行此操作（允许：{roles}）"},
    "console_unknown_command": {"en": "The engine does not offer this command ({cmd})",
                                "zh": "引擎未提供此操作"},
    "console_unknown_interlock": {"en": "The engine did not report interlock {interlock}",
                                  "zh": "引擎未报告所需的联锁状态"},
    "console_nobody": {"en": "nobody", "zh": "无"},
})

# English templates of the problems this module makes (the ``message`` of each).
_ENGLISH: dict[str, str] = {
    "console_engine_offline": "the engine is not connected",
    "console_no_controls": "the engine has not said what this console may do yet",
    "console_role": "role {role} may not send {cmd} (allowed: {roles})",
    "console_unknown_command": "the engine does not offer {cmd}",
    "console_unknown_interlock": "the engine did not report interlock {interlock}",
}


def role_label(role: str) -> str:
    """A role (``operator``...) in the console's language; an unknown one as sent.

    The labels are the engine's value labels (``stagectl.messages.VALUE_LABELS``), shared
    with the dashboard.
    """
    return value_label("role", role)


def _problem(code: str, **params: Any) -> dict[str, Any]:
    shown = {k: ", ".join(v) if isinstance(v, list) else v for k, v in params.items()}
    return {"code": code, "params": params, "message": _ENGLISH[code].format(**shown)}


def _separator() -> str:
    return "；" if i18n.language() == "zh" else "; "


def _render_own(problem: dict[str, Any]) -> str:
    """One of this module's ``console_*`` problems in the console's language."""
    code = str(problem.get("code"))
    params = problem.get("params") or {}
    if code == "console_role":
        roles = [role_label(str(r)) for r in params.get("roles") or []]
        joined = ("、" if i18n.language() == "zh" else ", ").join(roles) or tr("console_nobody")
        return tr(code, role=str(params.get("role", "")), roles=joined)  # tr labels role
    if code == "console_unknown_command":
        return tr(code, cmd=params.get("cmd", ""))
    if code == "console_unknown_interlock":
        return tr(code, interlock=params.get("interlock", ""))
    return tr(code)


def render(problems: list[dict[str, Any]]) -> str:
    """Problems as one sentence in the console's language.

    The console's own ``console_*`` problems are rendered here; engine problems by
    :func:`gui.messages.render_problems`.
    """
    parts: list[str] = []
    engine: list[dict[str, Any]] = []

    def flush() -> None:
        if not engine:
            return
        parts.append(render_problems(list(engine)))
        engine.clear()

    for problem in problems:
        if str(problem.get("code", "")).startswith("console_"):
            flush()
            parts.append(_render_own(problem))
        else:
            engine.append(problem)
    flush()
    return _separator().join(p for p in parts if p)


class Controls(QObject):
    """The engine's controls data for this console, plus liveness.

    Args:
        identity: who the console says it is; the engine's resolved identity (``you`` in
            the ``controls`` reply) replaces it once heard.
        parent: Qt parent.

    Signals:
        changed(): the snapshot, the identity or liveness changed (bound widgets are
            already updated when it is emitted).
    """

    changed = Signal()

    def __init__(self, identity: ClientIdentity, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.identity = identity
        self.live = False
        self.snapshot: dict[str, Any] = {}
        self._you: dict[str, Any] = {}
        self._bound: list[tuple[QWidget, str, str | None, str]] = []

    @property
    def role(self) -> str:
        """The role the engine resolved for this console (until heard: the declared one)."""
        return str(self._you.get("role") or self.identity.role)

    @property
    def user(self) -> str:
        """The user the engine resolved for this console (until heard: the declared one)."""
        return str(self._you.get("user") or self.identity.user)

    def apply_snapshot(self, data: dict[str, Any]) -> None:
        """Take a ``controls`` reply or ``stage.controls`` data (``you`` only in the reply)."""
        you = data.get("you")
        if isinstance(you, dict):
            self._you = dict(you)
        self.snapshot = {k: v for k, v in data.items() if k != "you"}
        self._changed()

    def set_live(self, live: bool) -> None:
        """Whether the engine is heard from (not live: every engine control is blocked)."""
        if live != self.live:
            self.live = live
            self._changed()

    def blocked(self, cmd: str, device: str | None = None) -> list[dict[str, Any]] | None:
        """Why ``cmd`` (on ``device``) cannot be sent now, or None when it can.

        Returns:
            None when allowed, else a list of problem objects ``{code, params, message}``:
            the console's own (engine offline, role refused, no controls yet, unknown
            command) or the engine's interlock problems.
        """
        if not self.live:
            return [_problem("console_engine_offline")]
        commands = self.snapshot.get("commands")
        if not isinstance(commands, dict):
            return [_problem("console_no_controls")]
        entry = commands.get(cmd)
        if not isinstance(entry, dict):
            return [_problem("console_unknown_command", cmd=cmd)]
        roles = [str(r) for r in entry.get("roles") or []]
        if self.role not in roles:
            return [_problem("console_role", role=self.role, cmd=cmd, roles=roles)]
        problems = [p for name in entry.get("needs") or []
                    if (p := self._interlock(str(name), device)) is not None]
        return problems or None

    def _interlock(self, name: str, device: str | None) -> dict[str, Any] | None:
        interlocks = self.snapshot.get("interlocks") or {}
        devices = self.snapshot.get("devices") or {}
        entry = devices.get(device) if device is not None else None
        if isinstance(entry, dict) and name in entry:
            return _as_problem(entry[name])
        if name in interlocks:
            return _as_problem(interlocks[name])
        if device is None and any(isinstance(d, dict) and name in d for d in devices.values()):
            return None  # a per-device need of a command that names no device
        return _problem("console_unknown_interlock", interlock=name)

    def reason(self, cmd: str, device: str | None = None) -> str | None:
        """:meth:`blocked` as one sentence in the console's language (None: allowed)."""
        problems = self.blocked(cmd, device)
        return None if problems is None else render(problems)

    def bind(self, widget: QWidget, cmd: str, device: str | None = None) -> None:
        """Keep ``widget`` enabled exactly while ``cmd`` is allowed, its tooltip saying why not.

        The widget's own tooltip (at bind time) is shown while it is enabled.
        """
        self._bound.append((widget, cmd, device, widget.toolTip()))
        self._update(widget, cmd, device, widget.toolTip())

    def _update(self, widget: QWidget, cmd: str, device: str | None, own_tip: str) -> None:
        gate(widget, self, cmd, device, live=self.live, own_tip=own_tip)

    def _changed(self) -> None:
        self._bound = [b for b in self._bound if shiboken6.isValid(b[0])]
        for widget, cmd, device, own_tip in self._bound:
            self._update(widget, cmd, device, own_tip)
        self.changed.emit()


def _as_problem(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    return {"code": "interlock", "params": {}, "message": str(value)}


class ControlsLike(Protocol):
    """What the panels use of :class:`gui.controls.Controls` (the engine's ``controls``)."""

    changed: Any  # Signal()
    live: bool
    snapshot: dict[str, Any]

    def blocked(self, cmd: str, device: str | None = None) -> list[dict[str, Any]] | None:
        """The problems that block ``cmd`` now (None: allowed)."""
        ...

    def reason(self, cmd: str, device: str | None = None) -> str | None:
        """Why ``cmd`` is blocked, translated (None: allowed)."""
        ...


def gate(widget: QWidget, controls: ControlsLike | None, cmd: str, device: str | None = None,
         *, live: bool = True, known: bool = True, own_tip: str = "") -> None:
    """Enable ``widget`` only when ``cmd`` can be sent now; its tooltip says why not.

    Args:
        widget: the control.
        controls: the engine's controls (None: gated by liveness only; the engine checks).
        cmd: the command the control would send now.
        device: the device it acts on (device-level interlocks).
        live: whether the engine is heard from.
        known: whether the state the control depends on has arrived from the engine.
        own_tip: the widget's tooltip while it is enabled.
    """
    tip = ""
    if not live:  # the engine's interlock data is as old as the link: say only that
        tip = tr("console_engine_offline")
    elif controls is not None and controls.blocked(cmd, device) is not None:
        tip = strip_cli_hints(controls.reason(cmd, device) or "") or cmd  # role, interlock
    elif not known:
        tip = tr("state_not_known_tip")
    widget.setEnabled(not tip)
    widget.setToolTip(tip or own_tip)
