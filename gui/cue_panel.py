"""The cue sheet: what each cue does, whether it can fire now, the next cue standing by, GO.

Modelled on a disguise cue sheet and QLab's GO: a table of cues (state marker, number, name,
what the cue does to which device, live readiness, progress of the running cue), the next cue
in bold with ▶ and named above a GO button that says what it will fire. GO, Back and Jump are
enabled only while the engine is live, the listing is fresh, the engine's controls allow the
command for this desk (:class:`gui.controls.Controls`) and the cue they would fire is ready;
the tooltip says why not. Nothing fires on a double-click: a stage crew presses a button.

The panel renders ``cue.list`` results and ``stage.cues`` messages
(``docs/protocols/console-state.md``, "Cue readiness") in both the structured shape (message
objects as problems, ``actions``, ``next``, ``running``) and the older one (string problems,
``led``/``arm`` per cue), and emits intents; it decides nothing the engine does not check again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from PySide6.QtCore import Qt, Signal, SignalInstance
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.i18n import STRINGS, add_strings, language, tr
from gui.messages import render_message

COLUMNS: tuple[str, ...] = ("state", "number", "name", "actions", "readiness", "progress")
COL_STATE, COL_NUMBER, COL_NAME, COL_ACTIONS, COL_READY, COL_PROGRESS = range(len(COLUMNS))
NUMBER_ROLE = Qt.ItemDataRole.UserRole

MARK_NEXT = "▶"
MARK_CURRENT = "●"
MARK_RUNNING = "◐"
SYMBOL_READY = "✔"
SYMBOL_BLOCKED = "✖"

READY_COLOUR = "#1b5e20"
BLOCKED_COLOUR = "#b71c1c"
STALE_COLOUR = "#757575"
NEXT_BACKGROUND = "#fff3c4"
MOVING_STATES = frozenset({"MOVING", "HOMING", "STOPPING"})  # as the engine's running

GO_STYLE = ("QPushButton { background-color: #2e7d32; color: white; font-size: 20px; "
            "font-weight: bold; min-height: 44px; padding: 0 16px; } "
            "QPushButton:disabled { background-color: #bdbdbd; color: #616161; }")
NEXT_STYLE = "font-size: 16px; font-weight: bold;"
NEXT_STALE_STYLE = f"font-size: 16px; font-weight: bold; color: {STALE_COLOUR};"

# Every string of the sheet; the ``cs_`` prefix keeps them apart from the older ``cue_*`` keys.
CUE_SHEET_STRINGS: dict[str, dict[str, str]] = {
    "cs_title": {"en": "Cue sheet", "zh": "提示点列表"},
    "cs_col_state": {"en": "State", "zh": "状态"},
    "cs_col_number": {"en": "No.", "zh": "编号"},
    "cs_col_name": {"en": "Name", "zh": "名称"},
    "cs_col_actions": {"en": "What it does", "zh": "动作"},
    "cs_col_readiness": {"en": "Readiness", "zh": "就绪状态"},
    "cs_col_progress": {"en": "Progress", "zh": "进度"},
    "cs_marker_next": {"en": "Next: GO fires this cue", "zh": "待执行：按“执行”将触发此提示点"},
    "cs_marker_current": {"en": "Last fired", "zh": "上次执行的提示点"},
    "cs_marker_running": {"en": "Running", "zh": "运行中"},
    "cs_ready": {"en": "ready", "zh": "就绪"},
    "cs_blocked": {"en": "not ready", "zh": "未就绪"},
    "cs_unknown": {"en": "?", "zh": "？"},
    "cs_unknown_offline": {"en": "unknown — engine not connected", "zh": "未知（引擎未连接）"},
    "cs_unknown_waiting": {"en": "unknown — waiting for the cue list from the engine",
                           "zh": "未知（正在等待引擎发送提示点列表）"},
    "cs_cue": {"en": "{number} — {name}", "zh": "{number} — {name}"},
    "cs_next": {"en": "Next: {cue}", "zh": "待执行：{cue}"},
    "cs_next_end": {"en": "Next: none (end of the cue list)",
                    "zh": "待执行：无（已到列表末尾）"},
    "cs_next_stale": {"en": "{text} (stale: engine not connected)",
                      "zh": "{text}（数据过期：引擎未连接）"},
    "cs_next_waiting": {"en": "{text} (stale: waiting for the engine)",
                        "zh": "{text}（数据过期：正在等待引擎）"},
    "cs_no_cues": {"en": "No cues loaded for this stage", "zh": "本舞台未加载提示点"},
    "cs_go": {"en": "GO", "zh": "执行"},
    "cs_go_cue": {"en": "GO  {cue}", "zh": "执行  {cue}"},
    "cs_back": {"en": "Back", "zh": "上一个"},
    "cs_jump": {"en": "Jump to selected", "zh": "跳转到所选"},
    "cs_jump_cue": {"en": "Jump to {number}", "zh": "跳转到 {number}"},
    "cs_tip_go": {"en": "Fire cue {cue}", "zh": "执行提示点 {cue}"},
    "cs_tip_back": {"en": "Fire the previous cue {cue} again", "zh": "重新执行上一个提示点 {cue}"},
    "cs_tip_jump": {"en": "Fire cue {cue} now", "zh": "立即执行提示点 {cue}"},
    "cs_why_offline": {"en": "The engine is not connected", "zh": "引擎未连接"},
    "cs_why_stale": {"en": "Waiting for the cue list from the engine",
                     "zh": "正在等待引擎发送提示点列表"},
    "cs_why_forbidden": {"en": "Not allowed at this desk now", "zh": "此控制台当前不允许此操作"},
    "cs_why_blocked": {"en": "Cue {number} is not ready: {problems}",
                       "zh": "提示点 {number} 未就绪：{problems}"},
    "cs_why_end": {"en": "No next cue: the list is finished",
                   "zh": "没有待执行的提示点：列表已执行完"},
    "cs_why_no_previous": {"en": "No previous cue", "zh": "没有上一个提示点"},
    "cs_why_no_selection": {"en": "Select a cue in the sheet first",
                            "zh": "请先在列表中选择一个提示点"},
    "cs_what_move_joints": {"en": "joint move", "zh": "关节运动"},
    "cs_what_move_pose": {"en": "move to tool pose", "zh": "末端位姿运动"},
    "cs_what_run_path": {"en": "run path", "zh": "轨迹运动"},
    "cs_what_preset": {"en": "preset {value}", "zh": "预设 {value}"},
    "cs_what_brightness_nits": {"en": "brightness {value} nits", "zh": "亮度 {value} 尼特"},
    "cs_what_colour_temperature_k": {"en": "colour temperature {value} K",
                                     "zh": "色温 {value} K"},
    "cs_what_mark": {"en": "mark: {value}", "zh": "标记：{value}"},
    "cs_on_device": {"en": "{device}: {what}", "zh": "{device}：{what}"},
    "cs_progress_done": {"en": "done", "zh": "完成"},
    "cs_progress_stopped": {"en": "stopped at {pct} %", "zh": "停于 {pct}%"},
    "cs_progress_unknown": {"en": "unknown", "zh": "未知"},
    "cs_sep": {"en": "; ", "zh": "；"},
}
add_strings(CUE_SHEET_STRINGS)


class ControlsLike(Protocol):
    """What the panel uses of :class:`gui.controls.Controls` (the engine's ``controls``)."""

    @property
    def changed(self) -> SignalInstance:
        """Emitted when roles, interlocks or liveness change."""

    def blocked(self, cmd: str, device: str | None = None) -> list[dict[str, Any]] | None:
        """The problems that block ``cmd`` now (None: allowed)."""

    def reason(self, cmd: str, device: str | None = None) -> str | None:
        """Why ``cmd`` is blocked, translated (None: allowed)."""


@dataclass
class CueRow:
    """One cue as the sheet shows it (either listing shape, normalised)."""

    number: int
    name: str
    actions: list[dict[str, Any]]
    ready: bool
    problems: list[Any]


@dataclass
class Sheet:
    """A whole listing, normalised."""

    cues: list[CueRow] = field(default_factory=list)
    current: int | None = None
    next: int | None = None
    running: dict[str, Any] | None = None
    structured: bool = False

    def cue(self, number: int | None) -> CueRow | None:
        """The cue numbered ``number`` (None when there is none)."""
        return next((c for c in self.cues if c.number == number), None)

    def before(self, number: int | None) -> CueRow | None:
        """The cue before cue ``number`` (what Back fires)."""
        numbers = [c.number for c in self.cues]
        if number not in numbers:
            return None
        i = numbers.index(number)
        return self.cues[i - 1] if i > 0 else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _old_actions(cue: dict[str, Any]) -> list[dict[str, Any]]:
    """The actions of a cue in the older listing shape (``arm`` a command name, ``led``)."""
    actions: list[dict[str, Any]] = []
    if cue.get("arm"):
        actions.append({"device": None, "kind": "arm", "what": str(cue["arm"])})
    led = cue.get("led")
    if isinstance(led, dict):
        for key in ("preset", "brightness_nits", "colour_temperature_k"):
            if led.get(key) is not None:
                actions.append({"device": led.get("device"), "kind": "led", "what": key,
                                "value": led[key]})
    return actions


def normalise_listing(listing: dict[str, Any]) -> Sheet:
    """A ``cue.list`` result in either shape as a :class:`Sheet`.

    Args:
        listing: the engine's listing (structured, or the older shape with string problems).

    Returns:
        The cues with their actions, readiness and problems; ``next`` computed from
        ``current`` when the listing does not carry it.
    """
    rows: list[CueRow] = []
    structured = "next" in listing
    for raw in listing.get("cues") or []:
        if not isinstance(raw, dict) or _int_or_none(raw.get("number")) is None:
            continue
        structured = structured or "actions" in raw
        actions = [a for a in raw.get("actions") or [] if isinstance(a, dict)] \
            if "actions" in raw else _old_actions(raw)
        if raw.get("mark") and not any(a.get("what") == "mark" for a in actions):
            actions.append({"device": None, "kind": "mark", "what": "mark",
                            "value": raw["mark"]})
        problems = list(raw.get("problems") or [])
        ready = raw["ready"] is True if "ready" in raw else not problems
        rows.append(CueRow(int(raw["number"]), str(raw.get("name") or ""), actions, ready,
                           problems))
    current = _int_or_none(listing.get("current"))
    numbers = [c.number for c in rows]
    if "next" in listing:
        nxt = _int_or_none(listing.get("next"))
    elif current is None:
        nxt = numbers[0] if numbers else None
    else:
        i = numbers.index(current) + 1 if current in numbers else len(numbers)
        nxt = numbers[i] if i < len(numbers) else None
    running = listing.get("running")
    return Sheet(rows, current, nxt, dict(running) if isinstance(running, dict) else None,
                 structured)


def _value_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def describe_action(action: dict[str, Any]) -> str:
    """One action for display: ``arm-a: joint move``, ``wall-a: preset 2``, ``mark: sc 12``."""
    what = str(action.get("what") or action.get("kind") or "")
    value = action.get("value")
    key = f"cs_what_{what}"
    if key in STRINGS:
        text = tr(key, value=_value_text(value))
    else:  # a newer engine's action this console has no words for: shown as sent
        text = what if value is None else f"{what} {_value_text(value)}"
    device = action.get("device")
    return tr("cs_on_device", device=device, what=text) if device else text


def describe_problem(problem: object) -> str:
    """One problem: a message object in the console's language, or an older string as sent."""
    return render_message(problem) if isinstance(problem, dict) else str(problem)


def describe_problems(problems: list[Any]) -> str:
    """Every problem of a cue, joined (``;`` or ``；``)."""
    return tr("cs_sep").join(describe_problem(p) for p in problems)


def cue_label(cue: CueRow) -> str:
    """``2 — Opening wide`` (or ``2`` for an unnamed cue)."""
    return tr("cs_cue", number=cue.number, name=cue.name) if cue.name else str(cue.number)


class CuePanel(QWidget):
    """The stage's cue sheet with GO, Back and Jump.

    Args:
        controls: the engine's controls for this desk (roles and interlocks per command);
            None: only liveness and cue readiness decide what is enabled.
        parent: the parent widget.

    Signals:
        intent(str, dict): a command name and its args for the engine.
    """

    intent = Signal(str, dict)

    def __init__(self, controls: ControlsLike | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controls = controls
        self.sheet = Sheet()
        self.current: int | None = None
        self.live = True
        self.stale = True  # nothing from the engine yet
        self.progress_bar: QProgressBar | None = None
        self._bar_cue: int | None = None
        self._finished: dict[str, Any] | None = None  # the last run's end, seen locally
        self._shown_next: int | None = None

        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("cue_sheet")
        self.table.setHorizontalHeaderLabels([tr(f"cs_col_{c}") for c in COLUMNS])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.table.horizontalHeader()
        for col in (COL_STATE, COL_NUMBER):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        for col in (COL_NAME, COL_ACTIONS, COL_READY):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(COL_PROGRESS, 120)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)

        self.next_label = QLabel()
        self.next_label.setObjectName("cue_next")
        layout.addWidget(self.next_label)
        buttons = QHBoxLayout()
        self.back_button = QPushButton(tr("cs_back"))
        self.back_button.setObjectName("cue_back")
        self.back_button.clicked.connect(lambda: self.intent.emit("cue.back", {}))
        self.jump_button = QPushButton(tr("cs_jump"))
        self.jump_button.setObjectName("cue_jump")
        self.jump_button.clicked.connect(self._jump)
        self.go_button = QPushButton(tr("cs_go"))
        self.go_button.setObjectName("cue_go")
        self.go_button.setStyleSheet(GO_STYLE)
        self.go_button.clicked.connect(lambda: self.intent.emit("cue.go", {}))
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.jump_button)
        buttons.addWidget(self.go_button, 2)
        layout.addLayout(buttons)
        if controls is not None:
            controls.changed.connect(self._update_buttons)
        self._render()

    # ---- intents ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Ask the engine for the list again."""
        self.intent.emit("cue.list", {})

    def _jump(self) -> None:
        number = self.selected_number()
        if number is not None:
            self.intent.emit("cue.jump", {"number": number})

    # ---- what the engine says -----------------------------------------------------------

    def apply_listing(self, listing: dict[str, Any]) -> None:
        """Render a ``cue.list`` result or a ``stage.cues`` message's data (either shape)."""
        previous = self.sheet
        sheet = normalise_listing(listing)
        if not sheet.structured and sheet.running is None and previous.running is not None \
                and previous.current == sheet.current:
            sheet.running = previous.running  # the older shape has no running: kept locally
        if sheet.running is not None or (self._finished is not None
                                         and self._finished.get("cue") != sheet.current):
            self._finished = None
        self.sheet = sheet
        self.current = sheet.current
        self.stale = False
        self._render()

    def apply_reported(self, device: str, delta: dict[str, Any]) -> None:
        """Follow the running cue's progress from an arm's reported ``progress``/``state``.

        Args:
            device: the arm that reported.
            delta: its reported keys that changed.
        """
        running = self.sheet.running
        state = delta.get("state")
        done = self._finished
        if running is None and done is not None and done.get("device") == device:
            if state is not None:
                done["device"] = None  # the arm moved on: the cue's end stays as it was
            elif isinstance(delta.get("progress"), int | float):
                done["progress"] = float(delta["progress"])  # an arm reports state first
                self._render()
                return
        if running is None:
            cue = self.sheet.cue(self.sheet.current)
            if self.sheet.structured or state not in MOVING_STATES or cue is None or not any(
                    a.get("kind") == "arm" and a.get("device") in (None, device)
                    for a in cue.actions):
                return
            running = {"cue": cue.number, "device": device, "progress": 0.0}
            self.sheet.running = running
            self._finished = None
        elif running.get("device") not in (None, device):
            return
        if isinstance(delta.get("progress"), int | float):
            running["progress"] = float(delta["progress"])
        if state is not None and state not in MOVING_STATES:
            self._finished = {"cue": running.get("cue"), "device": device, "state": state,
                              "progress": float(running.get("progress") or 0.0)}
            self.sheet.running = None
            self._render()
        elif self.progress_bar is not None and self._bar_cue == running.get("cue"):
            _show_progress(self.progress_bar, running.get("progress"))
        else:
            self._render()

    def set_live(self, live: bool) -> None:
        """Whether the engine is heard from; when it is not, readiness is shown as unknown.

        Coming back live keeps the sheet stale until the next listing arrives (the bridge
        asks for every snapshot again when the link comes back).
        """
        self.live = live
        if not live:
            self.stale = True
        self._render()

    # ---- reading the sheet (tests, other panels) ----------------------------------------

    def row_of(self, number: int) -> int | None:
        """The table row of cue ``number``."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, COL_NUMBER)
            if item is not None and item.data(NUMBER_ROLE) == number:
                return row
        return None

    def cell(self, number: int, column: int) -> str:
        """The text of cue ``number``'s cell in ``column`` ("" when there is none)."""
        row = self.row_of(number)
        item = None if row is None else self.table.item(row, column)
        return "" if item is None else item.text()

    def selected_number(self) -> int | None:
        """The number of the selected cue."""
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.table.item(rows[0].row(), COL_NUMBER)
        return None if item is None else _int_or_none(item.data(NUMBER_ROLE))

    def select(self, number: int) -> None:
        """Select cue ``number`` (as a click on its row does)."""
        row = self.row_of(number)
        if row is not None:
            self.table.selectRow(row)

    # ---- rendering ----------------------------------------------------------------------

    @property
    def fresh(self) -> bool:
        """Whether what the sheet shows is the engine's state now."""
        return self.live and not self.stale

    def _render(self) -> None:
        selected = self.selected_number()
        if self.progress_bar is not None:
            self.progress_bar.hide()  # removed widgets are deleted later: gone from view now
            self.progress_bar = None
            self._bar_cue = None
            for row in range(self.table.rowCount()):
                self.table.removeCellWidget(row, COL_PROGRESS)
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(len(self.sheet.cues))
            for row, cue in enumerate(self.sheet.cues):
                self._render_row(row, cue)
            self.table.clearSelection()
            row_selected = None if selected is None else self.row_of(selected)
            if row_selected is not None:
                self.table.selectRow(row_selected)
        finally:
            self.table.blockSignals(False)
        next_row = None if self.sheet.next is None else self.row_of(self.sheet.next)
        if next_row is not None and self.sheet.next != self._shown_next:
            item = self.table.item(next_row, COL_NUMBER)
            if item is not None:  # keep the cue standing by in view, as QLab does
                self.table.doItemsLayout()  # the scroll range follows the new rows first
                self.table.scrollToItem(item, QAbstractItemView.ScrollHint.EnsureVisible)
        self._shown_next = self.sheet.next
        self._render_next()
        self._update_buttons()

    def _render_row(self, row: int, cue: CueRow) -> None:
        sheet = self.sheet
        running = sheet.running is not None and sheet.running.get("cue") == cue.number
        is_next = cue.number == sheet.next
        if running:
            marker, tip = MARK_RUNNING, tr("cs_marker_running")
        elif cue.number == sheet.current:
            marker, tip = MARK_CURRENT, tr("cs_marker_current")
        elif is_next:
            marker, tip = MARK_NEXT, tr("cs_marker_next")
        else:
            marker, tip = "", ""
        if self.fresh:
            ready_text, ready_colour = (
                (f"{SYMBOL_READY} {tr('cs_ready')}", READY_COLOUR) if cue.ready else
                (f"{SYMBOL_BLOCKED} {describe_problems(cue.problems) or tr('cs_blocked')}",
                 BLOCKED_COLOUR))
        else:
            why = tr("cs_unknown_offline") if not self.live else tr("cs_unknown_waiting")
            ready_text, ready_colour = f"{tr('cs_unknown')} {why}", STALE_COLOUR
        texts = {COL_STATE: marker, COL_NUMBER: str(cue.number), COL_NAME: cue.name,
                 COL_ACTIONS: tr("cs_sep").join(describe_action(a) for a in cue.actions),
                 COL_READY: ready_text, COL_PROGRESS: self._progress_text(cue.number)}
        font = QFont(self.table.font())
        font.setBold(is_next)
        for col, text in texts.items():
            item = QTableWidgetItem(text)
            item.setFont(font)
            item.setToolTip(tip if col == COL_STATE else text)
            if is_next:
                item.setBackground(QBrush(QColor(NEXT_BACKGROUND)))
            self.table.setItem(row, col, item)
        number_item = self.table.item(row, COL_NUMBER)
        assert number_item is not None
        number_item.setData(NUMBER_ROLE, cue.number)
        ready_item = self.table.item(row, COL_READY)
        assert ready_item is not None
        ready_item.setForeground(QBrush(QColor(ready_colour)))
        if not self.fresh:
            for col in (COL_STATE, COL_PROGRESS):
                stale_item = self.table.item(row, col)
                assert stale_item is not None
                stale_item.setForeground(QBrush(QColor(STALE_COLOUR)))
        if running and self.fresh and sheet.running is not None:
            bar = QProgressBar()
            bar.setFormat("%p%" if language() == "zh" else "%p %")
            _show_progress(bar, sheet.running.get("progress"))
            self.table.setCellWidget(row, COL_PROGRESS, bar)
            self.progress_bar, self._bar_cue = bar, cue.number

    def _progress_text(self, number: int) -> str:
        running = self.sheet.running
        if running is not None and running.get("cue") == number:
            return "" if self.fresh else f"{tr('cs_unknown')} {tr('cs_progress_unknown')}"
        done = self._finished
        if done is None or done.get("cue") != number:
            return ""
        if not self.fresh:
            return f"{tr('cs_unknown')} {tr('cs_progress_unknown')}"
        if done["state"] == "IDLE" and done["progress"] >= 0.999:
            return tr("cs_progress_done")
        return tr("cs_progress_stopped", pct=_percent(done["progress"]))

    def _render_next(self) -> None:
        nxt = self.sheet.cue(self.sheet.next)
        if nxt is not None:
            text = tr("cs_next", cue=cue_label(nxt))
            self.go_button.setText(tr("cs_go_cue", cue=cue_label(nxt)))
        else:
            text = tr("cs_next_end") if self.sheet.cues else tr("cs_no_cues")
            self.go_button.setText(tr("cs_go"))
        if self.stale and not self.sheet.cues:
            text = tr("cs_why_stale") if self.live else tr("cs_why_offline")
        elif not self.live:
            text = tr("cs_next_stale", text=text)
        elif self.stale:
            text = tr("cs_next_waiting", text=text)
        self.next_label.setText(text)
        self.next_label.setStyleSheet(NEXT_STYLE if self.fresh else NEXT_STALE_STYLE)

    def _why_not(self, cmd: str, cue: CueRow | None, missing: str) -> str | None:
        """Why ``cmd`` (firing ``cue``) cannot be sent now; None when it can."""
        if not self.live:
            return tr("cs_why_offline")
        if self.stale:
            return tr("cs_why_stale")
        if self.controls is not None and self.controls.blocked(cmd) is not None:
            return self.controls.reason(cmd) or tr("cs_why_forbidden")
        if cue is None:
            return missing
        if not cue.ready:
            return tr("cs_why_blocked", number=cue.number,
                      problems=describe_problems(cue.problems) or tr("cs_blocked"))
        return None

    def _update_buttons(self) -> None:
        sheet = self.sheet
        nxt = sheet.cue(sheet.next)
        previous = sheet.before(sheet.current)
        selected = sheet.cue(self.selected_number())
        end = tr("cs_why_end") if sheet.cues else tr("cs_no_cues")
        for button, cmd, cue, missing, tip in (
                (self.go_button, "cue.go", nxt, end, "cs_tip_go"),
                (self.back_button, "cue.back", previous, tr("cs_why_no_previous"),
                 "cs_tip_back"),
                (self.jump_button, "cue.jump", selected, tr("cs_why_no_selection"),
                 "cs_tip_jump")):
            why = self._why_not(cmd, cue, missing)
            button.setEnabled(why is None)
            if why is not None:
                button.setToolTip(why)
            else:
                assert cue is not None
                button.setToolTip(tr(tip, cue=cue_label(cue)))
        self.jump_button.setText(tr("cs_jump") if selected is None
                                 else tr("cs_jump_cue", number=selected.number))


def _show_progress(bar: QProgressBar, progress: object) -> None:
    """``progress`` 0..1 on ``bar``; busy (no figure) when the arm reports none."""
    if isinstance(progress, int | float):
        bar.setRange(0, 100)
        bar.setValue(_percent(progress))
    else:
        bar.setRange(0, 0)


def _percent(progress: object) -> int:
    value = float(progress) if isinstance(progress, int | float) else 0.0
    return round(min(max(value, 0.0), 1.0) * 100)
