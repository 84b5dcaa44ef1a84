"""`dry-run`: what a badge would award on sample rows, in a transaction that is always
rolled back (eval: the condition read-only; fire: the real trigger)."""

from __future__ import annotations

from ..core.errors import ReadOnlyRefused
from .context import load_badges, open_context, open_for_write
from .options import add_command_options
from .output import console, emit_json, failure_words


def _dry_run_table(result):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Dry run ({result.mode}) of {result.code} on {result.table}, "
                        f"{result.op}", title_justify="left")
    for column in ("#", "user", "holds", "condition", "would award", "row"):
        table.add_column(column, overflow="fold")
    for r in result.rows:
        value = Text(failure_words(r.error), style="red") if r.error else Text(
            r.reached()) if r.levels else Text({True: "true", False: "false", None: "null"}[
                r.value])
        row = ", ".join(f"{k}={v}" for k, v in r.row.items())
        table.add_row(str(r.index), Text(r.user or "-"), "yes" if r.holds else "no", value,
                      Text("yes", style="green") if r.would_award else Text("no"),
                      Text(row[:80] + ("..." if len(row) > 80 else "")))
    return table


def cmd_dry_run(args) -> int:
    from ..core.connection import connect
    from ..core.dryrun import dry_run
    from ..core.sample_rows import Sample, parse_json_changes, parse_json_rows

    if args.mode == "fire" and args.read_only:
        raise ReadOnlyRefused(
            "Refused under --read-only: fire mode creates the trigger and writes the sample "
            "rows (rolled back, but it locks the table and consumes sequence values); use "
            "--mode eval.")
    rows = parse_json_rows(args.rows) if args.rows is not None else None
    changes = parse_json_changes(args.set) if args.set is not None else None
    ctx = open_for_write(args, "dry-run --mode fire") if args.mode == "fire" \
        else open_context(args)
    bf = load_badges(ctx)
    err, out = console(stderr=True), console()
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
        emit_json(result.as_dict(failure_words) | {"database": ctx.database, "standby": ctx.standby,
                                      "file": str(ctx.badges_path)})
        return 0
    out.print(_dry_run_table(result))
    if result.fire is not None:
        fired = result.fire
        users = ", ".join(a["user_id"] for a in fired.awarded) or "nobody"
        out.print(f"Fire: {fired.written} row(s) written; the trigger awarded: {users}.",
                  markup=False)
        for line in ([f"Write failed: {failure_words(fired.error)}"] if fired.error else []) + [
                f"Trigger error (on_error skip): {e}" for e in fired.trigger_errors]:
            out.print(line, style="red", markup=False)
    if result.explain:
        out.print(f"EXPLAIN (one sample row):\n{result.explain}", markup=False)
    for note in result.notes:
        out.print(f"Note: {note}", style="dim", markup=False)
    out.print(f"{result.summary(failure_words)} ({ctx.database})", markup=False)
    return 0


def add_dry_run_command(sub) -> None:
    """`dry-run` under the main parser's subparsers."""
    p = sub.add_parser("dry-run", help="test a badge on sample rows; always rolled back")
    add_command_options(p, json_out=True)
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
