"""`demo-traffic`: realistic writes on the embedded demo database, so the triggers award
and the feed has something to show."""

from __future__ import annotations

from .context import open_for_write
from .options import add_command_options
from .output import console
from .signals import stop_on_ctrl_c


def cmd_demo_traffic(args) -> int:
    from ..core.traffic import run_demo_traffic

    ctx = open_for_write(args, "demo-traffic")
    out = console()
    until = f"for {args.seconds:g}s" if args.seconds else "until Ctrl-C"
    out.print(f"Writing demo traffic to {ctx.database}: {args.rate:g} writes/s {until}.",
              markup=False)
    stop, restore = stop_on_ctrl_c()
    try:
        stats = run_demo_traffic(ctx.dsn, rate=args.rate, seconds=args.seconds, stop=stop)
    finally:
        restore()
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.writes.items()))
    out.print(f"Wrote {stats.total} row change(s) in {stats.seconds:.1f}s ({kinds or 'none'}).",
              markup=False)
    return 0


def add_traffic_command(sub) -> None:
    """`demo-traffic` under the main parser's subparsers."""
    p = sub.add_parser("demo-traffic", help="realistic writes on the embedded demo database")
    add_command_options(p, badges=False)
    p.add_argument("--rate", type=float, default=20.0, metavar="N",
                   help="writes per second (default 20)")
    p.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds "
                                                               "(default: at Ctrl-C)")
    p.set_defaults(func=cmd_demo_traffic)
