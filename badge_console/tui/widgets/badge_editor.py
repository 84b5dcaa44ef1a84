"""The form that edits one badge in place, with each field's error shown under it.

The editor writes every change straight into the `Badge` object it shows and posts
`BadgeEditor.Edited`; it never talks to the database. Table and column choices come
from the catalog through `set_catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from ...core.definitions import OPERATIONS, Badge
from ...core.errors import LevelProblem

FIELDS = ("name", "code", "trigger_table", "trigger_condition", "user_field", "condition",
          "value", "levels", "description", "enabled")
CONDITION_HELP = "SQL after SELECT, one boolean; NEW = row after insert/update, OLD = before"
VALUE_HELP = "SQL after SELECT, one number; each level is awarded when value >= at"
LEVELS_HELP = "one level per line: code at name (e.g. bronze 5 Collector (bronze))"
# A level's problems as this editor words them: by line of the Levels field, whose
# lines are `code at name` (core.errors.LEVEL_NEUTRAL has the facts each may use).
LEVEL_WORDS = {
    "level-object": "line {line}: write code, at and name",
    "level-keys": "line {line}: write code, at and name",
    "level-code": "line {line}: the code must be lowercase letters, digits or '_', start "
                  "with a letter, at most 50 characters",
    "level-name": "line {line}: the name (after the at) must not be empty",
    "level-at": "line {line}: the at (second word) must be a number, not {at}",
    "level-order": "line {line}: at {at} is not above the line before's {previous}; "
                   "order the lines by ascending at",
}


class BadgeEditor(VerticalScroll):
    """Editor for one badge: name, code, table, operations, user field, condition..."""

    # Tab from the list goes straight to the first field, not to the scroll container,
    # where typing went nowhere; focusing a field scrolls it into view anyway.
    can_focus = False

    @dataclass
    class Edited(Message):
        badge: Badge
        key: str

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.badge: Badge | None = None
        self.choices: dict[str, list[tuple[str, str]]] = {}
        self.message = ""  # what the message line under the buttons says

    def _row(self, label: str, key: str, *widgets) -> ComposeResult:
        with Horizontal(classes="field-row", id=f"row-{key}"):
            yield Label(label, classes="field-label")
            with Vertical(classes="field-body"):
                yield from widgets
                yield Static("", classes="field-error", id=f"e-{key}")

    def compose(self) -> ComposeResult:
        yield Static("", id="editor-title")
        yield from self._row("Name", "name", Input(id="f-name", compact=True))
        yield from self._row("Code", "code", Input(id="f-code", compact=True,
                                                    placeholder="lowercase_code"))
        yield from self._row("Trigger table", "trigger_table",
                             Select([], id="f-trigger_table", compact=True,
                                    prompt="choose a table"))
        ops = Horizontal(*[TickBox(op, id=f"op-{op}", compact=True) for op in OPERATIONS],
                         id="f-operations")
        yield from self._row("Operations", "trigger_condition", ops)
        yield from self._row("User field", "user_field",
                             Select([], id="f-user_field", compact=True,
                                    prompt="choose the user id column"))
        area = TextArea(id="f-condition", language="sql", soft_wrap=True,
                        show_line_numbers=False, compact=True)
        yield from self._row("Condition", "condition", area,
                             Static(CONDITION_HELP, classes="field-help"))
        value = TextArea(id="f-value", language="sql", soft_wrap=True,
                         show_line_numbers=False, compact=True)
        yield from self._row("Value", "value", value, Static(VALUE_HELP, classes="field-help"))
        levels = TextArea(id="f-levels", soft_wrap=False, show_line_numbers=False,
                          compact=True)
        yield from self._row("Levels", "levels", levels,
                             Static(LEVELS_HELP, classes="field-help"))
        yield from self._row("Description", "description", Input(id="f-description",
                                                                  compact=True))
        yield from self._row("Enabled", "enabled", TickBox("installed when enabled",
                                                            id="f-enabled", compact=True))
        yield Static("", id="e-general", classes="field-error")
        with Horizontal(id="editor-buttons"):
            # The keys (^r ^s ^n ^o del) are in the footer and the help (?), so the
            # buttons fit the editor at 80 columns.
            yield Button("Validate", id="btn-validate", compact=True, tooltip="ctrl+r")
            yield Button("Save", id="btn-save", variant="primary", compact=True,
                         tooltip="ctrl+s")
            yield Button("New", id="btn-new", compact=True, tooltip="ctrl+n")
            yield Button("Duplicate", id="btn-duplicate", compact=True,
                         tooltip="ctrl+o: this badge again under a new code")
            yield Button("Delete", id="btn-delete", variant="error", compact=True,
                         tooltip="del (asks first)")
        yield Static("", id="editor-message")

    # ---- filling ------------------------------------------------------------------
    def set_catalog(self, choices: dict[str, list[tuple[str, str]]]) -> None:
        self.choices = choices
        if self.badge is not None:
            self.show(self.badge)

    def _missing(self, current: str) -> tuple[str, str]:
        """The file's value when the catalog lacks it; "not found" only once it is loaded."""
        return (f"{current} (not found)" if self.choices else current), current

    def _table_options(self, current) -> list[tuple[str, str]]:
        options = [(name, name) for name in self.choices]
        if isinstance(current, str) and current and current not in self.choices:
            options.insert(0, self._missing(current))
        return options

    def _column_options(self, table, current) -> list[tuple[str, str]]:
        options = [(f"{name}  {type_}", name) for name, type_ in self.choices.get(table, [])]
        if isinstance(current, str) and current and current not in {v for _, v in options}:
            options.insert(0, self._missing(current))
        return options

    def show(self, badge: Badge | None) -> None:
        """Show a badge (None: an empty, disabled form)."""
        self.badge = badge
        self.disabled = badge is None
        with self.prevent(Input.Changed, Select.Changed, Checkbox.Changed, TextArea.Changed):
            b = badge or Badge()
            self._show_title()
            self.query_one("#f-name", Input).value = _text(b.name)
            self.query_one("#f-code", Input).value = _text(b.code)
            table_select = self.query_one("#f-trigger_table", Select)
            table_select.set_options(self._table_options(b.trigger_table))
            table_select.value = b.trigger_table if _text(b.trigger_table) else Select.NULL
            self._fill_columns(b.trigger_table, b.user_field)
            for op in OPERATIONS:
                self.query_one(f"#op-{op}", Checkbox).value = op in b.operations
            for key, text in (("condition", _text(b.condition)), ("value", _text(b.value)),
                              ("levels", levels_text(b.levels))):
                area = self.query_one(f"#f-{key}", TextArea)
                if area.text != text:  # re-showing must not move the cursor
                    area.text = text
            self.query_one("#row-condition").display = not b.is_series
            for key in ("value", "levels"):
                self.query_one(f"#row-{key}").display = b.is_series
            self.query_one("#f-description", Input).value = _text(b.description)
            self.query_one("#f-enabled", Checkbox).value = b.is_enabled
        self.show_problems([])

    def _show_title(self) -> None:
        badge = self.badge
        self.query_one("#editor-title", Static).update(
            Text(f"Editing: {_text(badge.name)}" if badge else "No badge selected",
                 style="bold"))

    def _fill_columns(self, table, current) -> None:
        select = self.query_one("#f-user_field", Select)
        select.set_options(self._column_options(table, current))
        select.value = current if _text(current) else Select.NULL

    def show_problems(self, problems) -> None:
        """Put each problem's message under the field it concerns."""
        by_key: dict[str, list[str]] = {}
        for problem in problems:
            key = problem.key if problem.key in FIELDS else "general"
            text = problem.worded(LEVEL_WORDS) if isinstance(problem, LevelProblem) \
                else problem.message if key != "general" or not problem.key \
                else f"{problem.key}: {problem.message}"
            by_key.setdefault(key, []).append(text)
        for key in FIELDS + ("general",):
            widget = self.query_one(f"#e-{key}", Static)
            messages = by_key.get(key, [])
            widget.update(Text("\n".join(f"✗ {m}" for m in messages), style="red"))
            widget.display = bool(messages)

    def say(self, message: str, style: str = "") -> None:
        self.message = message
        self.query_one("#editor-message", Static).update(Text(message, style=style))

    # ---- edits --------------------------------------------------------------------
    def sync(self) -> None:
        """Write every field's current value into the badge (before validate or save)."""
        if self.badge is None:
            return
        self._set("name", self.query_one("#f-name", Input).value)
        self._set("code", self.query_one("#f-code", Input).value)
        self._set("description", self.query_one("#f-description", Input).value or None)
        if self.badge.is_series:
            self._set("value", self.query_one("#f-value", TextArea).text)
            self._set_levels(self.query_one("#f-levels", TextArea).text)
        else:
            self._set("condition", self.query_one("#f-condition", TextArea).text)
        for key in ("trigger_table", "user_field"):
            value = self.query_one(f"#f-{key}", Select).value
            self._set(key, value if isinstance(value, str) else "")
        self._set("enabled", self.query_one("#f-enabled", Checkbox).value)
        self._sync_operations()

    def _sync_operations(self) -> None:
        ops = [op for op in OPERATIONS if self.query_one(f"#op-{op}", Checkbox).value]
        was_list = self.badge is not None and isinstance(self.badge.trigger_condition, list)
        self._set("trigger_condition", ops if (len(ops) != 1 or was_list) else ops[0])

    def _set(self, key: str, value) -> None:
        if self.badge is None or getattr(self.badge, key) == value \
                or (key == "description" and value is None and self.badge.description is None):
            return
        setattr(self.badge, key, value)
        self.badge.present = self.badge.present | {key}
        if key == "name":
            self._show_title()
        self.post_message(self.Edited(self.badge, key))

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        key = (event.input.id or "").removeprefix("f-")
        if key == "description":
            self._set(key, event.value or None)
        elif key in ("name", "code"):
            self._set(key, event.value)

    def _set_levels(self, text: str) -> None:
        """The levels as typed, unless they read as the file's (so an untouched series
        keeps its exact JSON, invalid levels included)."""
        if self.badge is not None and levels_text(self.badge.levels) != text:
            self._set("levels", parse_levels(text))

    @on(TextArea.Changed, "#f-condition")
    def _condition_changed(self, event: TextArea.Changed) -> None:
        if self.badge is not None and not self.badge.is_series:
            self._set("condition", event.text_area.text)

    @on(TextArea.Changed, "#f-value")
    def _value_changed(self, event: TextArea.Changed) -> None:
        if self.badge is not None and self.badge.is_series:
            self._set("value", event.text_area.text)

    @on(TextArea.Changed, "#f-levels")
    def _levels_changed(self, event: TextArea.Changed) -> None:
        if self.badge is not None and self.badge.is_series:
            self._set_levels(event.text_area.text)

    @on(Select.Changed, "#f-trigger_table")
    def _table_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else ""
        self._set("trigger_table", value)
        if self.badge is not None:
            columns = {name for name, _ in self.choices.get(value, [])}
            keep = self.badge.user_field if self.badge.user_field in columns else None
            with self.prevent(Select.Changed):
                self._fill_columns(value, keep)
            if keep is None:
                self._set("user_field", "")

    @on(Select.Changed, "#f-user_field")
    def _user_field_changed(self, event: Select.Changed) -> None:
        self._set("user_field", event.value if isinstance(event.value, str) else "")

    @on(Checkbox.Changed)
    def _checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox.id == "f-enabled":
            self._set("enabled", event.value)
            return
        self._sync_operations()


class TickBox(Checkbox):
    """A compact checkbox whose mark is visible only when ticked (✓), also without colour."""

    @property
    def _button(self):
        self.BUTTON_INNER = "✓" if self.value else " "
        return super()._button


def levels_text(levels) -> str:
    """A series' levels as the Levels field shows them: `code at name`, one per line."""
    if not isinstance(levels, list):
        return ""
    return "\n".join(" ".join(_text(lv.get(k)) for k in ("code", "at", "name"))
                     if isinstance(lv, dict) else _text(lv) for lv in levels)


def parse_levels(text: str) -> list[dict]:
    """What the Levels field holds, as badge.json levels; a missing part stays missing
    and an `at` that is not a number stays text, so the file checks name the mistake."""
    levels = []
    for line in text.splitlines():
        parts = line.split(maxsplit=2)
        if not parts:
            continue
        level: dict = {"code": parts[0]}
        if len(parts) > 2:
            level["name"] = parts[2]
        if len(parts) > 1:
            level["at"] = _number(parts[1])
        levels.append(level)
    return levels


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
