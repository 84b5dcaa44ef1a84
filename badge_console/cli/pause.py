"""`pause`, `resume` and `errors`: the kill switch (stop and restart awarding without DDL)
and the run-time errors the triggers recorded, which can pause a badge by itself."""

from __future__ import annotations

from .context import open_context, open_for_write
from .options import add_command_options
from .output import console, emit_json


def cmd_pause(args, paused: bool = True) -> int:
    from ..core.connection import connect
    from ..core.bookkeeping import set_paused

    ctx = open_for_write(args, "pause" if paused else "resume")
    with connect(ctx.dsn) as conn:
        set_paused(conn, args.code, paused)
    what = f"badge {args.code}" if args.code else "all badges"
    state = "paused: triggers award nothing until resumed" if paused else "resumed"
    console().print(f"{what.capitalize()} {state} on {ctx.database}.", markup=False)
    return 0


def cmd_resume(args) -> int:
    return cmd_pause(args, paused=False)


def cmd_errors(args) -> int:
    from ..core.connection import connect
    from ..core.bookkeeping import clear_errors, read_errors, read_pauses

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
        console().print(f"Cleared {cleared} recorded error(s) of {what} on {ctx.database}.",
                        markup=False)
        return 0
    rows = [e | {"code": code, "auto_paused": bool(pauses.get(code) and pauses[code].auto)}
            for code, groups in errors.items() for e in groups]
    if args.json:
        emit_json({"database": ctx.database, "badges": rows})
        return 0
    out = console()
    for row in rows:
        state = " (auto-paused)" if row["auto_paused"] else ""
        out.print(f"{row['code']}{state}: {row['count']} statement(s), {row['first_at']} .. "
                  f"{row['last_at']}, SQLSTATE {row['sqlstate']}: {row['message']}",
                  markup=False)
    if not rows:
        out.print(f"No run-time errors recorded on {ctx.database}.", markup=False)
    return 0


def add_pause_commands(sub) -> None:
    """`pause`, `resume` and `errors` under the main parser's subparsers."""
    for name, func, text in (("pause", cmd_pause, "stop awarding (one badge or all)"),
                             ("resume", cmd_resume, "restart awarding")):
        p = sub.add_parser(name, help=f"{text}, without DDL")
        add_command_options(p, badges=False)
        p.add_argument("code", nargs="?", help="badge code (default: all badges)")
        p.set_defaults(func=func)

    p = sub.add_parser("errors", help="run-time errors the triggers recorded")
    add_command_options(p, badges=False, json_out=True)
    p.add_argument("code", nargs="?", help="badge code (default: all badges)")
    p.add_argument("--clear", action="store_true", help="delete the recorded errors")
    p.set_defaults(func=cmd_errors)
