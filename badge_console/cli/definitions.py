"""`validate` and `plan`: is badge.json right (alone and against the database), and what
would install create, replace or drop."""

from __future__ import annotations

from pathlib import Path

from .context import Context, load_badges, open_context
from .options import add_command_options
from .output import (PROG, console, emit_json, plan_table, print_problems, series_lines,
                     series_of)


def cmd_validate(args) -> int:
    from ..core.condition import TIME_BASED_NOTE, is_time_based
    from ..core.definitions import check_definitions

    if args.offline:
        ctx = Context("", Path(args.badges or "badge.json"), "no database", demo=False)
        bf = load_badges(ctx)
        problems, against, broken = check_definitions(bf), None, []
    else:
        from ..core.connection import connect
        from ..core.resolve import validate_against_database

        ctx = open_context(args)
        bf = load_badges(ctx)
        with connect(ctx.dsn) as conn:
            res = validate_against_database(conn, bf)
        problems, broken, against = res.problems, res.broken, ctx.database
        for p in res.ignored:  # a disabled badge: install drops it, nothing blocks
            console(stderr=True).print(f"{ctx.badges_path}: warning: {p} (badge disabled)",
                                       markup=False)
    badges = [b for _, b in bf.each_badge()]
    timed = [b.code for b in badges if is_time_based(b)]
    if args.json:
        emit_json({"file": str(ctx.badges_path), "database": against, "valid": not problems,
                   "badges": len(badges), "time_based": timed, "series": _series(bf),
                   "problems": [p.as_dict() | {"text": str(p)} for p in problems],
                   "broken": [p.as_dict() | {"text": str(p)} for p in broken]})
        return 1 if problems or broken else 0
    if problems or broken:
        print_problems(problems, ctx.badges_path)
        print_problems(broken, against)
    else:
        where = f" against {against}" if against else " (file only, --offline)"
        console().print(f"{ctx.badges_path}: {len(badges)} badge(s) valid{where}.",
                        markup=False)
        for line in series_lines(bf):
            console().print(line, markup=False)
    for code in timed:
        console().print(f"note: badge {code} is {TIME_BASED_NOTE} (install --schedule 5m).",
                        markup=False)
    return 1 if problems or broken else 0


def _series(bf) -> dict[str, list[str]]:
    """Series code -> its level codes, for --json."""
    out: dict[str, list[str]] = {}
    for code, (series, _) in series_of(bf).items():
        out.setdefault(series, []).append(code)
    return out


def read_plan(ctx: Context, bf, lock_timeout: str | None = None):
    """The install plan of `bf` on the context's database (what `plan` shows and `install`
    applies), its lock waits bounded by `lock_timeout` when given."""
    from ..core.connection import connect
    from ..core.install import plan_install
    from ..core.waits import READS, Timeouts

    timeouts = Timeouts(lock_timeout, READS.statement) if lock_timeout else READS
    with connect(ctx.dsn) as conn:
        return plan_install(conn, bf, timeouts)


def cmd_plan(args) -> int:
    from ..core.condition import TIME_BASED_NOTE

    ctx = open_context(args)
    bf = load_badges(ctx)
    plan = read_plan(ctx, bf)
    if args.json:
        doc = plan.as_dict() | {"database": ctx.database, "standby": ctx.standby,
                                "file": str(ctx.badges_path), "series": _series(bf)}
        emit_json(doc)
    else:
        out = console()
        out.print(plan_table(plan, series_of(bf)))
        if plan.problems:
            print_problems(plan.problems, ctx.badges_path)
        from ..core.sqlgen import MAX_ERRORS

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
        for warning in plan.warnings:
            out.print(f"[yellow]warning[/]: {warning}", highlight=False)
        out.print(f"{len(plan.changes)} change(s) to apply on {ctx.database}.", markup=False)
        if args.sql:
            out.print(plan.sql_text(), markup=False)
    return 1 if plan.problems else 0


def add_definition_commands(sub) -> None:
    """`validate` and `plan` under the main parser's subparsers."""
    p = sub.add_parser("validate", help="check badge.json (and against the database)")
    add_command_options(p, json_out=True)
    p.add_argument("--offline", action="store_true", help="file checks only, no database")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("plan", help="what install would create, replace or drop")
    add_command_options(p, json_out=True)
    p.add_argument("--sql", action="store_true", help="also print the exact SQL")
    p.set_defaults(func=cmd_plan)
