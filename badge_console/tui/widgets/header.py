"""The top line: which database (never a password), server version, badges file state,
and a banner while the connection is lost."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static


class StatusHeader(Vertical):
    DEFAULT_CSS = """
    StatusHeader { height: auto; dock: top; }
    StatusHeader #status-line { height: 1; background: $panel; color: $foreground; }
    StatusHeader #lost-banner { height: 1; background: $error; color: $text;
                                text-style: bold; display: none; }
    StatusHeader.-lost #lost-banner { display: block; }
    """

    database: reactive[str] = reactive("")
    server_version: reactive[str] = reactive("…")
    badges_path: reactive[str] = reactive("")
    dirty: reactive[bool] = reactive(False)
    read_only: reactive[bool] = reactive(False)
    standby: reactive[bool] = reactive(False)
    lost: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Static(id="status-line")
        yield Static(id="lost-banner")

    def _line(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" badge-console ", style="bold reverse")
        text.append("  db ", style="dim")
        text.append(self.database, style="bold")
        text.append("  PostgreSQL ", style="dim")
        text.append(self.server_version)
        if self.standby:
            text.append("  standby (read-only)", style="bold magenta")
        text.append("  badges ", style="dim")
        text.append(self.badges_path)
        if self.dirty:
            text.append("  ● unsaved edits", style="bold yellow")
        else:
            text.append("  saved", style="dim green")
        if self.read_only:
            text.append("  READ-ONLY", style="bold magenta")
        return text

    def _refresh_line(self) -> None:
        if self.is_mounted:
            self.query_one("#status-line", Static).update(self._line())

    def on_mount(self) -> None:
        self._refresh_line()

    def watch_database(self) -> None:
        self._refresh_line()

    def watch_server_version(self) -> None:
        self._refresh_line()

    def watch_badges_path(self) -> None:
        self._refresh_line()

    def watch_dirty(self) -> None:
        self._refresh_line()

    def watch_read_only(self) -> None:
        self._refresh_line()

    def watch_standby(self) -> None:
        self._refresh_line()

    def watch_lost(self, reason: str) -> None:
        self.set_class(bool(reason), "-lost")
        if self.is_mounted:
            self.query_one("#lost-banner", Static).update(
                Text(f" ⚠ {reason}  Reconnecting…", no_wrap=True, overflow="ellipsis"))
