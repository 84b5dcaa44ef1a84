"""Badges view: the list with each badge's status, and the editor.

The working copy of badge.json is `app.badge_file`; edits change it in place and mark
it dirty. Validation (file checks, then database checks and install statuses) runs in
a worker on a copy. Save validates first, asks before saving something invalid, and
never overwrites a file that changed on disk without asking.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Static
from textual.worker import get_current_worker

from ...core import browse
from ...core.condition import TIME_BASED_NOTE, is_time_based
from ...core.definitions import (REQUIRED, Badge, BadgeFile, check_definitions,
                                 save_badge_file)
from ...core.connection import first_line, redact
from ...core.errors import BadgeConsoleError, Problem, StandbyRefused
from ...core.error_log import set_paused
from ...core.install import plan_install
from ..badge_file import load, refused
from ..db import ConnectionLost
from ..messages import BadgeFileState, DatabaseChanged
from ..messages import ConnectionLost as ConnectionLostMessage
from ..status_style import BADGE_STATUS_STYLE as STATUS_STYLE
from ..widgets.badge_editor import BadgeEditor
from ..widgets.confirm import ConfirmScreen


VALID = "✓ Every badge is valid"


@dataclass
class Checked:
    """What a validation found: problems per badge index, install status per code."""

    problems: list[Problem]
    statuses: dict[str, str] = field(default_factory=dict)
    orphans: list[tuple[str, str]] = field(default_factory=list)  # (code, name)
    database_note: str = ""
    lost: str = ""  # why the database checks did not run (the app's banner says it)
    paused: set[str] = field(default_factory=set)  # codes whose kill switch is on
    errors: dict[str, list[dict]] = field(default_factory=dict)  # run-time errors recorded
    broken: dict[str, str] = field(default_factory=dict)  # installed, no longer resolves: why
    auto_paused: dict[str, dict] = field(default_factory=dict)  # paused itself: last error


def check_badges(db, bf: BadgeFile) -> Checked:
    """Runs in a worker: file + database checks and plan statuses; falls back to file only."""
    def against_database(conn):
        plan = plan_install(conn, bf)  # file and database problems, statuses, errors
        statuses = {i.code: i.status for i in plan.items if i.status != "orphaned"}
        orphans = [(i.code, i.name) for i in plan.items if i.status == "orphaned"]
        return Checked(plan.problems, statuses, orphans, paused={
            i.code for i in plan.items if i.paused}, errors={
            i.code: i.errors for i in plan.items if i.errors}, broken={
            i.code: i.detail for i in plan.items if i.status == "broken"}, auto_paused={
            i.code: i.auto_paused for i in plan.items if i.auto_paused})

    try:
        return db.run("badges", against_database)
    except ConnectionLost as exc:
        return Checked(check_definitions(bf), database_note="File checks only: the database "
                       "is not reachable.", lost=str(exc))


class BadgesView(Horizontal):
    BINDINGS = [
        Binding("ctrl+r", "validate", "Validate", priority=True),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+n", "new_badge", "New", priority=True, show=False),
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

    @dataclass
    class PauseDone(Message):
        code: str
        paused: bool
        error: str

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.checked: Checked | None = None
        self.current: int | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="badge-list-pane"):
            yield DataTable(id="badge-list", cursor_type="row", zebra_stripes=True)
            yield Static("", id="badge-detail")
        yield BadgeEditor(id="editor")

    @property
    def bf(self) -> BadgeFile | None:
        return self.app.badge_file  # type: ignore[attr-defined]

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
            choices = self.app.db.run("badges", browse.table_choices)  # type: ignore[attr-defined]
        except ConnectionLost as exc:
            self.post_message(ConnectionLostMessage(str(exc)))
            return
        self.post_message(self.CatalogLoaded(choices))

    @work(thread=True, exclusive=True, exit_on_error=False, group="badges-check")
    def _check(self, bf: BadgeFile, then_save: bool, quiet: bool = False) -> None:
        checked = check_badges(self.app.db, bf)  # type: ignore[attr-defined]
        if checked.lost:
            self.post_message(ConnectionLostMessage(checked.lost))
        if not get_current_worker().is_cancelled:
            self.post_message(self.Validated(checked, then_save, quiet))

    # ---- list ---------------------------------------------------------------------
    def _status(self, index: int, badge: Badge) -> tuple[str, str]:
        """(status word, first problem text) for the list."""
        if self.checked is None:
            return "unchecked", ""
        if badge.code in self.checked.broken:
            return "broken", self.checked.broken[badge.code]
        problems = [p for p in self.checked.problems if p.index == index]
        if problems:
            first = problems[0]
            return "invalid", (f"{first.key}: " if first.key else "") + first.message
        if badge.enabled is False:
            return "disabled", "kept in the file, not installed"
        status = self.checked.statuses.get(badge.code, "valid")
        return ("valid" if status == "invalid" else status), ""

    def refresh_list(self) -> None:
        table = self.query_one("#badge-list", DataTable)
        row = table.cursor_row
        table.clear()
        bf = self.bf
        for index, badge in enumerate(bf.badges if bf else []):
            status, _ = self._status(index, badge)
            label = Text(status, style=STATUS_STYLE.get(status, ""))
            if self.checked and badge.code in self.checked.paused:
                auto = badge.code in self.checked.auto_paused
                label.append(" ⏸ auto-paused" if auto else " ⏸ paused", style="bold red")
            if is_time_based(badge):
                label.append(", timed", style="cyan")
            table.add_row(str(badge.code or "?"), label, key=f"b{index}")
        for code, name in (self.checked.orphans if self.checked else []):
            table.add_row(code, Text("orphaned", style=STATUS_STYLE["orphaned"]),
                          key=f"o{code}")
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
        if self._file_error():
            name = getattr(getattr(self.app, "badges_path", None), "name", "badge.json")
            detail.append(f"{name} is not loaded: see the red line at the top.", style="red")
        elif self.current is not None and bf and self.current < len(bf.badges):
            status, problem = self._status(self.current, bf.badges[self.current])
            detail.append(f"{status}", style=STATUS_STYLE.get(status, ""))
            if problem:
                detail.append(f": {problem}", style="red")
            code = bf.badges[self.current].code
            auto = self.checked.auto_paused.get(code) if self.checked else None
            if auto:
                detail.append(f"\nauto-paused at {auto['at'][:19]} after too many failing "
                              f"statements (last: {auto['message']}); fix it, then resume (k)",
                              style="bold red")
            elif self.checked and code in self.checked.paused:
                detail.append("\npaused: the trigger awards nothing until resumed (k)",
                              style="bold red")
            if is_time_based(bf.badges[self.current]):
                detail.append(f"\n{TIME_BASED_NOTE} (install --schedule)", style="cyan")
            for e in (self.checked.errors.get(code, []) if self.checked else []):
                detail.append(f"\nskipped {e['count']} statement(s) on a run-time error "
                              f"(SQLSTATE {e['sqlstate']}, last {e['last_at'][:19]}): "
                              f"{e['message']}", style="yellow")
        file_level = [p for p in (self.checked.problems if self.checked else [])
                      if p.index is None]
        for problem in file_level:
            detail.append(f"\n{problem}", style="red")
        if self.checked and self.checked.database_note:
            detail.append(f"\n{self.checked.database_note}", style="yellow")
        self.query_one("#badge-detail", Static).update(detail)

    def _select(self, index: int | None) -> None:
        self.current = index
        bf = self.bf
        badge = bf.badges[index] if (bf and index is not None and index < len(bf.badges)) \
            else None
        self.editor.show(badge)
        if badge is not None and self.checked is not None:
            self.editor.show_problems([p for p in self.checked.problems if p.index == index])

    @on(DataTable.RowHighlighted, "#badge-list")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row != event.data_table.cursor_row:
            return  # stale: refresh_list cleared and re-filled the list since it was posted
        key = str(event.row_key.value or "")
        if key.startswith("b"):
            index = int(key[1:])
            if index != self.current:
                self._select(index)
        elif key.startswith("o"):
            self.current = None
            self.editor.show(None)
            self.editor.say(f"Badge {key[1:]} is installed in the database but no longer in "
                            "the file; the next install drops it.", "magenta")
        self._show_detail()

    def on_badge_editor_edited(self, message: BadgeEditor.Edited) -> None:
        self._mark_dirty()
        if self.editor.message.startswith(VALID):  # no longer true of what is in the editor
            self.editor.say("Edited since the last validation (^r validates).", "dim")
        if message.key == "code" and self.current is not None:
            table = self.query_one("#badge-list", DataTable)
            key = f"b{self.current}"
            table.update_cell(key, message.key, str(getattr(message.badge, message.key) or ""))

    def _mark_dirty(self, dirty: bool = True) -> None:
        self.app.dirty = dirty  # type: ignore[attr-defined]
        self.post_message(BadgeFileState(dirty))

    # ---- kill switch -------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        """Pause or resume awarding of the selected badge: a flag the trigger reads, no DDL.
        It changes the database at once, so it asks first."""
        bf, index = self.bf, self.current
        if bf is None or index is None or index >= len(bf.badges):
            self.editor.say(self._needs_file("pause a badge") or "Pick a badge first.", "red")
            return
        code = bf.badges[index].code
        if getattr(self.app, "read_only", False):
            self.editor.say("Pause refused: the console runs with --read-only.", "bold red")
            return
        if getattr(self.app, "standby", False):
            database = self.app.database  # type: ignore[attr-defined]
            self.editor.say(str(StandbyRefused("pause", database)), "bold red")
            return
        pause = not (self.checked and code in self.checked.paused)
        database = getattr(self.app, "database", "the database")
        question = (f"Pause {code} on {database}? Its trigger awards nothing until resumed "
                    "(k again); nothing else changes." if pause else
                    f"Resume {code} on {database}? Its trigger awards again from the next write.")
        verb = "Pause" if pause else "Resume"

        def answer(choice: str | None) -> None:
            if choice != "go":
                self.editor.say(f"{verb} cancelled; nothing was changed.", "yellow")
                return
            self.editor.say(f"{'Pausing' if pause else 'Resuming'} {code}…", "italic")
            self._set_paused(code, pause)

        self.app.push_screen(ConfirmScreen(question, [
            ("go", verb, "warning"), ("cancel", "Cancel", "primary")]), answer)

    @work(thread=True, exclusive=True, exit_on_error=False, group="badges-pause")
    def _set_paused(self, code: str, pause: bool) -> None:
        try:
            self.app.db.run(  # type: ignore[attr-defined]
                "badges", lambda conn: set_paused(conn, code, pause))
        except (ConnectionLost, BadgeConsoleError) as exc:
            self.post_message(self.PauseDone(code, pause, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - never leave "Pausing…" on screen
            detail = redact(first_line(exc), self.app.db.dsn)  # type: ignore[attr-defined]
            self.post_message(self.PauseDone(code, pause, f"Pause failed: {detail}."))
            return
        self.post_message(self.PauseDone(code, pause, ""))

    def on_badges_view_pause_done(self, message: PauseDone) -> None:
        if message.error:
            self.editor.say(message.error, "bold red")
            return
        if message.paused:
            self.editor.say(f"{message.code} paused: its trigger awards nothing until resumed.",
                            "bold red")
        else:
            self.editor.say(f"{message.code} resumed.", "green")
        self.action_validate(quiet=True)
        self.post_message(DatabaseChanged(self))

    # ---- validation and save ---------------------------------------------------------
    def on_badges_view_catalog_loaded(self, message: CatalogLoaded) -> None:
        self.editor.set_catalog(message.choices)
        if self.current is not None and self.checked is not None:
            self.editor.show_problems([p for p in self.checked.problems
                                       if p.index == self.current])

    def action_validate(self, then_save: bool = False, quiet: bool = False) -> None:
        if self.bf is None:
            if not quiet:
                self.editor.say(self._needs_file("validate"), "red")
            return
        self.editor.sync()
        if not quiet:
            self.editor.say("Validating…", "italic")
        self._check(copy.deepcopy(self.bf), then_save, quiet)

    def _file_error(self) -> str:
        return getattr(self.app, "badge_file_error", "")

    def _needs_file(self, what: str) -> str:
        """Why `what` cannot work now ("" when the file is loaded); also a notification."""
        error = self._file_error()
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
            self.editor.show_problems([p for p in self.checked.problems
                                       if p.index == self.current])
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
        if getattr(self.app, "read_only", False):
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
        try:
            save_badge_file(self.bf)  # type: ignore[arg-type]
        except OSError as exc:
            self.editor.say(f"Could not save {self.bf.path}: {exc.strerror}.", "bold red")
            return
        self._mark_dirty(False)
        self.editor.say(f"✓ Saved {self.bf.path}.", "green")  # type: ignore[union-attr]
        self.app.notify(f"Saved {self.bf.path}.")  # type: ignore[union-attr]

    def reload_file(self) -> None:
        path = self.bf.path if self.bf else getattr(self.app, "badges_path", None)
        self.app.badge_file, self.app.badge_file_error = load(path)  # type: ignore[attr-defined]
        self.current = None
        self.checked = None
        self._mark_dirty(False)
        self.refresh_list()
        self.action_validate()
        self.editor.say(f"Reloaded {path} from disk.", "yellow")

    # ---- add, duplicate, delete ----------------------------------------------------
    def _unique_code(self, base: str) -> str:
        codes = {b.code for b in self.bf.badges} if self.bf else set()
        code, n = base[:50], 2
        while code in codes:
            suffix = f"_{n}"
            code, n = base[:50 - len(suffix)] + suffix, n + 1
        return code

    def _add(self, badge: Badge) -> None:
        self.bf.badges.append(badge)  # type: ignore[union-attr]
        self._mark_dirty()
        self.current = None
        self.refresh_list()
        index = len(self.bf.badges) - 1  # type: ignore[union-attr]
        self.query_one("#badge-list", DataTable).move_cursor(row=index)
        self._select(index)
        self.query_one("#f-name").focus()
        self.action_validate()

    def action_new_badge(self) -> None:
        if self.bf is None:
            self.editor.say(self._needs_file("add a badge"), "red")
            return
        self._add(Badge(name="New badge", code=self._unique_code("new_badge"), condition="",
                        trigger_condition="insert", trigger_table="", user_field="",
                        present=frozenset(REQUIRED)))
        self.editor.say("New badge: choose its table, user field and condition.", "")

    def action_duplicate(self) -> None:
        if self.bf is None or self.current is None:
            self.editor.say(self._needs_file("duplicate") or "Pick a badge to duplicate.",
                            "red")
            return
        source = self.bf.badges[self.current]
        code = self._unique_code(f"{source.code}_copy" if isinstance(source.code, str)
                                 else "copy")
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
        removed = self.bf.badges.pop(index)  # type: ignore[union-attr]
        self._mark_dirty()
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
