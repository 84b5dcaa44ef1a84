"""Command line: argument parsing, exit codes, one-sentence errors, --json.

No SQL is built here: every command calls the engine in badge_console.core. Textual is
imported only when the console itself is opened, so headless commands start fast.

Modules import downwards only: options, output and signals (nothing of the CLI) <
context < the command groups (definitions < install; dryrun, watch, pause, awards, traffic,
console) < parser < this module's `main`.
"""

from __future__ import annotations

import os

from .output import report_failure
from .parser import parse_args
from .signals import end_on_sigterm, restore_sigterm


def main(argv: list[str] | None = None) -> int:
    """Run one command line; the exit code (SPEC 4: 0, 1 failed, 2 usage, 3 unreachable)."""
    dsn, args, previous = None, None, None
    try:
        args = parse_args(argv)
        dsn = args.dsn or os.environ.get("DATABASE_URL")
        if args.command:
            previous = end_on_sigterm()
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = report_failure(exc, args, dsn)
        if code is None:
            raise
        return code
    finally:
        restore_sigterm(previous)
