"""`watch`: a line (or a JSON document) per award, grant and revocation as it is made,
until Ctrl-C; through LISTEN, or by polling where LISTEN cannot work."""

from __future__ import annotations

import os
import sys
from collections import Counter

from ..core.errors import DefinitionError, UsageError
from .context import load_badges, open_context
from .options import add_command_options
from .output import console

EVENT_MARK = {"award": "", "grant": "  + granted", "revoke": "  - revoked"}


def _award_line(award) -> str:
    when = (award.at or award.awarded_at or "")[:19].replace("T", " ") or "-" * 19
    event = f"event #{award.event_id}  " if award.event_id is not None else ""
    return (f"{when}  {event}#{award.id}  user {award.user_id}  {award.name} ({award.code})  "
            f"{award.table or '-'} {award.op or 'catch-up'}{EVENT_MARK.get(award.event, '')}")


def cmd_watch(args) -> int:
    from ..core.feed import AwardListener, PollSource

    if args.poll is not None and not args.poll > 0:
        raise UsageError("--poll takes a number of seconds above 0, e.g. --poll 2.")
    ctx = open_context(args)
    try:  # only for the channel and award table when nothing is installed yet
        bf = load_badges(ctx) if ctx.badges_path.exists() else None
    except DefinitionError:
        bf = None
    out, err = sys.stdout, console(stderr=True)
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


def add_watch_command(sub) -> None:
    """`watch` under the main parser's subparsers."""
    p = sub.add_parser("watch", help="print awards as they are made, until Ctrl-C")
    add_command_options(p, json_out=True)
    p.add_argument("--since", type=int, metavar="ID",
                   help="first print the events (awards, grants, revocations) with a higher "
                        "event id (event_id in --json) that already exist")
    p.add_argument("--poll", type=float, metavar="SECONDS",
                   help="read the events every SECONDS instead of LISTEN (chosen by "
                        "itself on a hot standby and behind a transaction pooler)")
    p.set_defaults(func=cmd_watch)
