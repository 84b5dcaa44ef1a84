"""The Install view's database side: thread workers that call `core` and post messages.

Each worker (group "install", exclusive) touches no widget: it turns what `core` did,
or why it failed, into one of the messages below, and `InstallView` (a subclass) shows
it. Everything uses badge.json as saved on disk, never the Badges view's draft.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from textual import work
from textual.containers import Vertical
from textual.message import Message
from textual.worker import get_current_worker

from ...core.backfill import Backfill, BackfillProgress, preview_backfill, run_backfill
from ...core.connection import first_line, redact
from ...core.definitions import BadgeFile, load_badge_file
from ...core.errors import BadgeConsoleError, DefinitionError
from ...core.install import Plan, install, plan_install, uninstall, uninstall_statements
from ...core.plan_status import PlanAction
from ..db import ConnectionLost, QueryCancelled
from ..messages import ConnectionDropped
from ..state import console_app
from ..widgets.install_plan import invalid_reason

CONN = "install"  # this view's connection in app.db


class InstallWorkers(Vertical):
    @dataclass
    class PlanReady(Message):
        plan: Plan | None
        bf: BadgeFile | None
        error: str = ""  # why there is no plan

    @dataclass
    class UninstallReady(Message):
        statements: list[str]

    @dataclass
    class Finished(Message):
        """An install, uninstall, preview or backfill ended (text says how)."""

        text: str
        ok: bool

    @dataclass
    class PreviewReady(Message):
        preview: Backfill
        bf: BadgeFile
        then_run: bool

    @dataclass
    class BackfillStep(Message):
        progress: BackfillProgress

    @dataclass
    class BackfillDone(Message):
        result: Backfill
        preview: Backfill

    @property
    def badges_path(self):
        return console_app(self).state.badges_path

    @property
    def database(self) -> str:
        return console_app(self).state.database

    def _db(self):
        return console_app(self).db

    def _error_text(self, exc: Exception) -> str:
        if isinstance(exc, ConnectionLost):
            self.post_message(ConnectionDropped(str(exc)))
        if isinstance(exc, DefinitionError):
            return invalid_reason(exc)
        if isinstance(exc, (BadgeConsoleError, ConnectionLost, QueryCancelled)):
            return str(exc)
        return f"Error: {redact(first_line(exc), self._db().dsn) or type(exc).__name__}."

    def _saved_file(self) -> BadgeFile:
        return load_badge_file(self.badges_path)

    @work(thread=True, exclusive=True, exit_on_error=False, group="install")
    def load_plan(self) -> None:
        try:
            bf = self._saved_file()
        except DefinitionError as exc:
            self.post_message(self.PlanReady(None, None, invalid_reason(exc)))
            return
        try:
            plan = self._db().run(CONN, lambda conn: plan_install(conn, bf))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self.post_message(self.PlanReady(None, bf, self._error_text(exc)))
            return
        self.post_message(self.PlanReady(plan, bf))

    @work(thread=True, exclusive=True, exit_on_error=False, group="install")
    def run_install(self, bf: BadgeFile, shown_sql: str) -> None:
        if bf.changed_on_disk():
            self.post_message(self.Finished(
                f"{bf.path} changed on disk since this plan was shown; nothing was installed. "
                "The plan is refreshed: review it and install again.", False))
            return
        try:
            done = self._db().run(CONN, lambda conn: install(conn, bf))
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.Finished(f"Install failed, nothing was changed: "
                                            f"{self._error_text(exc)}", False))
            return
        n, database = done.counts(), self.database
        text = (f"Installed on {database}: {n[PlanAction.CREATE]} created, "
                f"{n[PlanAction.REPLACE]} replaced, {n[PlanAction.DROP]} dropped, in one "
                "transaction.")
        if done.sql_text() != shown_sql:
            text += (" The database changed after the plan was shown, so the plan recomputed "
                     "under the install lock ran instead.")
        self.post_message(self.Finished(text, True))

    @work(thread=True, exclusive=True, exit_on_error=False, group="install")
    def load_uninstall(self) -> None:
        try:
            statements = self._db().run(CONN, uninstall_statements)
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.Finished(self._error_text(exc), False))
            return
        self.post_message(self.UninstallReady(statements))

    @work(thread=True, exclusive=True, exit_on_error=False, group="install")
    def run_uninstall(self) -> None:
        try:
            dropped = self._db().run(CONN, uninstall)
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.Finished(f"Uninstall failed: {self._error_text(exc)}",
                                            False))
            return
        self.post_message(self.Finished(
            f"Uninstalled from {self.database}: {dropped} trigger(s) and schema "
            "badge_console removed; awards and application data kept.", True))

    @work(thread=True, exclusive=True, exit_on_error=False, group="install")
    def run_preview(self, then_run: bool) -> None:
        try:
            bf = self._saved_file()
            preview = self._db().run(CONN, lambda conn: preview_backfill(conn, bf))
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.Finished(f"Backfill preview failed: "
                                            f"{self._error_text(exc)}", False))
            return
        self.post_message(self.PreviewReady(preview, bf, then_run))

    @work(thread=True, exclusive=True, exit_on_error=False, group="install")
    def run_backfill(self, bf: BadgeFile, preview: Backfill, cancel: threading.Event) -> None:
        worker = get_current_worker()

        def stop() -> bool:
            return cancel.is_set() or worker.is_cancelled

        def progress(p: BackfillProgress) -> None:
            self.post_message(self.BackfillStep(p))

        if bf.changed_on_disk():
            self.post_message(self.Finished(
                f"{bf.path} changed on disk since the preview; nothing was backfilled. "
                "Preview again (v) and run it then.", False))
            return
        try:
            result = self._db().run(CONN, lambda conn: run_backfill(
                conn, bf, progress=progress, cancel=stop))
        except Exception as exc:  # noqa: BLE001
            self.post_message(self.Finished(self._error_text(exc), False))
            return
        self.post_message(self.BackfillDone(result, preview))
