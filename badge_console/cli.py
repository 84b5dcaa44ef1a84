"""Command line: argument parsing, exit codes, one-sentence errors, --json.

No SQL is built here: every command calls the engine in badge_console.core. Textual is
imported only when the console itself is opened, so headless commands start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from .cli_options import add_global_options, merge_global_options
from .core.errors import (BadgeConsoleError, DatabaseUnreachable, DefinitionError, LockTimeout,
                          ReadOnlyRefused, UsageError)

PROG = "badge-console"


@dataclass
class Context:
    """What every command needs: where the database is and which badges file."""

    dsn: str
    badges_path: Path
    database: str  # display name read from the live connection, password-free
    demo: bool
    server: object = None  # keeps the embedded server alive while we run
    standby: bool = False  # pg_is_in_recovery() of the live connection (shown in `database`)


def open_context(args) -> Context:
    """Resolve the target (SPEC 4 precedence) and describe it from a live connection.

    The console opens on an unreachable server too (it shows the outage and reconnects),
    named from the DSN until then; a command fails at once with exit code 3."""
    from .core.connection import connect, describe_dsn, describe_server, resolve_dsn

    dsn = resolve_dsn(args.dsn)
    badges = Path(args.badges) if args.badges else Path("badge.json")
    if dsn is not None:
        try:
            with connect(dsn, autocommit=True) as conn:
                target = describe_server(conn)
            return Context(dsn, badges, str(target), demo=False, standby=target.standby)
        except DatabaseUnreachable:
            if args.command:
                raise
            return Context(dsn, badges, describe_dsn(dsn), demo=False)
    from .core import demo

    server = demo.start_embedded_server()
    dsn = demo.ensure_demo_database(server.get_uri())
    if not args.badges and not badges.exists():
        badges = demo.DEMO_BADGES
    return Context(dsn, badges, f"embedded demo ({demo.DEMO_DB})", demo=True, server=server)


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def emit_json(doc) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def refuse_if_read_only(args, what: str) -> None:
    if args.read_only:
        raise ReadOnlyRefused(f"Refused under --read-only: {what} would change the database.")


def open_for_write(args, what: str) -> Context:
    """The context of a command that writes, refused up front under --read-only and on a
    hot standby (before any plan is shown or question asked)."""
    from .core.connection import connect
    from .core.topology import require_primary

    refuse_if_read_only(args, what)
    ctx = open_context(args)
    with connect(ctx.dsn) as conn:
        require_primary(conn, what)
    return ctx


def _load(ctx: Context):
    from .core.definitions import load_badge_file

    return load_badge_file(ctx.badges_path)


def _print_problems(problems, path) -> None:
    err = _console(stderr=True)
    for problem in problems:
        err.print(f"{path}: {problem}", markup=False)


def cmd_validate(args) -> int:
    from .core.condition import TIME_BASED_NOTE, is_time_based
    from .core.definitions import check_definitions

    if args.offline:
        ctx = Context("", Path(args.badges or "badge.json"), "no database", demo=False)
        bf = _load(ctx)
        problems, against, broken = check_definitions(bf), None, []
    else:
        from .core.connection import connect
        from .core.resolve import validate_against_database
    
        ctx = open_context(args)
        bf = _load(ctx)
        with connect(ctx.dsn) as conn:
            res = validate_against_database(conn, bf)
        problems, broken, against = res.problems, res.broken, ctx.database
        for p in res.ignored:  # a disabled badge: install drops it, nothing blocks
            _console(stderr=True).print(f"{ctx.badges_path}: warning: {p} (badge disabled)",
                                        markup=False)
    timed = [b.code for b in bf.badges if is_time_based(b)]
    if args.json:
        emit_json({"file": str(ctx.badges_path), "database": against, "valid": not problems,
                   "badges": len(bf.badges), "time_based": timed,
                   "problems": [p.as_dict() | {"text": str(p)} for p in problems],
                   "broken": [p.as_dict() | {"text": str(p)} for p in broken]})
        return 1 if problems or broken else 0
    if problems or broken:
        _print_problems(problems, ctx.badges_path)
        _print_problems(broken, against)
    else:
        where = f" against {against}" if against else " (file only, --offline)"
        _console().print(f"{ctx.badges_path}: {len(bf.badges)} badge(s) valid{where}.",
                         markup=False)
    for code in timed:
        _console().print(f"note: badge {code} is {TIME_BASED_NOTE} (install --schedule 5m).",
                         markup=False)
    return 1 if problems or broken else 0


def _pause_word(item) -> str:
    if item.auto_paused:
        return ", [red]auto-paused[/]"
    return ", [red]paused[/]" if item.paused else ""


def _plan_table(plan):
    from rich.table import Table

    table = Table(title=f"Plan: award table {plan.award_table}, channel {plan.channel}",
                  title_justify="left")
    for column in ("badge", "name", "status", "action", "detail"):
        table.add_column(column, overflow="fold")
    colours = {"create": "green", "replace": "yellow", "drop": "red", "unchanged": "dim"}
    for item in plan.items:
        action = f"[{colours.get(item.action, 'default')}]{item.action}[/]"
        status = ("[bold red]broken[/]" if item.status == "broken" else item.status) + \
            _pause_word(item)
        status += ", [cyan]time-based[/]" if item.time_based else ""
        table.add_row(item.code, item.name, status, action, item.detail)
    return table


def _plan(ctx: Context, bf, lock_timeout: str | None = None):
    from .core.connection import connect
    from .core.install import plan_install
    from .core.waits import READS, Timeouts

    timeouts = Timeouts(lock_timeout, READS.statement) if lock_timeout else READS
    with connect(ctx.dsn) as conn:
        return plan_install(conn, bf, timeouts)


def cmd_plan(args) -> int:
    from .core.condition import TIME_BASED_NOTE

    ctx = open_context(args)
    bf = _load(ctx)
    plan = _plan(ctx, bf)
    if args.json:
        doc = plan.as_dict() | {"database": ctx.database, "standby": ctx.standby,
                                "file": str(ctx.badges_path)}
        emit_json(doc)
    else:
        out = _console()
        out.print(_plan_table(plan))
        if plan.problems:
            _print_problems(plan.problems, ctx.badges_path)
        from .core.sqlgen import MAX_ERRORS

        for item in plan.items:
            if item.auto_paused:
                auto = item.auto_paused
                out.print(f"[red]auto-paused[/]: badge {item.code} paused itself at {auto['at']}"
                          f" after {MAX_ERRORS:,} failing statements (last: SQLSTATE "
                          f"{auto['sqlstate']}: {auto['message']}); fix it, then "
                          f"`{PROG} resume {item.code}`", highlight=False, markup=True)
            if item.time_based:
                out.print(f"[cyan]note[/]: badge {item.code} is {TIME_BASED_NOTE} "
                          "(install --schedule 5m).", highlight=False)
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

    if args.schedule:  # a bad interval is a usage error before anything changes
        from .core.reconcile import parse_interval

        parse_interval(args.schedule)
    ctx = open_for_write(args, "install")
    bf = _load(ctx)
    out = _console()
    plan = _plan(ctx, bf, args.lock_timeout)
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
    if args.schedule:
        from .cli_awards import schedule_reconcile

        schedule_reconcile(ctx, args.schedule)
    if args.backfill:
        from .cli_awards import backfill_summary, run_backfill

        result = run_backfill(ctx, bf, 1000)
        out.print(backfill_summary(ctx, result), markup=False)
        return 130 if result.cancelled else 0
    return 0


def cmd_uninstall(args) -> int:
    from .core.connection import connect
    from .core.install import uninstall

    ctx = open_for_write(args, "uninstall")
    _confirm(args, "Uninstall", f"Remove every badge trigger and schema badge_console from {ctx.database}?")
    with connect(ctx.dsn) as conn:
        dropped = uninstall(conn, lock_timeout=args.lock_timeout)
    _console().print(f"Uninstalled from {ctx.database}: {dropped} trigger(s) and schema "
                     "badge_console removed; awards and application data kept.", markup=False)
    return 0


def cmd_pause(args, paused: bool = True) -> int:
    from .core.connection import connect
    from .core.install import set_paused

    ctx = open_for_write(args, "pause" if paused else "resume")
    with connect(ctx.dsn) as conn:
        set_paused(conn, args.code, paused)
    what = f"badge {args.code}" if args.code else "all badges"
    state = "paused: triggers award nothing until resumed" if paused else "resumed"
    _console().print(f"{what.capitalize()} {state} on {ctx.database}.", markup=False)
    return 0


def cmd_resume(args) -> int:
    return cmd_pause(args, paused=False)


def cmd_errors(args) -> int:
    from .core.connection import connect
    from .core.bookkeeping import clear_errors, read_errors, read_pauses

    ctx = open_for_write(args, "errors --clear") if args.clear else open_context(args)
    with connect(ctx.dsn) as conn:
        if args.clear:
            cleared = clear_errors(conn, args.code)
        errors, pauses = read_errors(conn, args.code), read_pauses(conn)
    if args.clear and args.json:
        emit_json({"database": ctx.database, "code": args.code, "cleared": cleared})
        return 0
    if args.clear:
        what = f"badge {args.code}" if args.code else "all badges"
        _console().print(f"Cleared {cleared} recorded error(s) of {what} on {ctx.database}.",
                         markup=False)
        return 0
    rows = [e | {"code": code, "auto_paused": bool(pauses.get(code) and pauses[code].auto)}
            for code, groups in errors.items() for e in groups]
    if args.json:
        emit_json({"database": ctx.database, "badges": rows})
        return 0
    out = _console()
    for row in rows:
        state = " (auto-paused)" if row["auto_paused"] else ""
        out.print(f"{row['code']}{state}: {row['count']} statement(s), {row['first_at']} .. "
                  f"{row['last_at']}, SQLSTATE {row['sqlstate']}: {row['message']}",
                  markup=False)
    if not rows:
        out.print(f"No run-time errors recorded on {ctx.database}.", markup=False)
    return 0


def cmd_console(args) -> int:
    from .tui.app import run_console

    ctx = open_context(args)
    return run_console(ctx, read_only=args.read_only)


def _awards_command(name: str):
    """A command from cli_awards, imported only when it runs (keeps --help instant)."""
    def run(args) -> int:
        from . import cli_awards

        return getattr(cli_awards, name)(args)
    return run


def _common(parser: argparse.ArgumentParser, badges: bool = True, json_out: bool = False):
    """A command's own copy of the global options (and --json when it has JSON output)."""
    add_global_options(parser, after=True, badges=badges, json_out=json_out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return merge_global_options(build_parser().parse_args(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Badges that PostgreSQL itself awards: console and CLI. "
                               "Without a command, opens the console. --dsn, --badges, "
                               "--read-only and --json may be given before or after the "
                               "command.")
    add_global_options(parser, after=False)
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
    p.add_argument("--schedule", metavar="INTERVAL",
                   help="run reconcile every INTERVAL (e.g. 5m): a pg_cron job where the "
                        "extension is installed, else the crontab line is printed")
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

    p = sub.add_parser("errors", help="run-time errors the triggers recorded")
    _common(p, badges=False, json_out=True)
    p.add_argument("code", nargs="?", help="badge code (default: all badges)")
    p.add_argument("--clear", action="store_true", help="delete the recorded errors")
    p.set_defaults(func=cmd_errors)

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
    p.set_defaults(func=_awards_command("cmd_dry_run"))

    p = sub.add_parser("watch", help="print awards as they are made, until Ctrl-C")
    _common(p, json_out=True)
    p.add_argument("--since", type=int, metavar="ID",
                   help="first print the events (awards, grants, revocations) with a higher "
                        "event id (event_id in --json) that already exist")
    p.add_argument("--poll", type=float, metavar="SECONDS",
                   help="read the events every SECONDS instead of LISTEN (chosen by "
                        "itself on a hot standby and behind a transaction pooler)")
    p.set_defaults(func=_awards_command("cmd_watch"))

    p = sub.add_parser("backfill", help="award users who already qualify (preview first)")
    _common(p, json_out=True)
    p.add_argument("--dry-run", action="store_true",
                   help="only count who would be awarded; write nothing")
    p.add_argument("--batch-size", type=int, default=1000, metavar="ROWS",
                   help="rows per transaction (default 1000)")
    p.set_defaults(func=_awards_command("cmd_backfill"))

    p = sub.add_parser("reconcile", help="award what the triggers could not decide at once "
                                         "(queued rows, time-based badges)")
    _common(p, badges=False, json_out=True)
    p.add_argument("--every", type=float, metavar="SECONDS",
                   help="run a pass every SECONDS until Ctrl-C, a line per pass")
    p.add_argument("--batch-size", type=int, default=1000, metavar="ROWS",
                   help="rows per transaction, queued or re-checked (default 1000)")
    p.set_defaults(func=_awards_command("cmd_reconcile"))

    p = sub.add_parser("demo-traffic", help="realistic writes on the embedded demo database")
    _common(p, badges=False)
    p.add_argument("--rate", type=float, default=20.0, metavar="N",
                   help="writes per second (default 20)")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds "
                                                               "(default: at Ctrl-C)")
    p.set_defaults(func=_awards_command("cmd_demo_traffic"))

    from .cli_manage import add_awards_commands  # here: cli_manage imports this module
    add_awards_commands(sub, _common)
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


def _waited(exc: LockTimeout, args) -> str:
    """The sentence for a lock wait that gave up (the engine gives the facts)."""
    held = f"table {exc.table} is locked by another session" if exc.table else \
        "a table it needs is locked by another session"
    pid = f" (pid {exc.pid})" if exc.pid else ""
    hint = ", or raise --lock-timeout" if hasattr(args, "lock_timeout") else ""
    return (f"{held}{pid}; gave up after waiting {exc.timeout} and changed nothing: retry "
            f"once it is released{hint}.")


def _terminate(signum, frame):
    """SIGTERM ends the command like Ctrl-C: psycopg cancels the running query on the
    server and the connection is closed, so no backend keeps working (or waiting) for us."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    dsn, args, previous = None, None, None
    try:
        args = parse_args(argv)
        dsn = args.dsn or os.environ.get("DATABASE_URL")
        if args.command and threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _terminate)
        return args.func(args)
    except LockTimeout as exc:
        _console(stderr=True).print(f"{PROG}: {_waited(exc, args)}", markup=False)
        return exc.exit_code
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
    finally:
        if previous is not None:  # main() run in-process (tests) leaves no handler behind
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
