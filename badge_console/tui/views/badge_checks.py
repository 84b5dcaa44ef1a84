"""What the Badges view's validation found, and the status it gives each badge.

`check_badges` runs in the view's worker: the file's checks and, when the database
answers, the install plan's statuses, pause state and run-time errors (a plan computed
on a copy of the working file). `Checked.status` decides the word the list shows for
one badge, `badge_notes` and `file_notes` word the rest of the detail pane; the view
colours the status words (its STATUS_STYLE).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text

from ...core.condition import TIME_BASED_NOTE, is_time_based
from ...core.definitions import Badge, BadgeFile, check_definitions
from ...core.errors import Problem
from ...core.install import plan_install
from ...core.plan_status import PlanStatus
from ..db import ConnectionLost

if TYPE_CHECKING:
    from ..db import Database


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

    def problems_at(self, index: int | None) -> list[Problem]:
        """The problems of the badge at `index` (None: those of the whole file)."""
        return [p for p in self.problems if p.index == index]

    def status(self, index: int, badge: Badge) -> tuple[str, str]:
        """(status word, first problem text) of the badge at `index`, for the list."""
        if badge.code in self.broken:
            return "broken", self.broken[badge.code]
        problems = self.problems_at(index)
        if problems:
            first = problems[0]
            return "invalid", (f"{first.key}: " if first.key else "") + first.message
        if not badge.is_enabled:
            return "disabled", "kept in the file, not installed"
        status = self.statuses.get(badge.code, "valid")
        return ("valid" if status == PlanStatus.INVALID else status), ""


def check_badges(db: Database, bf: BadgeFile) -> Checked:
    """Runs in a worker: file + database checks and plan statuses; falls back to file only."""
    def against_database(conn):
        plan = plan_install(conn, bf)  # file and database problems, statuses, errors
        statuses = {i.code: i.status for i in plan.items if i.status != "orphaned"}
        orphans = [(i.code, i.name) for i in plan.items if i.status == PlanStatus.ORPHANED]
        return Checked(plan.problems, statuses, orphans, paused={
            i.code for i in plan.items if i.paused}, errors={
            i.code: i.errors for i in plan.items if i.errors}, broken={
            i.code: i.detail for i in plan.items if i.status == PlanStatus.BROKEN}, auto_paused={
            i.code: i.auto_paused for i in plan.items if i.auto_paused})

    try:
        return db.run("badges", against_database)
    except ConnectionLost as exc:
        return Checked(check_definitions(bf), database_note="File checks only: the database "
                       "is not reachable.", lost=str(exc))


def badge_notes(checked: Checked | None, badge: Badge, problem: str) -> Text:
    """The detail pane's words after a badge's status: its first problem, pause state,
    timing and the run-time errors its trigger recorded."""
    text = Text()
    if problem:
        text.append(f": {problem}", style="red")
    auto = checked.auto_paused.get(badge.code) if checked else None
    if auto:
        text.append(f"\nauto-paused at {auto['at'][:19]} after too many failing "
                    f"statements (last: {auto['message']}); fix it, then resume (k)",
                    style="bold red")
    elif checked and badge.code in checked.paused:
        text.append("\npaused: the trigger awards nothing until resumed (k)", style="bold red")
    if is_time_based(badge):
        text.append(f"\n{TIME_BASED_NOTE} (install --schedule)", style="cyan")
    for e in (checked.errors.get(badge.code, []) if checked else []):
        text.append(f"\nskipped {e['count']} statement(s) on a run-time error "
                    f"(SQLSTATE {e['sqlstate']}, last {e['last_at'][:19]}): "
                    f"{e['message']}", style="yellow")
    return text


def file_notes(checked: Checked | None) -> Text:
    """The detail pane's last lines: problems of the whole file, and a database note."""
    text = Text()
    for problem in (checked.problems_at(None) if checked else []):
        text.append(f"\n{problem}", style="red")
    if checked and checked.database_note:
        text.append(f"\n{checked.database_note}", style="yellow")
    return text
