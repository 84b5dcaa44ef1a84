"""The global options (--dsn, --badges, --read-only, --json): the same before or after the
command, never silently ignored. argparse lets a command's parser overwrite what the main
parser read, so a command's copies land in dests of their own and are merged after parsing.
"""

from __future__ import annotations

import argparse

from ..core.errors import UsageError

GLOBALS = ("dsn", "badges", "read_only", "json")  # accepted before or after the command
_AFTER = "after_"  # dest prefix of a global option given after the command


def add_global_options(parser: argparse.ArgumentParser, after: bool, badges: bool = True,
                       json_out: bool = False) -> None:
    """--dsn, --badges, --read-only (and --json) on the main parser or on a command's.

    After the command they land in their own dests with SUPPRESS defaults, so a command's
    parser never overwrites what was given before it; merge_global_options reconciles them."""
    dest = (lambda name: _AFTER + name) if after else (lambda name: name)
    default = argparse.SUPPRESS if after else None
    parser.add_argument("--dsn", dest=dest("dsn"), default=default, metavar="DSN",
                        help="libpq URI or key=value string, service= included (default: "
                             "$DATABASE_URL, else libpq's PG* environment, else the "
                             "embedded demo)")
    parser.add_argument("--badges", dest=dest("badges"), default=default, metavar="PATH",
                        help="badges file (default ./badge.json)" if badges
                        else argparse.SUPPRESS)
    parser.add_argument("--read-only", dest=dest("read_only"), action="store_true",
                        default=argparse.SUPPRESS if after else False,
                        help="refuse anything that would change the database or badge.json")
    if json_out or not after:
        parser.add_argument("--json", dest=dest("json"), action="store_true",
                            default=argparse.SUPPRESS if after else False,
                            help="one JSON document on stdout" if after else
                            "one JSON document on stdout (commands that have it)")
    if json_out:
        parser.set_defaults(has_json=True)


def add_command_options(parser: argparse.ArgumentParser, badges: bool = True,
                        json_out: bool = False) -> None:
    """A command's own copy of the global options (and --json when it has JSON output)."""
    add_global_options(parser, after=True, badges=badges, json_out=json_out)


def merge_global_options(args: argparse.Namespace) -> argparse.Namespace:
    """One value per global option, whichever side of the command it was given on.

    Flags are on when given on either side; a value given on both sides must agree."""
    for name in GLOBALS:
        if not hasattr(args, _AFTER + name):
            continue
        after, before = getattr(args, _AFTER + name), getattr(args, name)
        delattr(args, _AFTER + name)
        if isinstance(after, bool):
            setattr(args, name, before or after)
        elif before is not None and before != after:
            option = "--" + name.replace("_", "-")
            raise UsageError(f"{option} is given before and after the command with different "
                             "values; give it once.")
        else:
            setattr(args, name, after)
    if args.json and not getattr(args, "has_json", False):
        what = f"{args.command} has" if args.command else "the console has"
        raise UsageError(f"--json: {what} no JSON output.")
    return args
