"""Dry run view: test a badge (saved, or the Badges editor's unsaved draft) on sample rows.

The form picks the badge, the operation, the mode (evaluate read-only, or fire the real
generated trigger), and the sample: a WHERE filter with a limit, or rows typed by hand as
JSON, plus the changes for update badges. `core.dryrun.dry_run` does the work in a thread
worker (group "dryrun") on the view's own connection and posts one message; the handlers
here are the only code that touches widgets. Everything the engine does is rolled back.

Cancel cancels the worker and keeps cancelling the running statement until the engine
returns (it evaluates row by row, so one cancelled statement alone would not stop it);
the connection is then dropped so the next run starts on a clean one. The form's choices,
the Request and the view's words for the engine's errors are in dryrun_form.py.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from ...core.definitions import Badge, BadgeFile, load_badge_file
from ...core.dryrun import DEFAULT_LOCK_TIMEOUT, DryRunResult, dry_run
from ...core.sample_rows import (DEFAULT_LIMIT, MAX_LIMIT, Sample, parse_json_changes,
                                 parse_json_rows)
from ...core.errors import BadgeConsoleError, StandbyRefused
from ..db import ConnectionLost, QueryCancelled
from ..messages import ConnectionDropped
from ..state import console_app
from ..widgets.dryrun_results import DryRunResults
from .dryrun_form import (DRAFT, DRAFT_LABEL, MODES, OPS, PLACEHOLDER, SAMPLES, Request,
                          columns_read, rows_placeholder, sentence)

CONNECTION = "dryrun"
SHORT = 30  # view rows below which the form drops its spacing (views.tcss: -short)
CANCEL_EVERY = 0.25  # seconds between cancel requests while the engine still runs
CANCEL_FOR = 15.0  # give up re-cancelling after this long (the timeouts act anyway)


class DryRunView(Vertical):
    BINDINGS = [
        # ^g ("go") runs; ^r is the Badges view's Validate and F2-F7 switch views, so
        # neither gets a second meaning here
        Binding("ctrl+g", "run", "Run", priority=True),
        Binding("escape", "cancel", "Cancel run / leave a field"),
        Binding("ctrl+t", "toggle_explain", "EXPLAIN", priority=True),
        Binding("m", "toggle_mode", "Eval/fire", show=False),
    ]
    HELP = (("Enter", "in a text field: run"),
            ("Tab", "next field; ↓ or Enter opens a choice list"))

    @dataclass
    class Finished(Message):
        result: DryRunResult
        label: str
        first_columns: list[str]  # the columns the condition reads, shown first

    @dataclass
    class Failed(Message):
        message: str
        cancelled: bool = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.running: Request | None = None
        self.started = 0.0
        self._done = threading.Event()
        self._done.set()
        self._filled = False
        self._explain_after = False  # ^t before any run: run, then show the EXPLAIN

    def compose(self) -> ComposeResult:
        with Horizontal(classes="dr-row"):
            yield Label("Badge", classes="dr-label")
            yield Select([(DRAFT_LABEL, DRAFT)], id="dr-badge", allow_blank=False,
                         compact=True)
            yield Label("Op", classes="dr-label-short")
            yield Select(OPS, id="dr-op", value="auto", allow_blank=False, compact=True)
            yield Label("Mode", classes="dr-label-short")
            yield Select(MODES, id="dr-mode", value="eval", allow_blank=False, compact=True)
        with Horizontal(classes="dr-row"):
            yield Label("Sample", classes="dr-label")
            yield Select(SAMPLES, id="dr-sample-kind", value="where", allow_blank=False,
                         compact=True)
            yield Input(id="dr-sample", placeholder=PLACEHOLDER["where"], compact=True)
            yield Label("Limit", classes="dr-label-short")
            yield Input(str(DEFAULT_LIMIT), id="dr-limit", type="integer", compact=True)
        with Horizontal(classes="dr-row"):
            yield Label("SET", classes="dr-label")
            yield Input(id="dr-set", compact=True, placeholder='update badges only: the '
                        'changes as JSON, e.g. {"hit_views": 1500}; empty: none')
            yield Button("Run ^g", id="dr-run", variant="primary", compact=True)
            yield Button("EXPLAIN ^t", id="dr-explain-button", compact=True)
        yield Static("", id="dr-notice")
        yield Static("", id="dr-error")
        with Horizontal(id="dr-progress-row"):
            yield ProgressBar(total=None, show_eta=False, show_percentage=False,
                              id="dr-progress")
            yield Static("", id="dr-status")
        yield DryRunResults(id="dr-results")

    def on_mount(self) -> None:
        self.refresh_badges()
        self._show_notice()
        self.query_one("#dr-progress-row").display = False
        self._error("")
        self.set_interval(0.2, self._tick)

    def on_show(self) -> None:
        self.refresh_badges()

    def file_changed(self) -> None:
        """badge.json reloaded, saved or edited: the badge choices follow."""
        self.refresh_badges()

    def on_resize(self) -> None:
        self.set_class(self.size.height < SHORT, "-short")  # 80x24: a tighter form

    # ---- the form -----------------------------------------------------------------
    @property
    def read_only(self) -> bool:
        return console_app(self).state.read_only

    def refresh_badges(self) -> None:
        """Badge choices: the file's codes, then the editor's draft."""
        select = self.query_one("#dr-badge", Select)
        bf = console_app(self).state.badge_file
        codes = [str(b.code) for b in (bf.badges if bf else []) if isinstance(b.code, str)
                 and b.code]
        options = [(code, code) for code in dict.fromkeys(codes)]
        options.append((DRAFT_LABEL, DRAFT))
        current = select.value if self._filled else None  # first fill: the first badge
        self._filled = True
        with self.prevent(Select.Changed):
            select.set_options(options)
            values = [v for _, v in options]
            select.value = current if current in values else values[0]

    def _show_notice(self) -> None:
        notice = self.query_one("#dr-notice", Static)
        if self.query_one("#dr-mode", Select).value != "fire":
            notice.update(Text("Evaluate mode: a READ ONLY transaction, rolled back; "
                               "nothing is locked or written.", style="dim"))
        elif self.read_only:
            notice.update(Text("Fire mode is refused: the console runs with --read-only. "
                               "Evaluate mode works.", style="bold red"))
        else:
            notice.update(Text(f"⚠ Fire mode takes a brief SHARE ROW EXCLUSIVE lock on the "
                               f"badge's table (writers wait; gives up after "
                               f"{DEFAULT_LOCK_TIMEOUT}), installs the trigger, writes the "
                               "sample rows and rolls it all back.", style="yellow"))

    @on(Select.Changed, "#dr-mode")
    def _mode_changed(self) -> None:
        self._show_notice()

    @on(Select.Changed, "#dr-sample-kind")
    @on(Select.Changed, "#dr-badge")
    def _sample_kind_changed(self) -> None:
        kind = str(self.query_one("#dr-sample-kind", Select).value)
        placeholder = PLACEHOLDER.get(kind, "")
        if kind == "rows":
            badge = self._picked()
            placeholder = rows_placeholder(badge, self._columns(badge))
        self.query_one("#dr-sample", Input).placeholder = placeholder
        self.query_one("#dr-limit", Input).disabled = kind == "rows"

    def _picked(self) -> Badge | None:
        """The badge the form names (the file's, or the editor's draft)."""
        choice = str(self.query_one("#dr-badge", Select).value)
        if choice == DRAFT:
            return self._draft()
        bf = console_app(self).state.badge_file
        return next((b for b in (bf.badges if bf else []) if b.code == choice), None)

    def _columns(self, badge: Badge | None) -> list[tuple[str, str]]:
        """(name, type) of the badge's table, from the catalog the Badges view loaded."""
        from .badges import BadgesView

        views = self.app.query(BadgesView)
        if badge is None or not views or not isinstance(badge.trigger_table, str):
            return []
        return views.first().editor.choices.get(badge.trigger_table, [])

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_run()

    @on(Button.Pressed, "#dr-run")
    def _run_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_run()

    @on(Button.Pressed, "#dr-explain-button")
    def _explain_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_toggle_explain()

    def _error(self, message: str) -> None:
        error = self.query_one("#dr-error", Static)
        error.update(Text(message, style="bold red") if message else "")
        error.display = bool(message)

    def _draft(self) -> Badge | None:
        from .badges import BadgesView

        views = self.app.query(BadgesView)
        return views.first().current_draft() if views else None

    def _request(self) -> Request | str:
        """What to run, from the form; or why it cannot run (one sentence)."""
        mode = str(self.query_one("#dr-mode", Select).value)
        if mode == "fire" and self.read_only:
            return ("Fire mode is refused under --read-only: it creates the trigger and "
                    "writes the sample rows (rolled back). Use evaluate mode.")
        if mode == "fire" and console_app(self).state.standby:
            database = console_app(self).state.database
            return str(StandbyRefused("a fire-mode dry run", database))
        bf = console_app(self).state.badge_file
        choice = str(self.query_one("#dr-badge", Select).value)
        draft = None
        if choice == DRAFT:
            draft = self._draft()
            if draft is None:
                return "No badge is open in the Badges view's editor: pick one there (key 2)."
            label = f"{draft.code} (draft)"
        else:
            label = f"{choice} (saved)"
        kind = str(self.query_one("#dr-sample-kind", Select).value)
        text = self.query_one("#dr-sample", Input).value.strip()
        changes_text = self.query_one("#dr-set", Input).value.strip()
        try:
            rows = parse_json_rows(text) if kind == "rows" else None
            changes = parse_json_changes(changes_text) if changes_text else None
        except BadgeConsoleError as exc:
            return sentence(exc)
        if kind == "rows" and not text:
            return "Type the sample rows as JSON, or pick the WHERE filter."
        limit_text = self.query_one("#dr-limit", Input).value.strip() or str(DEFAULT_LIMIT)
        limit = int(limit_text) if limit_text.lstrip("-").isdigit() else 0
        if not 1 <= limit <= MAX_LIMIT:
            return f"The limit must be between 1 and {MAX_LIMIT} rows."
        op = str(self.query_one("#dr-op", Select).value)
        sample = Sample(where=text if kind == "where" and text else None, limit=limit,
                        rows=rows, changes=changes)
        path = bf.path if bf and bf.path else console_app(self).state.badges_path
        return Request(label, None if draft else choice, draft,
                       copy.deepcopy(bf) if (draft and bf) else None, path, sample, mode,
                       None if op == "auto" else op)

    # ---- actions ------------------------------------------------------------------
    def action_run(self) -> None:
        if self.running is not None:
            self._error("A dry run is already running; Esc cancels it.")
            return
        request = self._request()
        if isinstance(request, str):
            self._error(request)  # once, under the form (the notice says read-only too)
            self._explain_after = False
            return
        self._error("")
        self.query_one(DryRunResults).clear()
        self.running = request
        self.started = time.monotonic()
        self._done.clear()
        self.query_one("#dr-progress-row").display = True
        self._tick()
        self._run(request)

    def _tick(self) -> None:
        if self.running is None:
            return
        what = "Firing" if self.running.mode == "fire" else "Evaluating"
        sample = self.running.sample
        rows = len(sample.rows) if sample.rows is not None else sample.limit
        self.query_one("#dr-status", Static).update(Text(
            f" {what} {self.running.label} on up to {rows} row(s)… "
            f"{time.monotonic() - self.started:.1f}s  (Esc cancels; all is rolled back)",
            style="italic"))

    def action_cancel(self) -> None:
        if self.running is None:
            self.focus_home()
            return
        for worker in self.app.workers:
            if worker.node is self and worker.group == "dryrun":
                worker.cancel()
        self.query_one("#dr-status", Static).update(Text(" Cancelling…", style="italic"))
        self._cancel_statements()

    def action_toggle_explain(self) -> None:
        results = self.query_one(DryRunResults)
        if results.result is None:  # the plan comes with a run: run now, then show it
            self._explain_after = True
            if self.running is None:
                self.action_run()
            return
        results.toggle_explain()

    def focus_home(self) -> None:
        self.query_one("#dr-grid", DataTable).focus()

    def action_toggle_mode(self) -> None:
        select = self.query_one("#dr-mode", Select)
        select.value = "eval" if select.value == "fire" else "fire"

    # ---- workers ------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="dryrun")
    def _run(self, request: Request) -> None:
        worker = get_current_worker()
        db = console_app(self).db
        message: Message
        try:
            if request.draft is not None:
                bf, badge = request.bf or BadgeFile(badges=[request.draft]), request.draft
            else:
                bf, badge = load_badge_file(request.path), request.code  # the saved file
            result = db.run(CONNECTION, lambda conn: dry_run(
                conn, bf, badge, request.sample, mode=request.mode, op=request.op,
                explain=True))
            picked = badge if isinstance(badge, Badge) else next(
                (b for b in bf.badges if b.code == badge), None)
            read = picked and (picked.condition or picked.value)  # a series: its value
            message = self.Finished(result, request.label, columns_read(read))
        except ConnectionLost as exc:
            self.post_message(ConnectionDropped(str(exc)))
            message = self.Failed(f"{exc} The run was not finished; nothing was changed.")
        except QueryCancelled as exc:
            message = self.Failed(f"{exc} Everything was rolled back.", cancelled=True)
        except BadgeConsoleError as exc:
            message = self.Failed(sentence(exc))
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line
            message = self.Failed(f"Error: {sentence(exc)}")
        finally:
            self._done.set()
        if worker.is_cancelled:
            db.discard(CONNECTION)  # a statement may have been cancelled mid-way
            message = self.Failed("Cancelled; everything was rolled back.", cancelled=True)
        self.post_message(message)

    @work(thread=True, group="dryrun-cancel")
    def _cancel_statements(self) -> None:
        db, deadline = console_app(self).db, time.monotonic() + CANCEL_FOR
        while not self._done.is_set() and time.monotonic() < deadline:
            db.cancel(CONNECTION)
            self._done.wait(CANCEL_EVERY)

    # ---- results ------------------------------------------------------------------
    def _stopped(self) -> None:
        self.running = None
        self.query_one("#dr-progress-row").display = False

    def on_dry_run_view_finished(self, message: Finished) -> None:
        self._stopped()
        results = self.query_one(DryRunResults)
        results.show(message.result, message.label, message.first_columns)
        if self._explain_after and not results.has_class("-explain"):
            results.toggle_explain()
        self._explain_after = False
        self.query_one("#dr-grid", DataTable).focus()

    def on_dry_run_view_failed(self, message: Failed) -> None:
        self._stopped()
        self._explain_after = False
        self._error(message.message)

    def system_commands(self):
        """Commands the app puts in its command palette (each shows this view first)."""
        for name, help_text, action in (
                ("run", "Run with the form's badge, sample and mode (key ctrl+g)",
                 self.action_run),
                ("cancel", "Stop the running dry run; all is rolled back (key Esc)",
                 self.action_cancel),
                ("show or hide EXPLAIN", "The plan of the trigger's query for one sample row "
                 "(key ctrl+t)", self.action_toggle_explain),
                ("evaluate or fire", "Switch the mode (key m outside text fields)",
                 self.action_toggle_mode)):
            yield SystemCommand(f"Dry run: {name}", help_text,
                                lambda act=action: self._from_palette(act))

    def _from_palette(self, action) -> None:
        console_app(self).action_show_view("dryrun")
        action()
