"""The top line: which database (never a password), server version, badges file state,
a banner while the connection is lost and one while badge.json cannot be loaded.

At 80 columns the line keeps what matters most (file, its state, READ-ONLY) and drops
the product name and shortens the rest, rather than cutting off the end."""

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
    StatusHeader #file-banner { height: auto; background: $error 70%; color: $text;
                                display: none; }
    StatusHeader.-file-error #file-banner { display: block; }
    """
    NARROW = 110  # columns below which the line is shortened

    database: reactive[str] = reactive("")
    server_version: reactive[str] = reactive("…")
    badges_path: reactive[str] = reactive("")
    dirty: reactive[bool] = reactive(False)
    read_only: reactive[bool] = reactive(False)
    standby: reactive[bool] = reactive(False)
    lost: reactive[str] = reactive("")
    file_error: reactive[str] = reactive("")  # why badge.json is not loaded

    def compose(self) -> ComposeResult:
        yield Static(id="status-line")
        yield Static(id="lost-banner")
        yield Static(id="file-banner")

    def _line(self) -> Text:
        narrow = self.size.width and self.size.width < self.NARROW
        text = Text(no_wrap=True, overflow="ellipsis")
        if not narrow:
            text.append(" badge-console ", style="bold reverse")
        if self.read_only:
            text.append(" READ-ONLY ", style="bold reverse magenta")
        text.append(" badges " if narrow else "  badges ", style="dim")
        text.append(self.badges_path.rsplit("/", 1)[-1] if narrow else self.badges_path)
        if self.file_error:
            text.append(" ✗ not loaded", style="bold red")
        elif self.dirty:
            text.append(" ● unsaved edits", style="bold yellow")
        else:
            text.append(" saved", style="dim green")
        text.append("  db ", style="dim")
        text.append(self.database, style="bold")
        text.append("  PG " if narrow else "  PostgreSQL ", style="dim")
        text.append(self.server_version)
        if self.standby:
            text.append("  standby (read-only)", style="bold magenta")
        return text

    def _refresh_line(self) -> None:
        if self.is_mounted:
            self.query_one("#status-line", Static).update(self._line())

    def on_mount(self) -> None:
        self.query_one("#status-line", Static).update(self._line())
        self._show_file_error()

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

    def on_resize(self) -> None:
        self._refresh_line()

    def watch_file_error(self) -> None:
        self._refresh_line()
        if self.is_mounted:
            self._show_file_error()

    def _show_file_error(self) -> None:
        self.set_class(bool(self.file_error), "-file-error")
        self.query_one("#file-banner", Static).update(Text(f" ✗ {self.file_error}"))

    def watch_lost(self, reason: str) -> None:
        self.set_class(bool(reason), "-lost")
        if self.is_mounted:
            self.query_one("#lost-banner", Static).update(
                Text(f" ⚠ {reason}  Reconnecting…", no_wrap=True, overflow="ellipsis"))
