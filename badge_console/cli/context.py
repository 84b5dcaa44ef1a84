"""What every command needs: where the database is (SPEC 4 precedence) and which badges
file, described from a live connection; and the refusal of a write up front."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DatabaseUnreachable, ReadOnlyRefused


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
    from ..core.connection import connect, describe_dsn, describe_server, resolve_dsn

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
    from ..core import demo

    server = demo.start_embedded_server()
    dsn = demo.ensure_demo_database(server.get_uri())
    if not args.badges and not badges.exists():
        badges = demo.DEMO_BADGES
    return Context(dsn, badges, f"embedded demo ({demo.DEMO_DB})", demo=True, server=server)


def open_for_write(args, what: str) -> Context:
    """The context of a command that writes, refused up front under --read-only and on a
    hot standby (before any plan is shown or question asked)."""
    from ..core.connection import connect
    from ..core.topology import require_primary

    if args.read_only:
        raise ReadOnlyRefused(f"Refused under --read-only: {what} would change the database.")
    ctx = open_context(args)
    with connect(ctx.dsn) as conn:
        require_primary(conn, what)
    return ctx


def load_badges(ctx: Context):
    """The badges file of the context, parsed (a DefinitionError when it cannot be)."""
    from ..core.definitions import load_badge_file

    return load_badge_file(ctx.badges_path)
