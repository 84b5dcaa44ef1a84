"""Awards view: who holds what, keyset paged, with counts per badge; grant, revoke, and
revoke those who no longer qualify after a preview.

Every query runs in a thread worker (on the view's own connection, "awards") that posts
a message; the handlers are the only code touching widgets. One page of awards is in
memory at a time: paging forward remembers the id each page started below, so going
back is the same keyset query. Grant and revoke ask first (ConfirmScreen); the
revoke-unqualified preview is the confirm of the run, whose progress is shown per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, ProgressBar, Static

from ..db import ConnectionLost, QueryCancelled
from ..messages import ConnectionDropped
from ..state import console_app
from ..widgets.confirm import ConfirmScreen
from ..widgets.grant_form import GrantForm
from ...core.errors import StandbyRefused

if TYPE_CHECKING:
    from ...core.awards import AwardChange, AwardPage
    from ...core.definitions import BadgeFile
    from ...core.unqualified import RevokeProgress, Unqualified

PAGE = 100
DB = "awards"
GRID_COLUMNS = (("id", 6), ("user", 7), ("badge", 16), ("code", 14), ("awarded", 19))
COUNT_COLUMNS = (("badge", 18), ("holders", 7), ("first award", 19), ("last award", 19))


def _sentence(exc: Exception) -> str:
    """The engine's typed errors as the view words them."""
    from ...core import errors

    if isinstance(exc, errors.UnknownBadge):
        return f"There is no badge {exc.code} (not in badge.json, installed or awarded)."
    if isinstance(exc, errors.UnknownUser):
        return f"There is no user {exc.user} in {exc.table}." if exc.table else \
            f"{exc.user!r} cannot be a user id here ({exc.type_name})."
    if isinstance(exc, errors.AwardStateConflict):
        state = "already holds" if exc.held else "does not hold"
        return f"User {exc.user} {state} badge {exc.code}; nothing was changed."
    if isinstance(exc, errors.AwardTableMissing):
        return f"The award table {exc.table} does not exist yet; install first."
    if isinstance(exc, (QueryCancelled, errors.BadgeConsoleError)):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"Error: {text[0] if text else type(exc).__name__}"


class AwardsView(Vertical):
    BINDINGS = [
        Binding("n", "next_page", "Next"),
        Binding("p", "previous_page", "Prev"),
        Binding("slash", "focus_search", "Search"),
        Binding("g", "grant", "Grant"),
        Binding("r", "revoke", "Revoke"),
        Binding("u", "unqualified", "Unqualified"),
        Binding("R", "reload", "Reload", show=False),
        Binding("escape", "leave_search", "Back to the grid", show=False),
    ]
    HELP = (("g r u", "each shows what it will do and asks before changing the awards"),)

    @dataclass
    class PageLoaded(Message):
        page: AwardPage

    @dataclass
    class Failed(Message):
        text: str

    @dataclass
    class Changed(Message):
        change: AwardChange

    @dataclass
    class PreviewReady(Message):
        preview: Unqualified

    @dataclass
    class Progressed(Message):
        progress: RevokeProgress

    @dataclass
    class RevokeDone(Message):
        result: Unqualified

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.page: AwardPage | None = None
        self.starts: list[int | None] = [None]  # `before` of each page shown so far
        self.user = ""
        self.badge = ""
        self.running = False  # a revoke-unqualified run is under way

    def compose(self) -> ComposeResult:
        with Horizontal(id="aw-search"):
            yield Static("User ", classes="aw-label")
            yield Input(placeholder="user id", id="aw-user", compact=True)
            yield Static(" Badge ", classes="aw-label")
            yield Input(placeholder="code or name (part of); Enter searches", id="aw-badge",
                        compact=True)
        yield DataTable(id="aw-grid", zebra_stripes=True, cursor_type="row")
        with Vertical(id="aw-side"):
            yield Static(Text("Holders per badge", style="bold"), id="aw-counts-title")
            yield DataTable(id="aw-counts", zebra_stripes=True, cursor_type="none")
        yield ProgressBar(id="aw-progress", show_eta=False)
        yield Static("", id="aw-status")

    def on_mount(self) -> None:
        # Fixed widths: a page never makes the columns jump, and they are drawn at once.
        for table, columns in (("#aw-grid", GRID_COLUMNS), ("#aw-counts", COUNT_COLUMNS)):
            grid = self.query_one(table, DataTable)
            for label, width in columns:
                grid.add_column(label, width=width)

    def on_show(self) -> None:
        if self.page is None:  # first shown: the console's start does not wait on this
            self.reload()

    # ---- workers (threads: post messages only) ------------------------------------
    def _post(self, fn, message) -> None:
        """fn(conn) on the view's connection; its result posted as `message`, or the
        failure as Failed (and ConnectionDropped for the app's banner)."""
        try:
            result = console_app(self).db.run(DB, fn)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            if isinstance(exc, ConnectionLost):
                self.post_message(ConnectionDropped(str(exc)))
            self.post_message(self.Failed(_sentence(exc)))
            return
        self.post_message(message(result))

    @work(thread=True, exclusive=True, exit_on_error=False, group="awards-page")
    def fetch(self, before: int | None) -> None:
        from ...core.awards import list_awards

        bf = console_app(self).state.badge_file
        self._post(lambda conn: list_awards(conn, bf, user=self.user or None,
                                            search=self.badge or None, limit=PAGE,
                                            before=before), self.PageLoaded)

    @work(thread=True, exclusive=True, exit_on_error=False, group="awards-change")
    def change(self, code: str, user: str, grant: bool) -> None:
        from ...core.awards import grant_award, revoke_award

        bf = console_app(self).state.badge_file
        self._post(lambda conn: (grant_award if grant else revoke_award)(conn, bf, code, user),
                   self.Changed)

    @work(thread=True, exclusive=True, exit_on_error=False, group="awards-unqualified")
    def preview(self, bf: BadgeFile) -> None:
        from ...core.unqualified import preview_unqualified

        self._post(lambda conn: preview_unqualified(conn, bf), self.PreviewReady)

    @work(thread=True, exclusive=True, exit_on_error=False, group="awards-unqualified")
    def revoke_run(self, bf: BadgeFile) -> None:
        from ...core.unqualified import revoke_unqualified

        self._post(lambda conn: revoke_unqualified(
            conn, bf, progress=lambda p: self.post_message(self.Progressed(p))),
            self.RevokeDone)

    # ---- handlers (UI thread) ------------------------------------------------------
    def on_awards_view_page_loaded(self, message: PageLoaded) -> None:
        from ...core.awards import describe_time

        self.page = page = message.page
        grid = self.query_one("#aw-grid", DataTable)
        grid.clear()
        for r in page.rows:
            grid.add_row(str(r.id), str(r.user_id), r.name, r.code, describe_time(r.awarded_at),
                         key=str(r.id))
        counts = self.query_one("#aw-counts", DataTable)
        counts.clear()
        for c in page.counts:
            counts.add_row(c.name, f"{c.holders:,}", describe_time(c.first_at),
                           describe_time(c.last_at))
        self._status()

    def on_awards_view_failed(self, message: Failed) -> None:
        self.running = False
        self.query_one("#aw-progress").remove_class("-running")
        self.app.notify(message.text, severity="error")
        self._status(message.text)

    def on_awards_view_changed(self, message: Changed) -> None:
        c = message.change
        what = "Granted" if c.event == "grant" else "Revoked"
        to = "to" if c.event == "grant" else "from"
        self.app.notify(f"{what} {c.name} {to} user {c.user_id} (event #{c.event_id}).")
        self.reload()

    def on_awards_view_preview_ready(self, message: PreviewReady) -> None:
        result = message.preview
        self._status()
        if not result.unqualified:
            self.app.notify("Every holder still qualifies; nothing to revoke.")
            return
        lines = [f"{i.code}: {i.unqualified} of {i.holders} (users "
                 f"{', '.join(map(str, i.sample))}{', ...' if i.unqualified > len(i.sample) else ''})"
                 for i in result.items if i.unqualified]
        question = (f"{result.unqualified} holder(s) no longer satisfy their badge's "
                    "condition:\n" + "\n".join(lines) + "\nRevoke these awards (each notified)?")
        self.app.push_screen(ConfirmScreen(question, [
            ("revoke", f"Revoke {result.unqualified}", "error"),
            ("cancel", "Cancel", "primary")]),
            lambda answer: self._start_run() if answer == "revoke" else None)

    def _start_run(self) -> None:
        bf = self._loaded_file() if self._writable() else None
        if bf is None:
            return
        self.running = True
        bar = self.query_one("#aw-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.add_class("-running")
        self._status("Revoking holders who no longer qualify…")
        self.revoke_run(bf)

    def on_awards_view_progressed(self, message: Progressed) -> None:
        p = message.progress
        self.query_one("#aw-progress", ProgressBar).update(total=max(p.holders, 1),
                                                           progress=p.done)
        self._status(f"Revoking unqualified {p.code}: {p.done:,} of {p.holders:,} holders "
                     f"checked, {p.revoked:,} revoked")

    def on_awards_view_revoke_done(self, message: RevokeDone) -> None:
        self.running = False
        self.query_one("#aw-progress").remove_class("-running")
        per = ", ".join(f"{i.code} {i.revoked}" for i in message.result.items if i.revoked)
        self.app.notify(f"Revoked {message.result.revoked} award(s) of holders who no longer "
                        f"qualify ({per or 'none'}).")
        self.reload()

    def _status(self, note: str = "") -> None:
        text = Text()
        page = self.page
        if page is not None:
            number = len(self.starts)
            text.append(f"page {number}", style="bold")
            text.append(f" · {len(page.rows):,} award(s) in {page.award_table.display}")
            if page.next_before is not None:
                text.append(" · n older", style="dim")
            if number > 1:
                text.append(" · p newer", style="dim")
            if self.user or self.badge:
                text.append(f" · search: {' '.join(filter(None, (self.user, self.badge)))}",
                            style="cyan")
        if note:
            text.append(f"  {note}", style="yellow")
        self.query_one("#aw-status", Static).update(text)

    # ---- actions --------------------------------------------------------------------
    def reload(self) -> None:
        self.starts = [None]
        self.fetch(None)

    def action_reload(self) -> None:
        self.reload()

    def action_next_page(self) -> None:
        if self.page is not None and self.page.next_before is not None:
            self.starts.append(self.page.next_before)
            self.fetch(self.page.next_before)

    def action_previous_page(self) -> None:
        if len(self.starts) > 1:
            self.starts.pop()
            self.fetch(self.starts[-1])

    def action_focus_search(self) -> None:
        self.query_one("#aw-user", Input).focus()

    def action_leave_search(self) -> None:
        self.query_one("#aw-grid", DataTable).focus()

    @on(Input.Submitted, "#aw-user, #aw-badge")
    def _search(self) -> None:
        self.user = self.query_one("#aw-user", Input).value.strip()
        self.badge = self.query_one("#aw-badge", Input).value.strip()
        self.reload()
        self.query_one("#aw-grid", DataTable).focus()

    def _loaded_file(self) -> BadgeFile | None:
        """The working copy of badge.json, or None (and says so) while it is unusable."""
        bf = console_app(self).state.badge_file
        if bf is None:
            self.app.notify("badge.json is unusable; fix it first (Badges view).",
                            severity="error")
        return bf

    def _writable(self) -> bool:
        state = console_app(self).state
        if state.read_only:
            self.app.notify("Refused under --read-only: this would change the awards.",
                            severity="error")
            return False
        if state.standby:
            self.app.notify(str(StandbyRefused("changing awards", state.database)),
                            severity="error")
            return False
        return True

    def _selected(self):
        grid = self.query_one("#aw-grid", DataTable)
        if self.page is None or not self.page.rows or grid.cursor_row is None:
            return None
        return self.page.rows[min(grid.cursor_row, len(self.page.rows) - 1)]

    def action_grant(self) -> None:
        if not self._writable():
            return
        row = self._selected()

        def asked(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            code, user = answer
            self.app.push_screen(ConfirmScreen(
                f"Grant badge {code} to user {user}? It is recorded and notified as a grant.",
                [("grant", "Grant", "success"), ("cancel", "Cancel", "primary")]),
                lambda ok: self.change(code, user, True) if ok == "grant" else None)

        self.app.push_screen(GrantForm(row.code if row else "", self.user), asked)

    def action_revoke(self) -> None:
        if not self._writable():
            return
        row = self._selected()
        if row is None:
            self.app.notify("Pick an award in the grid first.", severity="warning")
            return
        self.app.push_screen(ConfirmScreen(
            f"Revoke {row.name} ({row.code}) from user {row.user_id}? It is recorded and "
            "notified as a revocation.",
            [("revoke", "Revoke", "error"), ("cancel", "Cancel", "primary")]),
            lambda ok: self.change(row.code, str(row.user_id), False) if ok == "revoke" else None)

    def action_unqualified(self) -> None:
        bf = None if self.running else self._loaded_file()
        if bf is None:
            return
        self._status("Checking who no longer qualifies…")
        self.preview(bf)

    def system_commands(self):
        """Commands the app puts in its command palette."""
        yield SystemCommand("Awards: grant", "Grant a badge to a user by hand (key g)",
                            self._palette(self.action_grant))
        yield SystemCommand("Awards: revoke", "Revoke the award picked in the grid (key r)",
                            self._palette(self.action_revoke))
        yield SystemCommand("Awards: revoke unqualified", "Preview, then revoke the holders "
                            "who no longer satisfy the condition (key u)",
                            self._palette(self.action_unqualified))

    def _palette(self, action):
        def run() -> None:
            console_app(self).action_show_view("awards")
            action()
        return run
