"""Badges view: the list with each badge's status, and the editor.

The working copy of badge.json is the console state's `badge_file` (tui/state.py);
edits change it in place and tell the state (`edited`, `add_badge`, `remove_badge`).
Validation (file checks, then database checks and install statuses: badge_checks.py)
runs in a worker on a copy. Save validates first, asks before saving something
invalid, and never overwrites a file that changed on disk without asking. The kill
switch (k) is kill_switch.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Static
from textual.worker import get_current_worker

from ...core import browse
from ...core.condition import is_time_based
from ...core.definitions import REQUIRED, SERIES_KEYS, Badge, BadgeFile
from ...core.levels import expand
from ...core.plan_status import PlanStatus
from ..badge_file import refused
from ..db import ConnectionLost
from ..messages import ConnectionDropped, DatabaseChanged
from ..state import console_app
from ...status_style import BADGE_STATUS_STYLE as STATUS_STYLE
from ..widgets.badge_editor import BadgeEditor
from ..widgets.confirm import ConfirmScreen
from .badge_checks import Checked, badge_notes, check_badges, file_notes
from .kill_switch import KillSwitch


VALID = "✓ Every badge is valid"


class BadgesView(Horizontal):
    BINDINGS = [
        Binding("ctrl+r", "validate", "Validate", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+n", "new_badge", "New", priority=True, show=False),
        Binding("ctrl+l", "new_series", "New series: levels of one value", priority=True,
                show=False),
        Binding("ctrl+o", "duplicate", "Duplicate", priority=True, show=False),
        Binding("delete", "delete", "Delete"),
        Binding("k", "toggle_pause", "Kill switch: pause/resume the trigger (asks first)",
                show=False),
    ]
    HELP = (("↑ ↓", "pick a badge in the list; Tab moves into the editor"),)

    @dataclass
    class Validated(Message):
        checked: Checked
        then_save: bool
        quiet: bool = False  # a refresh after a change elsewhere: keep the editor's message

    @dataclass
    class CatalogLoaded(Message):
        choices: dict

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.checked: Checked | None = None
        self.current: int | None = None
        self.level: int | None = None  # the level row of the current series, if one is
        self.kill_switch = KillSwitch(self, lambda text, style: self.editor.say(text, style))

    def compose(self) -> ComposeResult:
        with Vertical(id="badge-list-pane"):
            yield DataTable(id="badge-list", cursor_type="row", zebra_stripes=True)
            yield Static("", id="badge-detail")
        yield BadgeEditor(id="editor")

    @property
    def bf(self) -> BadgeFile | None:
        return console_app(self).state.badge_file

    @property
    def editor(self) -> BadgeEditor:
        return self.query_one(BadgeEditor)

    def on_mount(self) -> None:
        table = self.query_one("#badge-list", DataTable)
        table.add_column("code", key="code")
        table.add_column("status", key="status")
        self.refresh_list()
        self.load_catalog()
        self.action_validate()

    # ---- workers ------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="badges-catalog")
    def load_catalog(self) -> None:
        try:
            choices = console_app(self).db.run("badges", browse.table_choices)
        except ConnectionLost as exc:
            self.post_message(ConnectionDropped(str(exc)))
            return
        self.post_message(self.CatalogLoaded(choices))

    @work(thread=True, exclusive=True, exit_on_error=False, group="badges-check")
    def _check(self, bf: BadgeFile, then_save: bool, quiet: bool = False) -> None:
        checked = check_badges(console_app(self).db, bf)
        if checked.lost:
            self.post_message(ConnectionDropped(checked.lost))
        if not get_current_worker().is_cancelled:
            self.post_message(self.Validated(checked, then_save, quiet))

    # ---- list ---------------------------------------------------------------------
    def _status(self, index: int, badge: Badge) -> tuple[str, str]:
        """(status word, first problem text) for the list."""
        return self.checked.status(index, badge) if self.checked else ("unchecked", "")

    def _label(self, index: int, badge: Badge) -> Text:
        """A badge's (or level's) status in the list, with its pause and timing marks."""
        status, _ = self._status(index, badge)
        label = Text(status, style=STATUS_STYLE.get(status, ""))
        if self.checked and badge.code in self.checked.paused:
            auto = badge.code in self.checked.auto_paused
            label.append(" ⏸ auto-paused" if auto else " ⏸ paused", style="bold red")
        if is_time_based(badge):
            label.append(", timed", style="cyan")
        return label

    def refresh_list(self) -> None:
        table = self.query_one("#badge-list", DataTable)
        row = table.cursor_row
        table.clear()
        bf = self.bf
        for index, badge in enumerate(bf.badges if bf else []):
            levels = expand(badge) if badge.is_series else []
            if levels and self._status(index, badge)[0] != "invalid":
                table.add_row(str(badge.code or "?"), Text("series", style="bold"),
                              key=f"b{index}")
                for place, level in enumerate(levels):
                    table.add_row(f"  {level.code or '?'}", self._label(index, level),
                                  key=f"l{index}.{place}")
            else:
                table.add_row(str(badge.code or "?"), self._label(index, badge),
                              key=f"b{index}")
        for code, name in (self.checked.orphans if self.checked else []):
            orphaned = Text(str(PlanStatus.ORPHANED), style=STATUS_STYLE[PlanStatus.ORPHANED])
            table.add_row(code, orphaned, key=f"o{code}")
        if table.row_count:
            table.move_cursor(row=min(max(row, 0), table.row_count - 1), animate=False)
        if self.current is None and bf and bf.badges:
            self._select(0)
        elif not bf or not bf.badges:
            self._select(None)
        self._show_detail()

    def _show_detail(self) -> None:
        detail = Text()
        bf = self.bf
        state = console_app(self).state
        if state.load_error:
            name = state.badges_path.name
            detail.append(f"{name} is not loaded: see the red line at the top.", style="red")
        elif self.current is not None and bf and self.current < len(bf.badges):
            badge = bf.badges[self.current]
            status, problem = self._status(self.current, badge)
            detail.append(f"{status}", style=STATUS_STYLE.get(status, ""))
            detail.append(badge_notes(self.checked, badge, problem))
        detail.append(file_notes(self.checked))
        self.query_one("#badge-detail", Static).update(detail)

    def _select(self, index: int | None) -> None:
        self.current = index
        bf = self.bf
        badge = bf.badges[index] if (bf and index is not None and index < len(bf.badges)) \
            else None
        self.editor.show(badge)
        if badge is not None and self.checked is not None:
            self.editor.show_problems(self.checked.problems_at(index))

    @on(DataTable.RowHighlighted, "#badge-list")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return  # stale: refresh_list cleared and re-filled the list since it was posted
        key = str(event.row_key.value or "")
        if key.startswith(("b", "l")):  # a level row edits its series
            index, _, level = key[1:].partition(".")
            index, self.level = int(index), int(level) if level else None
            if index != self.current:
                self._select(index)
        elif key.startswith("o"):
            self.current = None
            self.editor.show(None)
            self.editor.say(f"Badge {key[1:]} is installed in the database but no longer in "
                            "the file; the next install drops it.", "magenta")
        self._show_detail()

    def on_badge_editor_edited(self, message: BadgeEditor.Edited) -> None:
        console_app(self).state.edited()
        if self.editor.message.startswith(VALID):  # no longer true of what is in the editor
            self.editor.say("Edited since the last validation (^r validates).", "dim")
        if message.key == "code" and self.current is not None:
            table = self.query_one("#badge-list", DataTable)
            key = f"b{self.current}"
            table.update_cell(key, message.key, str(getattr(message.badge, message.key) or ""))

    # ---- kill switch -------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        """Pause or resume awarding of the selected badge (kill_switch.py)."""
        bf, index = self.bf, self.current
        if bf is None or index is None or index >= len(bf.badges):
            self.editor.say(self._needs_file("pause a badge") or "Pick a badge first.", "red")
            return
        code = bf.badges[index].code if self.level is None \
            else expand(bf.badges[index])[self.level].code  # a level row: that level
        self.kill_switch.toggle(code, bool(self.checked and code in self.checked.paused))

    def on_kill_switch_done(self, message: KillSwitch.Done) -> None:
        self.editor.say(*KillSwitch.result(message))
        if not message.error:
            self.action_validate(quiet=True)
            self.post_message(DatabaseChanged(self))

    # ---- validation and save ---------------------------------------------------------
    def on_badges_view_catalog_loaded(self, message: CatalogLoaded) -> None:
        self.editor.set_catalog(message.choices)
        if self.current is not None and self.checked is not None:
            self.editor.show_problems(self.checked.problems_at(self.current))

    def action_validate(self, then_save: bool = False, quiet: bool = False) -> None:
        if self.bf is None:
            if not quiet:
                self.editor.say(self._needs_file("validate"), "red")
            return
        self.editor.sync()
        if not quiet:
            self.editor.say("Validating…", "italic")
        self._check(copy.deepcopy(self.bf), then_save, quiet)

    def _needs_file(self, what: str) -> str:
        """Why `what` cannot work now ("" when the file is loaded); also a notification."""
        error = console_app(self).state.load_error
        if self.bf is not None or not error:
            return ""
        text = refused(what, error)
        self.app.notify(text, severity="error")
        return text

    def database_changed(self) -> None:
        """Another view installed, uninstalled or backfilled: statuses again."""
        self.action_validate(quiet=True)

    def on_badges_view_validated(self, message: Validated) -> None:
        self.checked = message.checked
        self.refresh_list()
        if self.current is not None:
            self.editor.show_problems(self.checked.problems_at(self.current))
        count = len(self.checked.problems)
        if message.quiet:
            return
        if count:
            self.editor.say(f"✗ {count} problem(s) in the file; see the fields marked ✗ "
                            "and the list.", "red")
        else:
            self.editor.say(VALID
                            + (" (file checks only)." if self.checked.database_note
                               else " against the database."), "green")
        if message.then_save:
            self._save_after_check(count)

    def action_save(self) -> None:
        if console_app(self).state.read_only:
            self.editor.say("Save refused: the console runs with --read-only, so badge.json "
                            "is not written.", "bold red")
            self.app.notify("Refused under --read-only: badge.json is not written.",
                            severity="error")
            return
        if self.bf is None:
            self.editor.say(self._needs_file("save"), "red")
            return
        self.action_validate(then_save=True)

    def _save_after_check(self, problems: int) -> None:
        if problems:
            question = (f"badge.json has {problems} problem(s). Save it anyway? Invalid "
                        "badges are kept in the file but cannot be installed.")
            self.app.push_screen(ConfirmScreen(question, [
                ("save", "Save anyway", "warning"), ("cancel", "Keep editing", "primary")]),
                lambda answer: self._save_checked() if answer == "save" else None)
        else:
            self._save_checked()

    def _save_checked(self) -> None:
        bf = self.bf
        if bf is None:
            return
        if bf.changed_on_disk():
            question = (f"{bf.path} changed on disk since it was loaded (another editor or "
                        "program wrote it). Reload it and discard your edits here, or "
                        "overwrite it with your version and discard the other one?")
            self.app.push_screen(ConfirmScreen(question, [
                ("reload", "Reload (discard mine)", "warning"),
                ("overwrite", "Overwrite (discard theirs)", "error"),
                ("cancel", "Cancel", "primary")]), self._on_conflict_answer)
            return
        self._write()

    def _on_conflict_answer(self, answer: str | None) -> None:
        if answer == "overwrite":
            self._write()
        elif answer == "reload":
            self.reload_file()
        else:
            self.editor.say("Not saved; your edits are still here.", "yellow")

    def _write(self) -> None:
        state = console_app(self).state
        try:
            state.save()
        except OSError as exc:
            self.editor.say(f"Could not save {state.badges_path}: {exc.strerror}.", "bold red")
            return
        self.editor.say(f"✓ Saved {state.badges_path}.", "green")
        self.app.notify(f"Saved {state.badges_path}.")

    def reload_file(self) -> None:
        state = console_app(self).state
        state.reload()
        self.current = None
        self.checked = None
        self.refresh_list()
        self.action_validate()
        self.editor.say(f"Reloaded {state.badges_path} from disk.", "yellow")

    # ---- add, duplicate, delete ----------------------------------------------------
    def _add(self, badge: Badge) -> None:
        index = console_app(self).state.add_badge(badge)
        self.current = None
        self.refresh_list()
        self.query_one("#badge-list", DataTable).move_cursor(row=index)
        self._select(index)
        self.query_one("#f-name").focus()
        self.action_validate()

    def action_new_badge(self) -> None:
        self._add_new("a badge", Badge(
            name="New badge", code="new_badge", condition="", present=frozenset(REQUIRED)),
            "New badge: choose its table, user field and condition.")

    def action_new_series(self) -> None:
        """A badge with levels (SPEC §2): Value and Levels instead of Condition."""
        self._add_new("a series", Badge(
            name="New series", code="new_series", value="", levels=[],
            present=frozenset(REQUIRED) - {"condition"} | frozenset(SERIES_KEYS)),
            "New series: choose its table and user field, write its value and one level "
            "per line.")

    def _add_new(self, what: str, draft: Badge, hint: str) -> None:
        """`draft` on insert, no table yet, under the first free code from its own."""
        if self.bf is None:
            self.editor.say(self._needs_file(f"add {what}"), "red")
            return
        self._add(draft.copy(code=console_app(self).state.unique_code(draft.code),
                             trigger_condition="insert", trigger_table="", user_field=""))
        self.editor.say(hint, "")

    def action_duplicate(self) -> None:
        if self.bf is None or self.current is None:
            self.editor.say(self._needs_file("duplicate") or "Pick a badge to duplicate.",
                            "red")
            return
        source = self.bf.badges[self.current]
        code = console_app(self).state.unique_code(
            f"{source.code}_copy" if isinstance(source.code, str) else "copy")
        self._add(copy.deepcopy(source).copy(code=code, name=f"{source.name} (copy)"))
        self.editor.say(f"Duplicated as {code}.", "")

    def action_delete(self) -> None:
        if self.bf is None or self.current is None:
            self.editor.say(self._needs_file("delete") or "Pick a badge to delete.", "red")
            return
        badge = self.bf.badges[self.current]
        question = (f"Delete badge '{badge.name}' ({badge.code}) from badge.json? If it is "
                    "installed, its triggers stay until the next install drops them.")
        index = self.current
        self.app.push_screen(ConfirmScreen(question, [
            ("delete", "Delete", "error"), ("cancel", "Keep it", "primary")]),
            lambda answer: self._delete(index) if answer == "delete" else None)

    def _delete(self, index: int) -> None:
        removed = console_app(self).state.remove_badge(index)
        self.checked = None
        self.current = None
        self.refresh_list()
        self.editor.say(f"Deleted {removed.code} (not saved yet).", "yellow")
        self.action_validate()

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        actions = {"btn-validate": self.action_validate, "btn-save": self.action_save,
                   "btn-new": self.action_new_badge, "btn-duplicate": self.action_duplicate,
                   "btn-delete": self.action_delete}
        action = actions.get(event.button.id or "")
        if action:
            event.stop()
            action()

    def reload(self) -> None:
        """After a reconnect: catalog and statuses again."""
        self.load_catalog()
        self.action_validate()

    def focus_home(self) -> None:
        self.query_one("#badge-list", DataTable).focus()

    def current_draft(self) -> Badge | None:
        """A copy of the badge open in the editor, unsaved edits included (for dry runs)."""
        if self.bf is None or self.current is None or self.current >= len(self.bf.badges):
            return None
        self.editor.sync()
        return copy.deepcopy(self.bf.badges[self.current])
