"""Commands about awards: watch them arrive, backfill them, dry-run what a badge would
award, and make demo traffic that earns them. Split from cli.py (argument parsing, exit
codes and the definition commands) and imported only when one of these commands runs.
"""

from __future__ import annotations

import os
import sys
from collections import Counter

from .cli import Context, _console, _load, emit_json, open_context, open_for_write
from .core.errors import DefinitionError, ReadOnlyRefused, UsageError


EVENT_MARK = {"award": "", "grant": "  + granted", "revoke": "  - revoked"}


def _award_line(award) -> str:
    when = (award.at or award.awarded_at or "")[:19].replace("T", " ") or "-" * 19
    event = f"event #{award.event_id}  " if award.event_id is not None else ""
    return (f"{when}  {event}#{award.id}  user {award.user_id}  {award.name} ({award.code})  "
            f"{award.table or '-'} {award.op or 'catch-up'}{EVENT_MARK.get(award.event, '')}")


def cmd_watch(args) -> int:
    from .core.feed import AwardListener, PollSource

    if args.poll is not None and not args.poll > 0:
        raise UsageError("--poll takes a number of seconds above 0, e.g. --poll 2.")
    ctx = open_context(args)
    try:  # only for the channel and award table when nothing is installed yet
        bf = _load(ctx) if ctx.badges_path.exists() else None
    except DefinitionError:
        bf = None
    out, err = sys.stdout, _console(stderr=True)
    started: list = []
    counts: Counter = Counter()

    def on_award(award) -> None:  # the payload is already the JSON document to print
        counts[award.event] += 1
        out.write((award.payload if args.json else _award_line(award)) + "\n")
        out.flush()

    def on_state(state) -> None:
        polling = isinstance(listener.source, PollSource)
        if state.kind == "caught_up" and not started:
            started.append(True)
            earlier = f"; {state.count} event(s) above #{args.since} shown" \
                if args.since is not None else ""
            what = f"awards on {ctx.database}: {state.detail}" if polling else \
                f"channel {listener.channel} on {ctx.database}"
            err.print(f"Watching {what}{earlier}. Ctrl-C to stop.", markup=False)
        elif state.kind == "caught_up":
            how = f" ({state.detail})" if polling else ""
            err.print(f"Reconnected{how}; caught up {state.count} award(s) and revocation(s) "
                      "made meanwhile.",
                      markup=False)
        elif state.kind == "reconnecting":
            err.print(f"Connection lost ({state.detail}).", markup=False)

    listener = AwardListener(ctx.dsn, on_award, on_state, since=args.since, badge_file=bf,
                             poll=args.poll)
    try:
        listener.run()
    except KeyboardInterrupt:
        err.print(f"Stopped: {counts['award']} award(s), {counts['grant']} grant(s), "
                  f"{counts['revoke']} revocation(s) shown.", markup=False)
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


def run_backfill(ctx: Context, bf, batch_size: int, show_progress: bool = True):
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


def backfill_summary(ctx: Context, result) -> str:
    per = ", ".join(f"{i.code} {i.awarded}" for i in result.items if i.applicable)
    if result.cancelled:
        return (f"Backfill cancelled on {ctx.database} after {result.awarded} award(s); "
                "run it again to continue (nobody is awarded twice).")
    return f"Backfill on {ctx.database}: {result.awarded} award(s) granted ({per or 'none'})."


def cmd_backfill(args) -> int:
    from .core.backfill import preview_backfill
    from .core.connection import connect

    ctx = open_context(args) if args.dry_run else open_for_write(args, "backfill")
    bf = _load(ctx)
    with connect(ctx.dsn) as conn:
        preview = preview_backfill(conn, bf)
    out = _console()
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
    result = run_backfill(ctx, bf, args.batch_size, show_progress=not args.json)
    for item, seen in zip(result.items, preview.items):
        item.would_award, item.sample = seen.would_award, seen.sample
    if args.json:
        emit_json(result.as_dict() | {"database": ctx.database})
    else:
        out.print(backfill_summary(ctx, result), markup=False)
    return 130 if result.cancelled else 0


def cmd_demo_traffic(args) -> int:
    from .core.traffic import run_demo_traffic

    ctx = open_for_write(args, "demo-traffic")
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
    from .core.dryrun import dry_run
    from .core.sample_rows import Sample, parse_json_changes, parse_json_rows

    if args.mode == "fire" and args.read_only:
        raise ReadOnlyRefused(
            "Refused under --read-only: fire mode creates the trigger and writes the sample "
            "rows (rolled back, but it locks the table and consumes sequence values); use "
            "--mode eval.")
    rows = parse_json_rows(args.rows) if args.rows is not None else None
    changes = parse_json_changes(args.set) if args.set is not None else None
    ctx = open_for_write(args, "dry-run --mode fire") if args.mode == "fire" \
        else open_context(args)
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
        emit_json(result.as_dict() | {"database": ctx.database, "standby": ctx.standby,
                                      "file": str(ctx.badges_path)})
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


def _pass_line(ctx: Context, result) -> str:
    left = f"; {result.queued} row(s) left queued (a writer holds their lock; next pass)" \
        if result.queued else ""
    return (f"{result.finished_at[:19].replace('T', ' ')}  reconcile on {ctx.database}: "
            f"{result.awarded} award(s) ({result.awarded_from_queue} from the queue, "
            f"{result.awarded_time_based} time-based){left}.")


def cmd_reconcile(args) -> int:
    from .core.connection import connect
    from .core.reconcile import run_pass

    ctx = open_for_write(args, "reconcile")
    out = _console()
    stop, restore = _stop_on_ctrl_c()
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
    from .core.connection import connect
    from .core.reconcile import (JOB_NAME, cron_expression, crontab_line, has_pg_cron,
                                 parse_interval, schedule)

    seconds = parse_interval(interval)
    cron = cron_expression(seconds)
    rounded = "" if seconds % 60 == 0 and seconds >= 60 else \
        f" (cron's finest step is a minute; {interval} rounded)"
    out = _console()
    with connect(ctx.dsn) as conn:
        if has_pg_cron(conn):
            schedule(conn, cron)
            out.print(f"Scheduled reconcile with pg_cron on {ctx.database}: job {JOB_NAME}, "
                      f"'{cron}'{rounded}.", markup=False)
            return
    out.print(f"pg_cron is not installed in {ctx.database}; add this line to the crontab of "
              f"a user whose ~/.pgpass holds the password (crontab -e){rounded}:", markup=False)
    out.print(crontab_line(ctx.dsn, cron), markup=False)
