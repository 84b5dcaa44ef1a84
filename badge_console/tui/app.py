"""The console: wires the six views, the header and the connection lifecycle.

`run_console(ctx, read_only)` is what `badge-console` (no command) calls. Database work
happens in the views' workers; this module only keeps the connection alive (banner and
reconnect loop when it is lost), guards unsaved edits on quit, tells every view when an
action changed the database, and owns the keys that work everywhere: view switching
(digits; F2-F7 and alt+digit also from text fields), Esc back to the view, `?`/F1 help.

Only the Tables view is imported here: the first screen shows it. The other views'
modules (and the engine and drivers behind them) and styles (views.tcss) are loaded
and the views mounted in their empty tabs after the first screen is drawn, so the app
finds them by id, and imports a view's class only inside a method that runs once the
views are mounted. What the views share (badge.json, read-only, standby…) is
`self.state` (tui/state.py); views reach the app typed through `console_app(self)`.
"""

from __future__ import annotations

import gc
import importlib
import time
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import get_current_worker

from . import settings
from .db import ConnectionLost, Database
from .messages import BadgeFileState, ConnectionDropped, ConnectionRestored, DatabaseChanged
from .messages import ServerInfo
from .state import ConsoleState
from .views.tables import TablesView
from .widgets.confirm import ConfirmScreen
from .widgets.header import StatusHeader
from .widgets.help import HelpScreen, key_rows

# (id, label, key, class in module .views.<id>); Tables is the first screen.
VIEWS = (("tables", "Tables", "1", "TablesView"), ("badges", "Badges", "2", "BadgesView"),
         ("dryrun", "Dry run", "3", "DryRunView"), ("install", "Install", "4", "InstallView"),
         ("feed", "Live feed", "5", "FeedView"), ("awards", "Awards", "6", "AwardsView"))
RECONNECT_EVERY = 2.0


@runtime_checkable
class OffersCommands(Protocol):
    """A view that adds its actions to the command palette."""

    def system_commands(self) -> Iterable[SystemCommand]: ...


def switch_keys(key: str) -> str:
    """The keys that switch to view N also from a text field (which takes digits as text):
    F(N+1), F1 being help, reaches every terminal; alt+N where the terminal reports it as
    such (xterm and tmux send ESC+N, which Textual reads as a character a field takes)."""
    return f"f{int(key) + 1},alt+{key}"



# What is imported by now (Textual, Rich, the first screen's modules: ~60,000 objects)
# lives as long as the process. Frozen, it is no longer rescanned by the full
# collection that the first screen's allocations set off (~30 ms of the first screen).
gc.freeze()


class BadgeConsoleApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "badge-console"
    # Digits switch views outside text fields; alt+digit everywhere (a text field takes
    # digits as text). The tabs show the digits, so the footer keeps its room for the view.
    BINDINGS = [Binding(key, f"show_view('{view_id}')", label, show=False)
                for view_id, label, key, _ in VIEWS] + [
        Binding(switch_keys(key), f"show_view('{view_id}')", f"{label} (also in text fields)",
                show=False, priority=True) for view_id, label, key, _ in VIEWS] + [
        Binding("question_mark", "help", "Help"),
        Binding("f1", "help", "Help", show=False, priority=True),
        Binding("escape", "focus_view", "Back to the view", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, dsn: str, badges_path: Path, database: str, read_only: bool = False,
                 demo: bool = False):
        super().__init__()
        self.db = Database(dsn)
        self.state = ConsoleState(badges_path, database, read_only, demo, self.post_message)
        self.reconnecting = False
        theme = settings.load().get("theme")
        if theme in self.available_themes:
            self.theme = theme

    def compose(self) -> ComposeResult:
        header = StatusHeader()
        header.database = self.state.database
        header.badges_path = str(self.state.badges_path)
        header.read_only = self.state.read_only
        header.file_error = self.state.load_error
        yield header
        with TabbedContent(id="views"):
            for view_id, label, key, _ in VIEWS:
                with TabPane(f"{key} {label}", id=view_id):
                    if view_id == "tables":  # the first screen; the others: _mount_views
                        yield TablesView(id="tables-view")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # After the first screen is drawn: the first query (its worker imports psycopg
        # and connects), then the hidden views.
        self.call_after_refresh(self.fetch_server_info)
        self.call_after_refresh(self._mount_views)

    async def _mount_views(self) -> None:
        """Import the hidden views and their styles, and mount each in its tab."""
        self.stylesheet.read(Path(__file__).with_name("views.tcss"))
        for view_id, _, _, class_name in VIEWS[1:]:
            module = importlib.import_module(f".views.{view_id}", __package__)
            view = getattr(module, class_name)(id=f"{view_id}-view")
            await self.query_one(f"#{view_id}", TabPane).mount(view)

    # ---- views and commands ---------------------------------------------------------
    def action_show_view(self, view_id: str) -> None:
        self.query_one("#views", TabbedContent).active = view_id
        self.action_focus_view()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """A tab clicked: the view's keys work at once (focus leaves the tab bar)."""
        self.call_after_refresh(self.action_focus_view)

    def action_focus_view(self) -> None:
        """Focus the view in front's main widget (Esc, a tab click, a view key)."""
        active = self.query_one("#views", TabbedContent).active
        view = self.query(f"#{active}-view")
        if not view:
            return  # not mounted yet (_mount_views)
        home = getattr(view.first(), "focus_home", None)
        if home is not None:
            home()
            return
        focusable = view.first().query("Tree, DataTable")
        if focusable:
            focusable.first().focus()

    def action_help(self) -> None:
        active = self.query_one("#views", TabbedContent).active
        label = next(label for view_id, label, _, _ in VIEWS if view_id == active)
        view = self.query(f"#{active}-view")
        sections = []
        if view:
            rows = key_rows(self, type(view.first()).BINDINGS)
            rows += list(getattr(view.first(), "HELP", ()))
            sections.append((f"{label} view", rows))
        sections.append(("Everywhere", [
            (" ".join(key for _, _, key, _ in VIEWS), "switch view (outside text fields)"),
            (f"F2 … F{int(VIEWS[-1][2]) + 1}", "switch view, also from a text field "
             "(alt+digit too where the terminal sends it)"),
            ("Esc", "leave a text field, back to the view (or cancel what runs)"),
            ("Tab / shift+Tab", "next / previous field"),
            ("? / F1", "this help"), ("^p", "command palette (every action, by name)"),
            ("^q", "quit (asks when there are unsaved edits)")]))
        self.push_screen(HelpScreen(f"Keys: {label} view", sections))

    def get_system_commands(self, screen):
        for command in super().get_system_commands(screen):
            if command.title != "Keys":  # Textual's key panel: ours is the help screen
                yield command
        yield SystemCommand("Keys", "The keys of the view in front (? or F1)",
                            self.action_help)
        for view_id, label, key, _ in VIEWS:
            yield SystemCommand(f"{label} view", f"Show the {label} view (key {key})",
                                lambda v=view_id: self.action_show_view(v))
        yield SystemCommand("Reload badges file", "Read badge.json again from disk "
                            "(asks first when there are unsaved edits)", self.action_reload_badges)
        for view_id, _, _, _ in VIEWS:  # mounted after the first screen: may not exist yet
            for view in self.query(f"#{view_id}-view"):
                if isinstance(view, OffersCommands):
                    yield from view.system_commands()

    def action_reload_badges(self) -> None:
        from .views.badges import BadgesView

        view = self.query_one("#badges-view", BadgesView)
        if not self.state.dirty:
            view.reload_file()
            return
        self.push_screen(ConfirmScreen(
            "Reload badge.json from disk and discard your unsaved edits?",
            [("reload", "Reload, discard edits", "error"), ("cancel", "Keep editing", "primary")]),
            lambda answer: view.reload_file() if answer == "reload" else None)

    async def action_quit(self) -> None:
        if not self.state.dirty:
            self.exit(0)
            return
        question = f"{self.state.badges_path} has unsaved edits. Quit and lose them?"
        self.push_screen(ConfirmScreen(question, [
            ("quit", "Quit without saving", "error"), ("cancel", "Keep editing", "primary")]),
            lambda answer: self.exit(0) if answer == "quit" else None)

    # ---- connection lifecycle ------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="app-info")
    def fetch_server_info(self) -> None:
        from ..core.catalog import server_version
        from ..core.topology import is_standby

        try:
            version, standby = self.db.run(
                "app", lambda conn: (server_version(conn), is_standby(conn)))
            self.post_message(ServerInfo(version, standby))
        except ConnectionLost as exc:
            self.post_message(ConnectionDropped(str(exc)))

    def on_server_info(self, message: ServerInfo) -> None:
        self.state.standby = message.standby
        header = self.query_one(StatusHeader)
        header.server_version = message.server_version
        header.standby = message.standby

    def on_connection_dropped(self, message: ConnectionDropped) -> None:
        self.query_one(StatusHeader).lost = message.reason
        if not self.reconnecting:
            self.reconnecting = True
            self.reconnect()

    @work(thread=True, exclusive=True, exit_on_error=False, group="app-reconnect")
    def reconnect(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled:
            time.sleep(RECONNECT_EVERY)
            try:
                version = self.db.probe()
            except ConnectionLost:
                continue
            except Exception:  # noqa: BLE001 - any other failure: keep trying
                continue
            self.post_message(ConnectionRestored(version))
            return

    def on_connection_restored(self, message: ConnectionRestored) -> None:
        from .views.badges import BadgesView

        self.reconnecting = False
        header = self.query_one(StatusHeader)
        header.lost = ""
        header.server_version = message.server_version
        self.notify("Reconnected to the database.")
        self.fetch_server_info()  # a failover may have turned a standby into the primary
        self.query_one("#tables-view", TablesView).reload()
        self.query_one("#badges-view", BadgesView).reload()

    def on_badge_file_state(self, message: BadgeFileState) -> None:
        """The shared state's badge.json changed (edited, saved, reloaded)."""
        header = self.query_one(StatusHeader)
        header.dirty = message.dirty
        header.file_error = self.state.load_error
        self._tell_views("file_changed")

    def _tell_views(self, hook: str, source=None) -> None:
        """Call `hook()` on every mounted view that has it (but the one that caused it)."""
        for view_id, _, _, _ in VIEWS:
            for view in self.query(f"#{view_id}-view"):
                method = getattr(view, hook, None)
                if method is not None and view is not source:
                    method()

    def on_database_changed(self, message: DatabaseChanged) -> None:
        """An install, uninstall, backfill or pause: every view shows the new state."""
        self._tell_views("database_changed", message.source_view)

    def watch_theme(self, theme: str) -> None:
        if self.is_running:
            settings.save(theme=theme)

    def deliver_screenshot(self, filename=None, path=None, time_format=None):
        """Saved next to the badges file (or in the current folder), not ~/Downloads,
        which may not exist."""
        parent = self.state.badges_path.parent
        folder = path or (str(parent) if parent.is_dir() else ".")
        try:
            saved = self.save_screenshot(filename, folder, time_format)
        except OSError as exc:
            self.notify(f"Screenshot not saved in {folder}: {exc.strerror}.", severity="error")
            return None
        self.notify(f"Screenshot saved: {saved}")
        return saved

    def on_unmount(self) -> None:
        self.db.close()


def run_console(ctx, read_only: bool = False) -> int:
    app = BadgeConsoleApp(ctx.dsn, ctx.badges_path, ctx.database, read_only=read_only,
                          demo=getattr(ctx, "demo", False))
    code = app.run()
    return code if isinstance(code, int) else (app.return_code or 0)
