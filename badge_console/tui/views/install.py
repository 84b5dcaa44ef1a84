"""Install view: the plan per badge, the exact SQL, install, uninstall and backfill.

Everything here uses badge.json as saved on disk, never the Badges view's unsaved
draft: what is installed must be what the file says, so a colleague reading the file
sees what runs. Unsaved edits are pointed out at the top. Install uses the very
`BadgeFile` the shown plan was computed from and refuses when the file changed since.

Database work runs in the thread workers of the base class (install_workers.py) that
only post messages; one job at a time (`busy`), so a running backfill is never cut
short by a refresh. No SQL is built here: the plan, install, uninstall and backfill
come from `core`.
"""

from __future__ import annotations

import threading

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static, TabbedContent, TextArea

from ...core.definitions import BadgeFile
from ...core.errors import StandbyRefused
from ...core.install import Plan
from ...core.plan_status import PlanAction, Word
from ..messages import DatabaseChanged
from ..state import console_app
from ..widgets.confirm import ConfirmScreen
from ..widgets.install_backfill import BackfillPanel
from ..widgets.install_plan import PlanTable, describe_item, install_notice, plan_summary
from .install_workers import InstallWorkers


class Job(Word):
    """What the view is doing; one job at a time. The words finish "Busy …"."""

    IDLE = ""
    PLANNING = "computing the plan"
    CONFIRMING = "confirming"
    INSTALLING = "installing"
    UNINSTALLING = "preparing uninstall"  # from reading what is installed to the result
    PREVIEWING = "previewing the backfill"
    BACKFILLING = "running the backfill"


class InstallView(InstallWorkers):
    BINDINGS = [
        Binding("i", "install", "Install"),
        Binding("u", "uninstall", "Uninstall"),
        Binding("v", "preview_backfill", "Preview backfill"),
        Binding("b", "backfill", "Backfill"),
        # in the help (?) and the line above the footer: the footer fits 80 columns
        Binding("y", "copy_sql", "Copy SQL", show=False),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("escape", "cancel", "Cancel backfill", show=False),
    ]
    HELP = (("i u b", "each shows what it will do and asks before changing the database"),)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.plan: Plan | None = None
        self.bf: BadgeFile | None = None  # the saved file the plan was computed from
        self.load_error = ""
        self.busy: Job = Job.IDLE
        self.pending = ""  # an action asked for from the palette, run once the plan is in
        self.cancel_event = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static("", id="install-notice")
        with Horizontal(id="install-main"):
            with Vertical(id="plan-pane"):
                yield Static("", id="plan-summary")
                yield PlanTable(id="plan-table")
                yield Static("", id="plan-detail")
            with Vertical(id="sql-pane"):
                yield Static("", id="sql-title")
                yield TextArea(id="plan-sql", language="sql", read_only=True,
                               show_line_numbers=True, soft_wrap=False)
        yield BackfillPanel(id="backfill-pane")

    def on_mount(self) -> None:
        self._notice()
        self.panel.idle(Text("i install · u uninstall · v preview backfill · b backfill · "
                             "y copy SQL · r refresh · ? help", style="dim"))
        tabs = self.app.query(TabbedContent)
        if tabs:  # mounted lazily: the tab may already be showing, then plan at once
            self.watch(tabs.first(), "active", self._tab_changed, init=True)

    def _tab_changed(self, active: str) -> None:
        if self.id and self.id.removesuffix("-view") == active and self.busy is Job.IDLE:
            self.refresh_plan()

    @property
    def panel(self) -> BackfillPanel:
        return self.query_one(BackfillPanel)

    # ---- showing results -------------------------------------------------------------
    def refresh_plan(self) -> None:
        self.busy = Job.PLANNING
        self.query_one("#sql-title", Static).update(Text("Computing the plan…", "italic"))
        self.load_plan()

    def _notice(self) -> None:
        notice = install_notice(self.badges_path, console_app(self).state.read_only,
                                console_app(self).state.dirty, self.load_error,
                                self.plan.problems if self.plan else [])
        widget = self.query_one("#install-notice", Static)
        widget.update(notice)
        widget.display = bool(notice)

    def _show_sql(self, text: str, title: Text) -> None:
        area = self.query_one("#plan-sql", TextArea)
        area.load_text(text)
        area.scroll_home(animate=False)
        self.query_one("#sql-title", Static).update(title)

    def _show_plan_sql(self) -> None:
        plan = self.plan
        if plan is None:
            self._show_sql("", Text("No plan: see above.", style="dim"))
            return
        title = Text("SQL install will run ", style="bold")
        if plan.changes:
            title.append(f"· {len(plan.changes)} change(s), one transaction", style="dim")
        else:
            title.append("· nothing to change, setup only", style="dim")
        title.append(" · y copies", style="dim")
        self._show_sql(plan.sql_text(), title)

    def on_install_workers_plan_ready(self, message: InstallWorkers.PlanReady) -> None:
        self.busy = Job.IDLE
        self.plan, self.bf, self.load_error = message.plan, message.bf, message.error
        self.query_one(PlanTable).show(self.plan)
        self.query_one("#plan-summary", Static).update(
            plan_summary(self.plan) if self.plan else Text("No plan.", style="dim"))
        self._notice()
        self._show_plan_sql()
        self._show_detail()
        action, self.pending = self.pending, ""
        if action:
            getattr(self, f"action_{action}")()

    @on(DataTable.RowHighlighted, "#plan-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()
        item = self.query_one(PlanTable).item_at_cursor(self.plan)
        area = self.query_one("#plan-sql", TextArea)
        if item is None or not item.statements or area.text != (self.plan.sql_text()
                                                                 if self.plan else ""):
            return
        at = area.text.find(item.statements[0])
        if at >= 0:
            line = area.text.count("\n", 0, at)
            area.scroll_to(y=line, animate=False)

    def _show_detail(self) -> None:
        item = self.query_one(PlanTable).item_at_cursor(self.plan)
        self.query_one("#plan-detail", Static).update(describe_item(item) if item else "")

    def on_install_workers_finished(self, message: InstallWorkers.Finished) -> None:
        self.busy = Job.IDLE
        style = "green" if message.ok else "bold red"
        if message.ok:  # installed or uninstalled: an earlier backfill table is history
            self.panel.reset()
            self.post_message(DatabaseChanged(self))
        self.panel.idle(Text(message.text, style=style))
        if message.ok:
            self.app.notify(message.text)
        else:
            self.app.notify(message.text, severity="error")
        self.refresh_plan()

    def on_install_workers_uninstall_ready(self, message: InstallWorkers.UninstallReady) -> None:
        statements = message.statements
        if not statements:
            self.busy = Job.IDLE
            self.panel.idle(Text("Nothing to uninstall: no badge-console trigger or schema "
                                 "in this database.", style="yellow"))
            return
        triggers = sum(1 for s in statements if s.startswith("DROP TRIGGER"))
        self._show_sql(";\n\n".join(statements) + ";\n", Text.assemble(
            ("SQL uninstall will run ", "bold"), ("(one transaction)", "dim")))
        question = (f"Uninstall from {self.database}: drop {triggers} trigger(s) and "
                    "schema badge_console (the SQL is shown behind this dialog)? Awards and "
                    "application data are kept.")
        self.app.push_screen(ConfirmScreen(question, [
            ("uninstall", "Uninstall", "error"), ("cancel", "Cancel", "primary")]),
            self._uninstall_answer)

    def _uninstall_answer(self, answer: str | None) -> None:
        if answer != "uninstall":
            self.busy = Job.IDLE
            self._show_plan_sql()
            self.panel.idle(Text("Uninstall cancelled; nothing was changed.", style="yellow"))
            return
        self.panel.busy("Uninstalling (one transaction)…")
        self.run_uninstall()

    def on_install_workers_preview_ready(self, message: InstallWorkers.PreviewReady) -> None:
        preview = message.preview
        self.panel.show(preview)
        if not message.then_run:
            self.busy = Job.IDLE
            self.panel.idle(Text(f"Preview: {preview.would_award} award(s) would be granted; "
                                 "nothing was written.", style="green"))
            return
        if not preview.would_award:
            self.busy = Job.IDLE
            self.panel.idle(Text("Nothing to backfill: nobody qualifies who does not already "
                                 "hold the badge.", style="yellow"))
            return
        badges = sum(1 for i in preview.items if i.would_award)
        question = (f"Backfill on {self.database}: award {preview.would_award} user(s) "
                    f"across {badges} badge(s), as previewed behind this dialog? Runs in "
                    "batches, each committed and notified like a trigger's award; Esc stops "
                    "after the current batch and a later run continues without awarding "
                    "anyone twice.")
        self.app.push_screen(ConfirmScreen(question, [
            ("run", "Run backfill", "warning"), ("cancel", "Cancel", "primary")]),
            lambda answer: self._backfill_answer(answer, message))

    def _backfill_answer(self, answer: str | None, message: InstallWorkers.PreviewReady) -> None:
        if answer != "run":
            self.busy = Job.IDLE
            self.panel.idle(Text("Backfill cancelled; nothing was written.", style="yellow"))
            return
        self.busy = Job.BACKFILLING
        self.cancel_event = threading.Event()
        self.panel.status(Text("Backfill starting…", style="italic"))
        self.run_backfill(message.bf, message.preview, self.cancel_event)

    def on_install_workers_backfill_step(self, message: InstallWorkers.BackfillStep) -> None:
        if self.busy is Job.BACKFILLING:
            self.panel.progress(message.progress)

    def on_install_workers_backfill_done(self, message: InstallWorkers.BackfillDone) -> None:
        self.busy = Job.IDLE
        result = message.result
        self.panel.show(result, message.preview)
        per = ", ".join(f"{i.code} {i.awarded}" for i in result.items if i.applicable)
        if result.cancelled:
            text = Text(f"Backfill cancelled after {result.awarded} award(s) ({per}); run it "
                        "again to continue, nobody is awarded twice.", style="yellow")
        else:
            text = Text(f"Backfill done on {self.database}: {result.awarded} award(s) "
                        f"granted ({per or 'none'}).", style="green")
        self.panel.idle(text)
        self.app.notify(str(text))
        if result.awarded:
            self.post_message(DatabaseChanged(self))

    # ---- actions --------------------------------------------------------------------
    def _refused(self, what: str) -> bool:
        """True (and says why) when `what` may not run now."""
        if console_app(self).state.read_only:
            text = f"Refused under --read-only: {what} would change the database."
        elif console_app(self).state.standby:
            text = str(StandbyRefused(what, self.database))
        elif self.busy is not Job.IDLE:
            text = f"Busy {self.busy}; wait for it" + (
                " or press Esc to cancel." if self.busy is Job.BACKFILLING else ".")
        else:
            return False
        self.panel.idle(Text(text, style="bold red"))
        self.app.notify(text, severity="error")
        return True

    def action_install(self) -> None:
        if self._refused("install"):
            return
        if self.load_error or self.plan is None or self.bf is None:
            text = ("Nothing was tried: " + (self.load_error or
                                             "no plan yet; press r to compute it."))
            self.panel.idle(Text(text, style="bold red"))
            return
        plan = self.plan
        if plan.problems:
            self.panel.idle(Text(f"Install refused: {self.badges_path} has {len(plan.problems)} "
                                 f"problem(s), first: {plan.problems[0]}. Fix them in the "
                                 "Badges view and save.", style="bold red"))
            return
        if not plan.changes:
            self.panel.idle(Text("Nothing to install: every badge is up to date.",
                                 style="green"))
            return
        n = plan.counts()
        question = (f"Install on {self.database} from {self.badges_path} as saved: "
                    f"{n[PlanAction.CREATE]} create, {n[PlanAction.REPLACE]} replace, "
                    f"{n[PlanAction.DROP]} drop, in one transaction (the SQL is shown behind "
                    "this dialog)?")
        if console_app(self).state.dirty:
            question += " Your unsaved edits in the Badges view are NOT included."
        bf, shown = self.bf, plan.sql_text()
        self.busy = Job.CONFIRMING

        def answer(choice: str | None) -> None:
            if choice != "install":
                self.busy = Job.IDLE
                self.panel.idle(Text("Install cancelled; nothing was changed.", style="yellow"))
                return
            self.busy = Job.INSTALLING
            self.panel.busy("Installing (one transaction)…")
            self.run_install(bf, shown)

        self.app.push_screen(ConfirmScreen(question, [
            ("install", "Install", "warning"), ("cancel", "Cancel", "primary")]), answer)

    def action_uninstall(self) -> None:
        if self._refused("uninstall"):
            return
        self.busy = Job.UNINSTALLING
        self.panel.busy("Reading what is installed…")
        self.load_uninstall()

    def action_preview_backfill(self) -> None:
        if self.busy is not Job.IDLE:
            self._refused("the backfill preview")
            return
        self.busy = Job.PREVIEWING
        self.panel.busy("Counting who would be awarded (read only)…")
        self.run_preview(False)

    def action_backfill(self) -> None:
        if self._refused("backfill"):
            return
        self.busy = Job.PREVIEWING
        self.panel.busy("Previewing first: counting who would be awarded (read only)…")
        self.run_preview(True)

    def action_cancel(self) -> None:
        if self.busy is Job.BACKFILLING:
            self.cancel_event.set()
            self.panel.status(Text("Cancelling after the current batch…", style="yellow"))
        else:
            self.focus_home()

    def focus_home(self) -> None:
        self.query_one(PlanTable).focus()

    def database_changed(self) -> None:
        """Paused or changed elsewhere: the plan again (not while a job runs)."""
        if self.busy is Job.IDLE:
            self.refresh_plan()

    def action_refresh(self) -> None:
        if self.busy is Job.IDLE:
            self.refresh_plan()

    def action_copy_sql(self) -> None:
        area = self.query_one("#plan-sql", TextArea)
        text = area.selected_text or area.text
        if not text:
            return
        self.app.copy_to_clipboard(text)
        what = "selected SQL" if area.selected_text else "the whole SQL"
        self.app.notify(f"Copied {what} ({text.count(chr(10)) + 1} lines) to the clipboard.")

    def system_commands(self):
        """Command palette entries; the app yields them from get_system_commands (like the
        Dry run and Live feed views)."""
        for title, help_text, action in (
                ("Install badges", "Install view: apply the plan (asks first)", "install"),
                ("Uninstall badges", "Install view: drop every badge trigger (asks first)",
                 "uninstall"),
                ("Preview backfill", "Install view: who would be awarded, writes nothing",
                 "preview_backfill"),
                ("Backfill awards", "Install view: preview, confirm, award in batches",
                 "backfill"),
                ("Copy install SQL", "Install view: copy the SQL to the clipboard", "copy_sql"),
                ("Refresh install plan", "Install view: recompute the plan", "refresh")):
            yield SystemCommand(title, help_text,
                                lambda a=action: self._from_palette(a))

    def _from_palette(self, action: str) -> None:
        """Show this view first; when that starts computing the plan, act once it is in."""
        console_app(self).action_show_view("install")
        if self.busy is Job.PLANNING:
            self.pending = action
        else:
            getattr(self, f"action_{action}")()
