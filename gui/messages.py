"""Engine and driver messages in the console's language (:func:`gui.i18n.language`).

Thin wrappers over :mod:`stagectl.messages`, which the terminal dashboard shares, so a panel
renders an event, a problem list or a refusal with one call and never formats English itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gui.i18n import language
from stagectl import messages as _m


def render_message(obj: Mapping[str, Any]) -> str:
    """A message object (``{"code", "params", "message"}``) as a sentence."""
    return _m.render(obj, language())


def render_problems(problems: list[Any]) -> str:
    """A list of problems (message objects) as one line."""
    return _m.render_problems(problems, language())


def render_error(cmd: str, error: Mapping[str, Any]) -> str:
    """An error reply's ``error`` for command ``cmd``, its problems after it."""
    return _m.render_error(cmd, error, language())


def render_health(health: Mapping[str, Any]) -> str:
    """A device's health reason (its ``problems``, else the sent ``reason``)."""
    return _m.render_health(health, language())


def command_label(cmd: str) -> str:
    """A command for display (its name in English, what it does in Chinese)."""
    return _m.command_label(cmd, language())


def value_label(kind: str, value: object) -> str:
    """A wire value (role, arm state, health, LED key, ...) for display."""
    return _m.value_label(kind, value, language())
