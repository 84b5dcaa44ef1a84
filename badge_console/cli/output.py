"""What the operator sees and answers: rich consoles, --json documents, problem lists, the
plan table, progress bars, the yes/no question, and the one sentence (with its exit code)
that ends a failed command, worded with the CLI's options (the engine's errors carry the
facts). rich and psycopg are imported only when something is shown.
"""

from __future__ import annotations

import json
import sys

from ..core.errors import (BadgeConsoleError, DefinitionError, LockTimeout, StatementFailure,
                           UsageError, in_words)

PROG = "badge-console"
# The engine's error topics the CLI words with its options (core.errors.NEUTRAL has the rest)
WORDS = {
    "badge-file-missing": "{path} is invalid: file: file not found; pass --badges PATH or "
                          "create badge.json.",
    "rows-json": "--rows is not valid JSON: {reason} at line {line}, column {column}.",
    "changes-json": "--set is not valid JSON: {reason} at line {line}, column {column}.",
    "rows-shape": "--rows must be {shape}.",
    "changes-shape": "--set must be {shape}.",
    "rows-columns": "In row {row} of --rows, {columns} is not a column of {table}.",
    "changes-columns": "In --set, {columns} is not a column of {table}.",
    "rows-rejected": "PostgreSQL rejects row {row} of --rows: {failure}.",
    "changes-rejected": "PostgreSQL rejects the --set changes: {failure}.",
    "filter-rejected": "PostgreSQL rejects the --where filter: {failure}.",
    "changes-need-update": "Changes (--set) apply to update badges only.",
}


def failure_words(failure: StatementFailure) -> str:
    """A failed dry-run statement as the CLI says it: a busy table points at --lock-timeout."""
    return f"{failure}; retry or raise --lock-timeout" if failure.kind == "lock" else str(failure)


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def print_problems(problems, path) -> None:
    err = console(stderr=True)
    for problem in problems:
        err.print(f"{path}: {problem}", markup=False)


def confirm(args, command: str, question: str) -> None:
    """Go on when --yes was given or the operator answers yes; refuse without a terminal."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{command} changes the database and there is no terminal to ask: "
                         "re-run with --yes.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise BadgeConsoleError("Cancelled; nothing was changed.")


def progress_bar(disable: bool):
    """A bar per badge on stderr (stdout stays for the result and --json)."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                    console=console(stderr=True), disable=disable)


def _pause_word(item) -> str:
    if item.auto_paused:
        return ", [red]auto-paused[/]"
    return ", [red]paused[/]" if item.paused else ""


def series_of(bf) -> dict[str, tuple[str, str]]:
    """Level code -> (series code, series name), to show levels under their series."""
    return {b.code: (b.level_of.series, bf.badges[i].name) for i, b in bf.each_badge()
            if b.level_of is not None and isinstance(b.code, str)}


def series_lines(bf) -> list[str]:
    """One line per series of the file and one, indented, per level: what validate says."""
    lines, last = [], None
    for i, b in bf.each_badge():
        if b.level_of is None:
            continue
        if b.level_of.series != last:
            last, entry = b.level_of.series, bf.badges[i]
            lines.append(f"series {entry.code} ({entry.name}): value {entry.value}")
        lines.append(f"  {b.code} ({b.name}): value >= {b.level_of.at}")
    return lines


def plan_table(plan, series: dict[str, tuple[str, str]] | None = None):
    """The install plan, a row per badge: shown by `plan` and before `install` asks. The
    levels of a series (`series`, from series_of) come indented under a row naming it."""
    from rich.table import Table

    from ..status_style import ACTION_STYLE, PLAN_STATUS_STYLE

    table = Table(title=f"Plan: award table {plan.award_table}, channel {plan.channel}",
                  title_justify="left")
    for column in ("badge", "name", "status", "action", "detail"):
        table.add_column(column, overflow="fold")
    last = None
    for item in plan.items:
        group = (series or {}).get(item.code)
        if group and group[0] != last:
            table.add_row(group[0], group[1], "series", "", "levels below")
        last = group[0] if group else None
        action = f"[{ACTION_STYLE.get(item.action, 'default')}]{item.action}[/]"
        status = f"[{PLAN_STATUS_STYLE.get(item.status, 'default')}]{item.status}[/]" + \
            _pause_word(item)
        status += ", [cyan]time-based[/]" if item.time_based else ""
        table.add_row(f"  {item.code}" if group else item.code, item.name, status, action,
                      item.detail)
    return table


def _safe(text: str, dsn: str | None) -> str:
    """The message with any DSN password removed (psycopg is imported only if needed)."""
    if not dsn:
        return text
    from ..core.connection import redact

    return redact(text, dsn)


def _database_error(exc: Exception, dsn: str | None) -> tuple[str, int] | None:
    """One sentence and exit code for a psycopg error; None for anything else.

    psycopg is looked up, not imported: `--help` and `validate --offline` never load it."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    from ..core.connection import first_line

    if isinstance(exc, psycopg.OperationalError):
        return f"lost the database connection: {_safe(first_line(exc), dsn)}.", 3
    return f"database error: {_safe(first_line(exc), dsn)}.", 1


def _waited(exc: LockTimeout, args) -> str:
    """The sentence for a lock wait that gave up (the engine gives the facts)."""
    held = f"table {exc.table} is locked by another session" if exc.table else \
        "a table it needs is locked by another session"
    pid = f" (pid {exc.pid})" if exc.pid else ""
    hint = ", or raise --lock-timeout" if hasattr(args, "lock_timeout") else ""
    return (f"{held}{pid}; gave up after waiting {exc.timeout} and changed nothing: retry "
            f"once it is released{hint}.")


def report_failure(exc: Exception, args, dsn: str | None) -> int | None:
    """Print the one sentence that ends a failed command and return its exit code; None
    when `exc` is none of ours or psycopg's (a bug: the caller lets its traceback show)."""
    err = console(stderr=True)
    if isinstance(exc, LockTimeout):
        err.print(f"{PROG}: {_waited(exc, args)}", markup=False)
        return exc.exit_code
    if isinstance(exc, BadgeConsoleError):
        if isinstance(exc, DefinitionError) and len(exc.problems) > 1:
            print_problems(exc.problems, exc.path)
        err.print(f"{PROG}: {_safe(in_words(exc, WORDS, failure_words), dsn)}", markup=False)
        return exc.exit_code
    known = _database_error(exc, dsn)
    if known is None:
        return None
    err.print(f"{PROG}: {known[0]}", markup=False)
    return known[1]
