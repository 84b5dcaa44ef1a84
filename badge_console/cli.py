"""Command line: argument parsing, exit codes, one-sentence errors, --json.

No SQL is built here: every command calls the engine in badge_console.core. Textual is
imported only when the console itself is opened, so headless commands start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .core.errors import BadgeConsoleError, DefinitionError, ReadOnlyRefused, UsageError

PROG = "badge-console"


@dataclass
class Context:
    """What every command needs: where the database is and which badges file."""

    dsn: str
    badges_path: Path
    database: str  # display name, password-free
    demo: bool
    server: object = None  # keeps the embedded server alive while we run


def open_context(args) -> Context:
    from .core.connection import describe_dsn, resolve_dsn

    dsn = resolve_dsn(getattr(args, "dsn", None))
    badges = Path(args.badges) if getattr(args, "badges", None) else Path("badge.json")
    if dsn is not None:
        return Context(dsn, badges, describe_dsn(dsn), demo=False)
    from .core import demo

    server = demo.start_embedded_server()
    dsn = demo.ensure_demo_database(server.get_uri())
    if not getattr(args, "badges", None) and not badges.exists():
        badges = demo.DEMO_BADGES
    return Context(dsn, badges, f"embedded demo ({demo.DEMO_DB})", demo=True, server=server)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def refuse_if_read_only(args, what: str) -> None:
    if getattr(args, "read_only", False):
        raise ReadOnlyRefused(f"Refused under --read-only: {what} would change the database.")


def _load(ctx: Context):
    from .core.definitions import load_badge_file

    return load_badge_file(ctx.badges_path)


def _print_problems(problems, path) -> None:
    err = _console(stderr=True)
    for problem in problems:
        err.print(f"{path}: {problem}", markup=False)


def cmd_validate(args) -> int:
    from .core.definitions import check_definitions

    if args.offline:
        ctx = Context("", Path(args.badges or "badge.json"), "no database", demo=False)
        bf = _load(ctx)
        problems, against = check_definitions(bf), None
    else:
        from .core.connection import connect
        from .core.resolve import validate_against_database

        ctx = open_context(args)
        bf = _load(ctx)
        with connect(ctx.dsn) as conn:
            problems = validate_against_database(conn, bf).problems
        against = ctx.database
    if args.json:
        emit_json({"file": str(ctx.badges_path), "database": against, "valid": not problems,
                   "badges": len(bf.badges),
                   "problems": [p.as_dict() | {"text": str(p)} for p in problems]})
    elif problems:
        _print_problems(problems, ctx.badges_path)
    else:
        where = f" against {against}" if against else " (file only, --offline)"
        _console().print(f"{ctx.badges_path}: {len(bf.badges)} badge(s) valid{where}.",
                         markup=False)
    return 1 if problems else 0


def _plan_table(plan):
    from rich.table import Table

    table = Table(title=f"Plan: award table {plan.award_table}, channel {plan.channel}",
                  title_justify="left")
    for column in ("badge", "name", "status", "action", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"create": "green", "replace": "yellow", "drop": "red", "unchanged": "dim"}
    for item in plan.items:
        action = f"[{colours.get(item.action, 'default')}]{item.action}[/]"
        status = f"{item.status}, [red]paused[/]" if item.paused else item.status
        table.add_row(item.code, item.name, status, action, item.detail)
    return table


def _plan(ctx: Context, bf):
    from .core.connection import connect
    from .core.install import plan_install

    with connect(ctx.dsn) as conn:
        return plan_install(conn, bf)


def cmd_plan(args) -> int:
    ctx = open_context(args)
    bf = _load(ctx)
    plan = _plan(ctx, bf)
    if args.json:
        doc = plan.as_dict() | {"database": ctx.database, "file": str(ctx.badges_path)}
        emit_json(doc)
    else:
        out = _console()
        out.print(_plan_table(plan))
        if plan.problems:
            _print_problems(plan.problems, ctx.badges_path)
        for item in plan.items:
            for advice in item.advice:
                out.print(f"[yellow]warning[/]: badge {item.code}: {advice}", highlight=False)
            for e in item.errors:
                out.print(f"[yellow]warning[/]: badge {item.code} skipped {e['count']} "
                          f"statement(s) on a run-time error (SQLSTATE {e['sqlstate']}, last "
                          f"{e['last_at']}): {e['message']}", highlight=False)
        out.print(f"{len(plan.changes)} change(s) to apply on {ctx.database}.", markup=False)
        if args.sql:
            out.print(plan.sql_text(), markup=False)
    return 1 if plan.problems else 0


def _confirm(args, command: str, question: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{command} changes the database and there is no terminal to ask: "
                         "re-run with --yes.")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise BadgeConsoleError("Cancelled; nothing was changed.")


def cmd_install(args) -> int:
    from .core.connection import connect
    from .core.install import install

    refuse_if_read_only(args, "install")
    ctx = open_context(args)
    bf = _load(ctx)
    out = _console()
    plan = _plan(ctx, bf)
    if plan.problems:
        raise DefinitionError(str(ctx.badges_path), plan.problems)
    out.print(_plan_table(plan))
    if plan.changes:
        _confirm(args, "Install", f"Apply {len(plan.changes)} change(s) to {ctx.database}?")
    with connect(ctx.dsn) as conn:
        done = install(conn, bf, lock_timeout=args.lock_timeout)
    counts = {a: sum(1 for i in done.changes if i.action == a)
              for a in ("create", "replace", "drop")}
    out.print(f"Installed on {ctx.database}: {counts['create']} created, "
              f"{counts['replace']} replaced, {counts['drop']} dropped.", markup=False)
    if args.backfill:
        result = _run_backfill(ctx, bf, 1000)
        out.print(_backfill_summary(ctx, result), markup=False)
        return 130 if result.cancelled else 0
    return 0


def cmd_uninstall(args) -> int:
    from .core.connection import connect
    from .core.install import uninstall

    refuse_if_read_only(args, "uninstall")
    ctx = open_context(args)
    _confirm(args, "Uninstall", f"Remove every badge trigger and schema badge_console from {ctx.database}?")
    with connect(ctx.dsn) as conn:
        dropped = uninstall(conn, lock_timeout=args.lock_timeout)
    _console().print(f"Uninstalled from {ctx.database}: {dropped} trigger(s) and schema "
                     "badge_console removed; awards and application data kept.", markup=False)
    return 0


def cmd_pause(args, paused: bool = True) -> int:
    from .core.connection import connect
    from .core.install import set_paused

    refuse_if_read_only(args, "pause" if paused else "resume")
    ctx = open_context(args)
    with connect(ctx.dsn) as conn:
        set_paused(conn, args.code, paused)
    what = f"badge {args.code}" if args.code else "all badges"
    state = "paused: triggers award nothing until resumed" if paused else "resumed"
    _console().print(f"{what.capitalize()} {state} on {ctx.database}.", markup=False)
    return 0


def cmd_resume(args) -> int:
    return cmd_pause(args, paused=False)


def cmd_console(args) -> int:
    from .tui.app import run_console

    ctx = open_context(args)
    return run_console(ctx, read_only=args.read_only)


def _award_line(award) -> str:
    when = (award.awarded_at or "")[:19].replace("T", " ") or "-" * 19
    return (f"{when}  #{award.id}  user {award.user_id}  {award.name} ({award.code})  "
            f"{award.table or '-'} {award.op or 'catch-up'}")


def cmd_watch(args) -> int:
    from .core.feed import AwardListener

    ctx = open_context(args)
    try:  # only for the channel and award table when nothing is installed yet
        bf = _load(ctx) if ctx.badges_path.exists() else None
    except DefinitionError:
        bf = None
    out, err = sys.stdout, _console(stderr=True)
    started: list = []

    def on_award(award) -> None:  # the payload is already the JSON document to print
        out.write((award.payload if args.json else _award_line(award)) + "\n")
        out.flush()

    def on_state(state) -> None:
        if state.kind == "caught_up" and not started:
            started.append(True)
            earlier = f"; {state.count} award(s) above #{args.since} shown" \
                if args.since is not None else ""
            err.print(f"Watching channel {listener.channel} on {ctx.database}{earlier}. "
                      "Ctrl-C to stop.", markup=False)
        elif state.kind == "caught_up":
            err.print(f"Reconnected; caught up {state.count} award(s) made meanwhile.",
                      markup=False)
        elif state.kind == "reconnecting":
            err.print(f"Connection lost ({state.detail}).", markup=False)

    listener = AwardListener(ctx.dsn, on_award, on_state, since=args.since, badge_file=bf)
    try:
        listener.run()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _stop_on_ctrl_c():
    """An Event set by the first Ctrl-C (work stops between steps); a second one interrupts."""
    import signal
    import threading

    stop = threading.Event()

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    return stop, lambda: signal.signal(signal.SIGINT, previous)


def _backfill_table(backfill):
    from rich.table import Table

    done = not backfill.dry_run
    table = Table(title=f"Backfill into {backfill.award_table}", title_justify="left")
    for column in ("badge", "name", "table", "would award", *(["awarded"] if done else []),
                   "detail"):
        table.add_column(column, overflow="fold")
    for item in backfill.items:
        sample = ", ".join(map(str, item.sample))
        more = ", ..." if item.would_award > len(item.sample) else ""
        detail = "not applicable (below)" if not item.applicable else (
            f"users {sample}{more}" if sample else "nobody qualifies")
        counts = [str(item.would_award) if item.applicable else "-"]
        if done:
            counts.append(str(item.awarded) if item.applicable else "-")
        table.add_row(item.code, item.name, item.table, *counts, detail)
    return table


def _print_backfill(out, backfill) -> None:
    out.print(_backfill_table(backfill))
    for item in backfill.items:
        if not item.applicable:
            out.print(f"{item.code}: {item.reason}.", markup=False)


def _run_backfill(ctx: Context, bf, batch_size: int, show_progress: bool = True):
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

    from .core.backfill import run_backfill
    from .core.connection import connect

    stop, restore = _stop_on_ctrl_c()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   console=_console(stderr=True), disable=not show_progress)
    tasks: dict = {}

    def progress(p) -> None:
        total = max(p.rows_total, 1)
        if p.code not in tasks:
            tasks[p.code] = bar.add_task(p.code, total=total)
        bar.update(tasks[p.code], completed=total if p.rows_done >= p.rows_total else p.rows_done,
                   description=f"{p.code}: {p.awarded} awarded")

    try:
        with connect(ctx.dsn) as conn, bar:
            return run_backfill(conn, bf, batch_size=batch_size, progress=progress, cancel=stop)
    finally:
        restore()


def _backfill_summary(ctx: Context, result) -> str:
    per = ", ".join(f"{i.code} {i.awarded}" for i in result.items if i.applicable)
    if result.cancelled:
        return (f"Backfill cancelled on {ctx.database} after {result.awarded} award(s); "
                "run it again to continue (nobody is awarded twice).")
    return f"Backfill on {ctx.database}: {result.awarded} award(s) granted ({per or 'none'})."


def cmd_backfill(args) -> int:
    from .core.backfill import preview_backfill
    from .core.connection import connect

    if not args.dry_run:
        refuse_if_read_only(args, "backfill")
    ctx = open_context(args)
    bf = _load(ctx)
    with connect(ctx.dsn) as conn:
        preview = preview_backfill(conn, bf)
    out = _console()
    if args.dry_run:
        if args.json:
            emit_json(preview.as_dict() | {"database": ctx.database})
        else:
            _print_backfill(out, preview)
            out.print(f"Dry run on {ctx.database}: {preview.would_award} award(s) would be "
                      "granted; nothing was written.", markup=False)
        return 0
    if not args.json:
        _print_backfill(out, preview)
    result = _run_backfill(ctx, bf, args.batch_size, show_progress=not args.json)
    for item, seen in zip(result.items, preview.items):
        item.would_award, item.sample = seen.would_award, seen.sample
    if args.json:
        emit_json(result.as_dict() | {"database": ctx.database})
    else:
        out.print(_backfill_summary(ctx, result), markup=False)
    return 130 if result.cancelled else 0


def cmd_demo_traffic(args) -> int:
    from .core.traffic import run_demo_traffic

    refuse_if_read_only(args, "demo-traffic")
    ctx = open_context(args)
    out = _console()
    until = f"for {args.seconds:g}s" if args.seconds else "until Ctrl-C"
    out.print(f"Writing demo traffic to {ctx.database}: {args.rate:g} writes/s {until}.",
              markup=False)
    stop, restore = _stop_on_ctrl_c()
    try:
        stats = run_demo_traffic(ctx.dsn, rate=args.rate, seconds=args.seconds, stop=stop)
    finally:
        restore()
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.writes.items()))
    out.print(f"Wrote {stats.total} row change(s) in {stats.seconds:.1f}s ({kinds or 'none'}).",
              markup=False)
    return 0


def _dry_run_table(result):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Dry run ({result.mode}) of {result.code} on {result.table}, "
                        f"{result.op}", title_justify="left")
    for column in ("#", "user", "holds", "condition", "would award", "row"):
        table.add_column(column, overflow="fold")
    for r in result.rows:
        value = Text(r.error, style="red") if r.error else Text(
            {True: "true", False: "false", None: "null"}[r.value])
        row = ", ".join(f"{k}={v}" for k, v in r.row.items())
        table.add_row(str(r.index), Text(r.user or "-"), "yes" if r.holds else "no", value,
                      Text("yes", style="green") if r.would_award else Text("no"),
                      Text(row[:80] + ("..." if len(row) > 80 else "")))
    return table


def cmd_dry_run(args) -> int:
    from .core.connection import connect
    from .core.dryrun import Sample, dry_run, parse_json_changes, parse_json_rows

    if args.mode == "fire" and args.read_only:
        raise ReadOnlyRefused(
            "Refused under --read-only: fire mode creates the trigger and writes the sample "
            "rows (rolled back, but it locks the table and consumes sequence values); use "
            "--mode eval.")
    rows = parse_json_rows(args.rows) if args.rows is not None else None
    changes = parse_json_changes(args.set) if args.set is not None else None
    ctx = open_context(args)
    bf = _load(ctx)
    err, out = _console(stderr=True), _console()
    if args.mode == "fire":
        err.print(f"Fire mode installs the trigger in a transaction that is rolled back; it "
                  f"takes a brief table lock (writers wait; gives up after "
                  f"{args.lock_timeout}).", markup=False)
    with connect(ctx.dsn) as conn:
        result = dry_run(conn, bf, args.code, Sample(args.where, args.limit, rows, changes),
                         mode=args.mode, op=args.op, explain=args.explain,
                         lock_timeout=args.lock_timeout,
                         statement_timeout=args.statement_timeout)
    if args.json:
        emit_json(result.as_dict() | {"database": ctx.database, "file": str(ctx.badges_path)})
        return 0
    out.print(_dry_run_table(result))
    if result.fire is not None:
        fired = result.fire
        users = ", ".join(a["user_id"] for a in fired.awarded) or "nobody"
        out.print(f"Fire: {fired.written} row(s) written; the trigger awarded: {users}.",
                  markup=False)
        for line in ([f"Write failed: {fired.error}"] if fired.error else []) + [
                f"Trigger error (on_error skip): {e}" for e in fired.trigger_errors]:
            out.print(line, style="red", markup=False)
    if result.explain:
        out.print(f"EXPLAIN (one sample row):\n{result.explain}", markup=False)
    for note in result.notes:
        out.print(f"Note: {note}", style="dim", markup=False)
    out.print(f"{result.summary} ({ctx.database})", markup=False)
    return 0


def _common(parser: argparse.ArgumentParser, badges: bool = True, json_out: bool = False):
    parser.add_argument("--dsn", help="libpq URI or key=value string (default: $DATABASE_URL, "
                                      "else the embedded demo)")
    if badges:
        parser.add_argument("--badges", metavar="PATH", help="badges file (default ./badge.json)")
    parser.add_argument("--read-only", action="store_true",
                        help="refuse anything that would change the database or badge.json")
    if json_out:
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Badges that PostgreSQL itself awards: console and CLI. "
                               "Without a command, opens the console.")
    _common(parser)
    parser.set_defaults(func=cmd_console)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="check badge.json (and against the database)")
    _common(p, json_out=True)
    p.add_argument("--offline", action="store_true", help="file checks only, no database")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="what install would create, replace or drop")
    _common(p, json_out=True)
    p.add_argument("--sql", action="store_true", help="also print the exact SQL")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("install", help="install the triggers in one transaction")
    _common(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lock-timeout", default="5s", help="give up waiting for table locks "
                                                        "after this long (default 5s)")
    p.add_argument("--backfill", action="store_true",
                   help="then award users who already qualify")
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("uninstall", help="remove our triggers and schema; awards stay")
    _common(p, badges=False)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lock-timeout", default="5s", help="lock wait limit (default 5s)")
    p.set_defaults(func=cmd_uninstall)

    for name, func, text in (("pause", cmd_pause, "stop awarding (one badge or all)"),
                             ("resume", cmd_resume, "restart awarding")):
        p = sub.add_parser(name, help=f"{text}, without DDL")
        _common(p, badges=False)
        p.add_argument("code", nargs="?", help="badge code (default: all badges)")
        p.set_defaults(func=func)

    p = sub.add_parser("dry-run", help="test a badge on sample rows; always rolled back")
    _common(p, json_out=True)
    p.add_argument("code", help="badge code")
    p.add_argument("--where", metavar="SQL", help="filter on the trigger table (what follows "
                                                  "WHERE)")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="sample rows (default 20)")
    p.add_argument("--rows", metavar="JSON", help='rows typed by hand: {"col": value} or a list')
    p.add_argument("--set", metavar="JSON", help="update badges: the changes that make NEW")
    p.add_argument("--op", choices=("insert", "update", "delete"),
                   help="which of the badge's operations (default: its first)")
    p.add_argument("--mode", choices=("eval", "fire"), default="eval",
                   help="eval: evaluate the condition read-only (default); fire: run the real "
                        "trigger, then roll back")
    p.add_argument("--lock-timeout", default="2s", help="lock wait limit (default 2s)")
    p.add_argument("--statement-timeout", default="5s",
                   help="limit for each statement (default 5s)")
    p.add_argument("--explain", action="store_true", help="EXPLAIN the trigger's query for "
                                                          "one sample row")
    p.set_defaults(func=cmd_dry_run)

    p = sub.add_parser("watch", help="print awards as they are made, until Ctrl-C")
    _common(p, json_out=True)
    p.add_argument("--since", type=int, metavar="ID",
                   help="first print the awards with a higher id that already exist")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("backfill", help="award users who already qualify (preview first)")
    _common(p, json_out=True)
    p.add_argument("--dry-run", action="store_true",
                   help="only count who would be awarded; write nothing")
    p.add_argument("--batch-size", type=int, default=1000, metavar="ROWS",
                   help="rows per transaction (default 1000)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("demo-traffic", help="realistic writes on the embedded demo database")
    _common(p, badges=False)
    p.add_argument("--rate", type=float, default=20.0, metavar="N",
                   help="writes per second (default 20)")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds "
                                                               "(default: at Ctrl-C)")
    p.set_defaults(func=cmd_demo_traffic)
    return parser


def _safe(text: str, dsn: str | None) -> str:
    """The message with any DSN password removed (psycopg is imported only if needed)."""
    if not dsn:
        return text
    from .core.connection import redact

    return redact(text, dsn)


def _database_error(exc: Exception, dsn: str | None) -> tuple[str, int] | None:
    """One sentence and exit code for a psycopg error; None for anything else.

    psycopg is looked up, not imported: `--help` and `validate --offline` never load it."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    from .core.connection import first_line

    if isinstance(exc, psycopg.OperationalError):
        return f"lost the database connection: {_safe(first_line(exc), dsn)}.", 3
    return f"database error: {_safe(first_line(exc), dsn)}.", 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    dsn = getattr(args, "dsn", None) or os.environ.get("DATABASE_URL")
    try:
        return args.func(args)
    except DefinitionError as exc:
        if len(exc.problems) > 1:
            _print_problems(exc.problems, exc.path)
        _console(stderr=True).print(f"{PROG}: {_safe(str(exc), dsn)}", markup=False)
        return exc.exit_code
    except BadgeConsoleError as exc:
        _console(stderr=True).print(f"{PROG}: {_safe(str(exc), dsn)}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        known = _database_error(exc, dsn)
        if known is None:
            raise
        _console(stderr=True).print(f"{PROG}: {known[0]}", markup=False)
        return known[1]


if __name__ == "__main__":
    sys.exit(main())
