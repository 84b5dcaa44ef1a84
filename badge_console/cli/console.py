"""No command: the console itself (the TUI). Textual is imported here only, when it opens,
so the headless commands never load it."""

from __future__ import annotations

from .context import open_context


def cmd_console(args) -> int:
    from ..tui.app import run_console

    ctx = open_context(args)
    return run_console(ctx, read_only=args.read_only)
