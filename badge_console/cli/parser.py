"""The argument tree: the main parser with the global options, and each command group's
commands in the order `--help` lists them."""

from __future__ import annotations

import argparse

from .awards import add_awards_commands
from .console import cmd_console
from .definitions import add_definition_commands
from .dryrun import add_dry_run_command
from .install import add_catch_up_commands, add_install_commands
from .options import add_global_options, merge_global_options
from .output import PROG
from .pause import add_pause_commands
from .traffic import add_traffic_command
from .watch import add_watch_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Badges that PostgreSQL itself awards: console and CLI. "
                               "Without a command, opens the console. --dsn, --badges, "
                               "--read-only and --json may be given before or after the "
                               "command.")
    add_global_options(parser, after=False)
    parser.set_defaults(func=cmd_console)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_definition_commands(sub)
    add_install_commands(sub)
    add_pause_commands(sub)
    add_dry_run_command(sub)
    add_watch_command(sub)
    add_catch_up_commands(sub)
    add_traffic_command(sub)
    add_awards_commands(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line parsed, each global option merged to one value."""
    return merge_global_options(build_parser().parse_args(argv))
