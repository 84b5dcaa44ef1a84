"""The Badges view's kill switch (k): pause or resume one badge's trigger.

Pausing sets a flag the trigger reads (no DDL), so it takes effect at once: refused
under --read-only and on a hot standby, asked first otherwise. The write runs in a
thread worker on the view's connection ("badges") and ends in one `KillSwitch.Done`
posted to the view, which says how it went and validates again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from textual.message import Message
from textual.widget import Widget

from ...core.connection import first_line, redact
from ...core.errors import BadgeConsoleError, StandbyRefused
from ...core.bookkeeping import set_paused
from ..db import ConnectionLost
from ..state import console_app
from ..widgets.confirm import ConfirmScreen


class KillSwitch:
    @dataclass
    class Done(Message):
        code: str
        paused: bool
        error: str  # "" when the flag was written

    def __init__(self, view: Widget, say: Callable[[str, str], None]):
        self.view = view
        self.say = say  # the editor's message line: (text, style)

    def toggle(self, code: str, paused: bool) -> None:
        """Ask, then pause `code` (or resume it when `paused`)."""
        state = console_app(self.view).state
        if state.read_only:
            self.say("Pause refused: the console runs with --read-only.", "bold red")
            return
        if state.standby:
            self.say(str(StandbyRefused("pause", state.database)), "bold red")
            return
        pause, database = not paused, state.database
        question = (f"Pause {code} on {database}? Its trigger awards nothing until resumed "
                    "(k again); nothing else changes." if pause else
                    f"Resume {code} on {database}? Its trigger awards again from the next write.")
        verb = "Pause" if pause else "Resume"

        def answer(choice: str | None) -> None:
            if choice != "go":
                self.say(f"{verb} cancelled; nothing was changed.", "yellow")
                return
            self.say(f"{'Pausing' if pause else 'Resuming'} {code}…", "italic")
            self.view.run_worker(partial(self._write, code, pause), thread=True,
                                 exclusive=True, exit_on_error=False, group="badges-pause")

        self.view.app.push_screen(ConfirmScreen(question, [
            ("go", verb, "warning"), ("cancel", "Cancel", "primary")]), answer)

    def _write(self, code: str, pause: bool) -> None:
        """The worker: the flag written, or why not, posted as Done."""
        db = console_app(self.view).db
        try:
            db.run("badges", lambda conn: set_paused(conn, code, pause))
        except (ConnectionLost, BadgeConsoleError) as exc:
            self.view.post_message(self.Done(code, pause, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - never leave "Pausing…" on screen
            detail = redact(first_line(exc), db.dsn)
            self.view.post_message(self.Done(code, pause, f"Pause failed: {detail}."))
            return
        self.view.post_message(self.Done(code, pause, ""))

    @staticmethod
    def result(done: Done) -> tuple[str, str]:
        """What the editor's line says once the write ended: (text, style)."""
        if done.error:
            return done.error, "bold red"
        if done.paused:
            return f"{done.code} paused: its trigger awards nothing until resumed.", "bold red"
        return f"{done.code} resumed.", "green"
