"""The install plan as a table (one row per badge) and the text describing one row.

Pure presentation of a core `Plan`: no database, no actions. The view decides what to
do with a highlighted row (show its detail, scroll the SQL to its statements).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from ...core.errors import DefinitionError
from ...core.install import Plan, PlanItem
from ...core.plan_status import PlanAction, PlanStatus
from ...status_style import ACTION_STYLE, PLAN_STATUS_STYLE

SHOWN_PROBLEMS = 4


def error_count(item: PlanItem) -> int:
    return sum(int(e.get("count") or 0) for e in item.errors)


def describe_item(item: PlanItem) -> Text:
    """Name, what happens and why, and the run-time errors its trigger recorded."""
    text = Text()
    text.append(item.code, style="bold")
    if item.name and item.name != item.code:
        text.append(f"  {item.name}")
    text.append("\n")
    text.append(item.status, style=PLAN_STATUS_STYLE[item.status])
    text.append(" → ", style="dim")
    text.append(item.action, style=ACTION_STYLE[item.action])
    if item.detail:
        wrong = item.status in (PlanStatus.INVALID, PlanStatus.BROKEN)
        text.append(f": {item.detail}", style="red" if wrong else "")
    if item.auto_paused:
        text.append(f"\n⏸ auto-paused at {str(item.auto_paused['at'])[:19]}: "
                    f"{item.auto_paused['message']}; resume re-arms it", style="bold red")
    if item.statements:
        text.append(f"  ({len(item.statements)} statement(s))", style="dim")
    if item.time_based:
        text.append("\ntime-based: awarded by reconcile, run it on a schedule", style="cyan")
    for error in item.errors:
        when = str(error.get("last_at") or "")[:19].replace("T", " ")
        text.append(f"\n⚠ {error.get('count')}× skipped on a run-time error, SQLSTATE "
                    f"{error.get('sqlstate')}, last {when} UTC: ", style="yellow")
        text.append(str(error.get("message") or ""))
    return text


class PlanTable(DataTable):
    """One row per plan item: badge, status, action, run-time errors; keys are codes."""

    COLUMNS = ("badge", "status", "action", "errors")

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.show(None)

    def show(self, plan: Plan | None) -> None:
        """Columns get their widths from the rows before the first paint: DataTable
        measures auto widths on idle but keeps lines it painted before (Textual 8), so a
        paint in between left the columns at their labels' width ("pion…")."""
        row = self.cursor_row
        rows = [(Text(item.code, overflow="ellipsis"),
                 Text(item.status, style=PLAN_STATUS_STYLE[item.status]),
                 Text(item.action, style=ACTION_STYLE[item.action]),
                 Text(f"⚠ {n}", style="yellow") if (n := error_count(item)) else Text("-", "dim"),
                 item.code) for item in (plan.items if plan else [])]
        self.clear(columns=True)
        for index, label in enumerate(self.COLUMNS):
            width = max([len(label), *(r[index].cell_len for r in rows)])
            self.add_column(label, key=label, width=width)
        for *cells, key in rows:
            self.add_row(*cells, key=key)
        if self.row_count:
            self.move_cursor(row=min(max(row, 0), self.row_count - 1), animate=False)

    def item_at_cursor(self, plan: Plan | None) -> PlanItem | None:
        if plan is None or not self.row_count or not 0 <= self.cursor_row < len(plan.items):
            return None
        return plan.items[self.cursor_row]


def plan_summary(plan: Plan) -> Text:
    """One line: how many of each action, and where the awards go."""
    counts = plan.counts()
    text = Text()
    for action in PlanAction:
        if counts[action]:
            label = "invalid" if action is PlanAction.NONE else action
            text.append(f"{counts[action]} {label}  ", style=ACTION_STYLE[action])
    text.append(f"· award table {plan.award_table}, channel {plan.channel}", style="dim")
    text.append("\n")
    text.append_text(reconcile_summary(plan.reconcile))
    for warning in plan.warnings:  # a table whose badges make a write pay > ~1 ms
        text.append(f"\n⚠ {warning}", style="yellow")
    return text


def reconcile_summary(state: dict) -> Text:
    """Whether reconcile runs on a schedule, and when it last ran (from any client)."""
    text = Text("reconcile: ", style="dim")
    if state.get("schedule"):
        text.append(f"pg_cron '{state['schedule']}'", style="green")
    else:
        text.append("not scheduled", style="yellow")
        text.append(" (install --schedule)" if state.get("pg_cron") else
                    " (no pg_cron: install --schedule prints a crontab line)", style="dim")
    last = state.get("last_run")
    when = f"last ran {last['finished_at'][:19].replace('T', ' ')} UTC, " \
           f"{last['awarded']} award(s)" if last else "never ran"
    text.append(f" · {when}", style="dim")
    return text


def _listed(problems) -> tuple[list[str], int]:
    """The first few problems as text, and how many more there are."""
    lines = [str(p) for p in problems[:SHOWN_PROBLEMS]]
    return lines, len(problems) - len(lines)


def invalid_reason(exc: DefinitionError) -> str:
    lines, more = _listed(exc.problems)
    return (f"{exc.path} is invalid ({len(exc.problems)} problem(s)): " + "; ".join(lines)
            + (f"; and {more} more" if more > 0 else "") + ".")


def install_notice(path, read_only: bool, dirty: bool, load_error: str, problems) -> Text:
    """What the operator must know before installing: read-only, unsaved edits, why refused."""
    notice = Text()
    if read_only:
        notice.append("Read-only: plan and backfill preview only; install, uninstall and "
                      "backfill are refused.\n", style="yellow")
    if dirty:
        notice.append(f"The Badges view has unsaved edits. The plan below, install and "
                      f"backfill use {path} as saved on disk; save (Badges view, ctrl+s) to "
                      "include your edits.\n", style="yellow")
    if load_error:
        notice.append(f"No install possible yet: {load_error}\n", style="bold red")
    elif problems:
        lines, more = _listed(problems)
        notice.append(f"Install refused: {path} has {len(problems)} problem(s); fix them in "
                      "the Badges view and save.\n", style="bold red")
        notice.append("\n".join(f"  {line}" for line in lines)
                      + (f"\n  … and {more} more" if more > 0 else ""), style="red")
    notice.rstrip()  # in place (returns None)
    return notice
