"""`awards ...`: list who holds what, grant and revoke by hand, revoke the unqualified.

The engine is badge_console.core.awards and .unqualified, imported only when a command
runs. Every message here words
the engine's typed errors (errors.py) as one sentence for the operator.
"""

from __future__ import annotations

from ..core.batch_sizes import REVOKE_HOLDERS
from ..core.errors import (AwardStateConflict, AwardTableMissing, OperationFailed,
                           UnknownBadge, UnknownUser, UsageError)
from .context import load_badges, open_context, open_for_write
from .options import add_command_options
from .output import confirm, console, emit_json, progress_bar
from .signals import stop_on_ctrl_c


def _badges(ctx):
    """badge.json when there is one (names, the award table); None otherwise."""
    return load_badges(ctx) if ctx.badges_path.exists() else None


def _worded(exc: Exception, ctx) -> OperationFailed:
    """The engine's typed error as the sentence an operator reads."""
    if isinstance(exc, UnknownBadge):
        text = f"There is no badge {exc.code} in {ctx.badges_path}, among the installed " \
               "badges or in the award table; check the code (badge-console plan lists them)."
    elif isinstance(exc, UnknownUser):
        text = f"There is no user {exc.user} in {exc.table}." if exc.table else \
            f"{exc.user!r} cannot be a user id here: the award table's user_id is {exc.type_name}."
    elif isinstance(exc, AwardStateConflict):
        text = f"User {exc.user} already holds badge {exc.code}; nothing was changed." \
            if exc.held else f"User {exc.user} does not hold badge {exc.code}; nothing was changed."
    elif isinstance(exc, AwardTableMissing):
        text = f"The award table {exc.table} does not exist on {ctx.database}; install first."
    else:
        return exc  # type: ignore[return-value]
    return OperationFailed(text)


def cmd_list(args) -> int:
    from rich.table import Table

    from ..core.awards import describe_time as when
    from ..core.awards import list_awards
    from ..core.connection import connect

    ctx = open_context(args)
    try:
        with connect(ctx.dsn) as conn:
            page = list_awards(conn, _badges(ctx), code=args.code, user=args.user,
                               limit=args.limit, before=args.before)
    except (UnknownUser, AwardTableMissing) as exc:
        raise _worded(exc, ctx) from None
    if args.json:
        emit_json(page.as_dict() | {"database": ctx.database})
        return 0
    out = console()
    grid = Table(title=f"Awards in {page.award_table.display}, newest first",
                 title_justify="left")
    for column in ("id", "user", "badge", "code", "awarded"):
        grid.add_column(column, overflow="fold")
    for r in page.rows:
        grid.add_row(str(r.id), str(r.user_id), r.name, r.code, when(r.awarded_at))
    out.print(grid)
    counts = Table(title="Holders per badge", title_justify="left")
    for column in ("badge", "code", "holders", "first award", "last award"):
        counts.add_column(column, overflow="fold")
    for c in page.counts:
        counts.add_row(c.name, c.code, str(c.holders), when(c.first_at), when(c.last_at))
    out.print(counts)
    more = f"; older ones: --before {page.next_before}" if page.next_before else ""
    out.print(f"{len(page.rows)} award(s) shown{more}.", markup=False)
    return 0


def cmd_change(args, grant: bool) -> int:
    from ..core.awards import grant_award, revoke_award
    from ..core.connection import connect

    verb = "grant" if grant else "revoke"
    ctx = open_for_write(args, f"awards {verb}")
    question = (f"Grant badge {args.code} to user {args.user}" if grant else
                f"Revoke badge {args.code} from user {args.user}") + f" on {ctx.database}?"
    confirm(args, f"awards {verb}", question)
    try:
        with connect(ctx.dsn) as conn:
            done = (grant_award if grant else revoke_award)(conn, _badges(ctx), args.code,
                                                             args.user)
    except (UnknownBadge, UnknownUser, AwardStateConflict, AwardTableMissing) as exc:
        raise _worded(exc, ctx) from None
    what = "Granted" if grant else "Revoked"
    to = "to" if grant else "from"
    console().print(f"{what} {done.name} ({done.code}) {to} user {done.user_id} on "
                     f"{ctx.database} (award #{done.award_id}, event #{done.event_id}).",
                     markup=False)
    return 0


def _unqualified_table(result):
    from rich.table import Table

    table = Table(title=f"Holders who no longer qualify ({result.award_table})",
                  title_justify="left")
    done = not result.dry_run
    for column in ("badge", "name", "holders", "unqualified", *(["revoked"] if done else []),
                   "detail"):
        table.add_column(column, overflow="fold")
    for i in result.items:
        more = ", ..." if i.unqualified > len(i.sample) else ""
        detail = i.reason if not i.applicable else (
            f"users {', '.join(map(str, i.sample))}{more}" if i.sample else "all qualify")
        counts = [str(i.unqualified) if i.applicable else "-"]
        if done:
            counts.append(str(i.revoked) if i.applicable else "-")
        table.add_row(i.code, i.name, str(i.holders), *counts, detail)
    return table


def cmd_revoke_unqualified(args) -> int:
    from ..core.connection import connect
    from ..core.unqualified import preview_unqualified, revoke_unqualified

    ctx = open_context(args) if args.dry_run else open_for_write(args, "awards revoke-unqualified")
    bf = load_badges(ctx)
    try:
        with connect(ctx.dsn) as conn:
            preview = preview_unqualified(conn, bf, args.code)
    except (UnknownBadge, AwardTableMissing) as exc:
        raise _worded(exc, ctx) from None
    out = console()
    if args.dry_run or not preview.unqualified:
        if args.json:
            emit_json(preview.as_dict() | {"database": ctx.database})
            return 0
        out.print(_unqualified_table(preview))
        out.print(f"{'Dry run on' if args.dry_run else 'On'} {ctx.database}: "
                  f"{preview.unqualified} award(s) would be revoked; nothing was changed.",
                  markup=False)
        return 0
    if not args.json:
        out.print(_unqualified_table(preview))
    confirm(args, "awards revoke-unqualified",
             f"Revoke {preview.unqualified} award(s) on {ctx.database}?")
    stop, restore = stop_on_ctrl_c()
    bar = progress_bar(disable=args.json)
    tasks: dict = {}

    def progress(p) -> None:
        if p.code not in tasks:
            tasks[p.code] = bar.add_task(p.code, total=max(p.holders, 1))
        bar.update(tasks[p.code], completed=p.done, description=f"{p.code}: {p.revoked} revoked")

    try:
        with connect(ctx.dsn) as conn, bar:
            result = revoke_unqualified(conn, bf, args.code, batch_size=args.batch_size,
                                        progress=progress, cancel=stop)
    finally:
        restore()
    if args.json:
        emit_json(result.as_dict() | {"database": ctx.database})
    else:
        per = ", ".join(f"{i.code} {i.revoked}" for i in result.items if i.applicable)
        state = "cancelled after" if result.cancelled else "done:"
        out.print(f"Revoke-unqualified on {ctx.database} {state} {result.revoked} award(s) "
                  f"revoked ({per or 'none'}).", markup=False)
    return 130 if result.cancelled else 0


def cmd_no_action(args) -> int:
    raise UsageError("awards needs an action: list, grant, revoke or revoke-unqualified "
                     "(badge-console awards --help).")


def add_awards_commands(sub) -> None:
    """`awards list|grant|revoke|revoke-unqualified` under the main parser's subparsers."""
    p = sub.add_parser("awards", help="list, grant and revoke awards")
    add_command_options(p)
    p.set_defaults(func=cmd_no_action)
    cmds = p.add_subparsers(dest="awards_command", metavar="ACTION")

    q = cmds.add_parser("list", help="who holds what, newest first, with counts per badge")
    add_command_options(q, json_out=True)
    q.add_argument("--code", metavar="C", help="only this badge")
    q.add_argument("--user", metavar="U", help="only this user id")
    q.add_argument("--limit", type=int, default=50, metavar="N", help="awards per page "
                                                                       "(default 50)")
    q.add_argument("--before", type=int, metavar="ID", help="the page of awards older than "
                                                            "this id (keyset paging)")
    q.set_defaults(func=cmd_list)

    for name, grant in (("grant", True), ("revoke", False)):
        q = cmds.add_parser(name, help=f"{name} one badge {'to' if grant else 'from'} one "
                                       "user by hand (an event, notified)")
        add_command_options(q)
        q.add_argument("code", help="badge code")
        q.add_argument("user", help="user id")
        q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        q.set_defaults(func=lambda args, g=grant: cmd_change(args, g))

    q = cmds.add_parser("revoke-unqualified",
                        help="revoke holders who no longer satisfy the condition (preview "
                             "first)")
    add_command_options(q, json_out=True)
    q.add_argument("code", nargs="?", help="badge code (default: every badge)")
    q.add_argument("--dry-run", action="store_true", help="only show who would lose it")
    q.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    q.add_argument("--batch-size", type=int, default=REVOKE_HOLDERS, metavar="N",
                   help=f"holders per transaction (default {REVOKE_HOLDERS})")
    q.set_defaults(func=cmd_revoke_unqualified)

