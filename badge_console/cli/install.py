"""`install`, `uninstall`, `backfill` and `reconcile`: put the triggers in place (and take
them away), award users who already qualify, award what the triggers could not decide at
once, and schedule that (`install --schedule`)."""

from __future__ import annotations

from ..core.batch_sizes import BACKFILL_ROWS, BACKFILL_USERS, RECONCILE_ROWS
from ..core.errors import DefinitionError
from .context import Context, load_badges, open_context, open_for_write
from .definitions import read_plan
from .options import add_command_options
from .output import confirm, console, emit_json, plan_table, progress_bar, series_of
from .signals import stop_on_ctrl_c


def cmd_install(args) -> int:
    from ..core.connection import connect
    from ..core.install import install
    from ..core.plan_status import PlanAction

    if args.schedule:  # a bad interval is a usage error before anything changes
        from ..core.reconcile import parse_interval

        parse_interval(args.schedule)
    ctx = open_for_write(args, "install")
    bf = load_badges(ctx)
    out = console()
    plan = read_plan(ctx, bf, args.lock_timeout)
    if plan.problems:
        raise DefinitionError(str(ctx.badges_path), plan.problems)
    out.print(plan_table(plan, series_of(bf)))
    if plan.changes:
        confirm(args, "Install", f"Apply {len(plan.changes)} change(s) to {ctx.database}?")
    with connect(ctx.dsn) as conn:
        done = install(conn, bf, lock_timeout=args.lock_timeout)
    n = done.counts()
    out.print(f"Installed on {ctx.database}: {n[PlanAction.CREATE]} created, "
              f"{n[PlanAction.REPLACE]} replaced, {n[PlanAction.DROP]} dropped.", markup=False)
    if args.schedule:
        schedule_reconcile(ctx, args.schedule)
    if args.backfill:
        result = run_backfill(ctx, bf, BACKFILL_ROWS)
        out.print(backfill_summary(ctx, result), markup=False)
        return 130 if result.cancelled else 0
    return 0


def cmd_uninstall(args) -> int:
    from ..core.connection import connect
    from ..core.install import uninstall

    ctx = open_for_write(args, "uninstall")
    confirm(args, "Uninstall", f"Remove every badge trigger and schema badge_console from {ctx.database}?")
    with connect(ctx.dsn) as conn:
        dropped = uninstall(conn, lock_timeout=args.lock_timeout)
    console().print(f"Uninstalled from {ctx.database}: {dropped} trigger(s) and schema "
                    "badge_console removed; awards and application data kept.", markup=False)
    return 0


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


def run_backfill(ctx: Context, bf, batch_size: int, show_progress: bool = True,
                 users_per_batch: int = BACKFILL_USERS):
    """The engine's backfill with a progress bar per badge; the first Ctrl-C stops it
    between batches (what was committed stays)."""
    from ..core.backfill import run_backfill
    from ..core.connection import connect

    stop, restore = stop_on_ctrl_c()
    bar = progress_bar(disable=not show_progress)
    tasks: dict = {}

    def progress(p) -> None:
        total = max(p.rows_total, 1)
        if p.code not in tasks:
            tasks[p.code] = bar.add_task(p.code, total=total)
        bar.update(tasks[p.code], completed=total if p.rows_done >= p.rows_total else p.rows_done,
                   description=f"{p.code}: {p.awarded} awarded")

    try:
        with connect(ctx.dsn) as conn, bar:
            return run_backfill(conn, bf, batch_size=batch_size, users_per_batch=users_per_batch,
                                progress=progress, cancel=stop)
    finally:
        restore()


def backfill_summary(ctx: Context, result) -> str:
    per = ", ".join(f"{i.code} {i.awarded}" for i in result.items if i.applicable)
    if result.cancelled:
        return (f"Backfill cancelled on {ctx.database} after {result.awarded} award(s); "
                "run it again to continue (nobody is awarded twice).")
    return f"Backfill on {ctx.database}: {result.awarded} award(s) granted ({per or 'none'})."


def cmd_backfill(args) -> int:
    from ..core.backfill import preview_backfill
    from ..core.connection import connect

    ctx = open_context(args) if args.dry_run else open_for_write(args, "backfill")
    bf = load_badges(ctx)
    with connect(ctx.dsn) as conn:
        preview = preview_backfill(conn, bf)
    out = console()
    if args.dry_run:
        if args.json:
            emit_json(preview.as_dict() | {"database": ctx.database, "standby": ctx.standby})
        else:
            _print_backfill(out, preview)
            out.print(f"Dry run on {ctx.database}: {preview.would_award} award(s) would be "
                      "granted; nothing was written.", markup=False)
        return 0
    if not args.json:
        _print_backfill(out, preview)
    result = run_backfill(ctx, bf, args.batch_size, show_progress=not args.json,
                          users_per_batch=args.users_per_batch)
    for item, seen in zip(result.items, preview.items):
        item.would_award, item.sample = seen.would_award, seen.sample
    if args.json:
        emit_json(result.as_dict() | {"database": ctx.database})
    else:
        out.print(backfill_summary(ctx, result), markup=False)
    return 130 if result.cancelled else 0


def _pass_line(ctx: Context, result) -> str:
    left = f"; {result.queued} row(s) left queued (a writer holds their lock; next pass)" \
        if result.queued else ""
    return (f"{result.finished_at[:19].replace('T', ' ')}  reconcile on {ctx.database}: "
            f"{result.awarded} award(s) ({result.awarded_from_queue} from the queue, "
            f"{result.awarded_time_based} time-based){left}.")


def cmd_reconcile(args) -> int:
    from ..core.connection import connect
    from ..core.reconcile import run_pass

    ctx = open_for_write(args, "reconcile")
    out = console()
    stop, restore = stop_on_ctrl_c()
    try:
        with connect(ctx.dsn, autocommit=True) as conn:
            while True:
                result = run_pass(conn, batch=args.batch_size)
                if args.json:
                    emit_json(result.as_dict() | {"database": ctx.database})
                else:
                    out.print(_pass_line(ctx, result), markup=False)
                if args.every is None or stop.wait(max(args.every, 0.1)):
                    return 0  # one pass, or Ctrl-C during the wait
    finally:
        restore()


def schedule_reconcile(ctx: Context, interval: str) -> None:
    """install --schedule: a pg_cron job where the extension is installed, else the crontab
    line to add (printed, nothing registered)."""
    from ..core.connection import connect
    from ..core.reconcile import (JOB_NAME, cron_expression, crontab_line, has_pg_cron,
                                  parse_interval, schedule)

    seconds = parse_interval(interval)
    cron = cron_expression(seconds)
    rounded = "" if seconds % 60 == 0 and seconds >= 60 else \
        f" (cron's finest step is a minute; {interval} rounded)"
    out = console()
    with connect(ctx.dsn) as conn:
        if has_pg_cron(conn):
            schedule(conn, cron)
            out.print(f"Scheduled reconcile with pg_cron on {ctx.database}: job {JOB_NAME}, "
                      f"'{cron}'{rounded}.", markup=False)
            return
    out.print(f"pg_cron is not installed in {ctx.database}; add this line to the crontab of "
              f"a user whose ~/.pgpass holds the password (crontab -e){rounded}:", markup=False)
    out.print(crontab_line(ctx.dsn, cron), markup=False)


def add_install_commands(sub) -> None:
    """`install` and `uninstall` under the main parser's subparsers."""
    p = sub.add_parser("install", help="install the triggers in one transaction")
    add_command_options(p)
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
    add_command_options(p, badges=False)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--lock-timeout", default="5s", help="lock wait limit (default 5s)")
    p.set_defaults(func=cmd_uninstall)


def add_catch_up_commands(sub) -> None:
    """`backfill` and `reconcile` (awards the triggers did not make) under the subparsers."""
    p = sub.add_parser("backfill", help="award users who already qualify (preview first)")
    add_command_options(p, json_out=True)
    p.add_argument("--dry-run", action="store_true",
                   help="only count who would be awarded; write nothing")
    p.add_argument("--batch-size", type=int, default=BACKFILL_ROWS, metavar="ROWS",
                   help=f"rows per transaction (default {BACKFILL_ROWS})")
    p.add_argument("--users-per-batch", type=int, default=BACKFILL_USERS, metavar="USERS",
                   help="users per transaction for a condition judged once per user "
                        f"(default {BACKFILL_USERS})")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("reconcile", help="award what the triggers could not decide at once "
                                         "(queued rows, time-based badges)")
    add_command_options(p, badges=False, json_out=True)
    p.add_argument("--every", type=float, metavar="SECONDS",
                   help="run a pass every SECONDS until Ctrl-C, a line per pass")
    p.add_argument("--batch-size", type=int, default=RECONCILE_ROWS, metavar="ROWS",
                   help=f"rows per transaction, queued or re-checked (default {RECONCILE_ROWS})")
    p.set_defaults(func=cmd_reconcile)
