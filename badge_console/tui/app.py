"""The console: wires the six views, the header and the connection lifecycle.

`run_console(ctx, read_only)` is what `badge-console` (no command) calls. Database work
happens in the views' workers; this module only keeps the connection alive (banner and
reconnect loop when it is lost) and guards unsaved edits on quit.

Only the Tables view is imported here: the first screen shows it. The other views'
modules (and the engine and drivers behind them) and styles (views.tcss) are loaded
and the views mounted in their empty tabs after the first screen is drawn, so the app
finds them by id, not by class.
"""

from __future__ import annotations

import gc
import importlib
import time
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import get_current_worker

from ..core.definitions import BadgeFile, load_badge_file
from ..core.errors import DefinitionError
from .db import ConnectionLost, Database
from .messages import BadgeFileState, ConnectionLost as ConnectionLostMessage
from .messages import ConnectionRestored, ServerInfo
from .views.tables import TablesView
from .widgets.confirm import ConfirmScreen
from .widgets.header import StatusHeader

# (id, label, key, class in module .views.<id>); Tables is the first screen.
VIEWS = (("tables", "Tables", "1", "TablesView"), ("badges", "Badges", "2", "BadgesView"),
         ("dryrun", "Dry run", "3", "DryRunView"), ("install", "Install", "4", "InstallView"),
         ("feed", "Live feed", "5", "FeedView"), ("awards", "Awards", "6", "AwardsView"))
COMMAND_VIEWS = ("dryrun", "install", "feed", "awards")  # views that add commands to the palette
RECONNECT_EVERY = 2.0

# What is imported by now (Textual, Rich, the first screen's modules: ~60,000 objects)
# lives as long as the process. Frozen, it is no longer rescanned by the full
# collection that the first screen's allocations set off (~30 ms of the first screen).
gc.freeze()


def _load(path: Path) -> tuple[BadgeFile | None, str]:
    """The badges file, a new empty one when it does not exist, or why it is unusable."""
    try:
        return load_badge_file(path), ""
    except DefinitionError as exc:
        if exc.problems and exc.problems[0].kind == "missing-file":
            return BadgeFile(badges=[], path=path), ""
        return None, f"{exc} Fix the file, then reload (command palette)."


class BadgeConsoleApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "badge-console"
    BINDINGS = [Binding(key, f"show_view('{view_id}')", label)
                for view_id, label, key, _ in VIEWS] + [
        Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, dsn: str, badges_path: Path, database: str, read_only: bool = False,
                 demo: bool = False):
        super().__init__()
        self.demo = demo  # the embedded demo database: the Live feed offers demo traffic
        self.db = Database(dsn)
        self.badges_path = Path(badges_path)
        self.database = database
        self.read_only = read_only
        self.dirty = False
        self.badge_file, self.badge_file_error = _load(self.badges_path)
        self.reconnecting = False

    def compose(self) -> ComposeResult:
        header = StatusHeader()
        header.database = self.database
        header.badges_path = str(self.badges_path)
        header.read_only = self.read_only
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
        # Nothing to focus while the view is not mounted yet (_mount_views).
        focusable = self.query(f"#{view_id}-view Tree, #{view_id}-view DataTable")
        if focusable:
            focusable.first().focus()

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        for view_id, label, key, _ in VIEWS:
            yield SystemCommand(f"{label} view", f"Show the {label} view (key {key})",
                                lambda v=view_id: self.action_show_view(v))
        yield SystemCommand("Reload badges file", "Read badge.json again from disk "
                            "(asks first when there are unsaved edits)", self.action_reload_badges)
        for view_id in COMMAND_VIEWS:  # mounted after the first screen: may not exist yet
            for view in self.query(f"#{view_id}-view"):
                yield from view.system_commands()  # type: ignore[attr-defined]

    def action_reload_badges(self) -> None:
        view = self.query_one("#badges-view")
        if not self.dirty:
            view.reload_file()
            return
        self.push_screen(ConfirmScreen(
            "Reload badge.json from disk and discard your unsaved edits?",
            [("reload", "Reload, discard edits", "error"), ("cancel", "Keep editing", "primary")]),
            lambda answer: view.reload_file() if answer == "reload" else None)

    async def action_quit(self) -> None:
        if not self.dirty:
            self.exit(0)
            return
        question = f"{self.badges_path} has unsaved edits. Quit and lose them?"
        self.push_screen(ConfirmScreen(question, [
            ("quit", "Quit without saving", "error"), ("cancel", "Keep editing", "primary")]),
            lambda answer: self.exit(0) if answer == "quit" else None)

    # ---- connection lifecycle ------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="app-info")
    def fetch_server_info(self) -> None:
        try:
            self.post_message(ServerInfo(self.db.server_version()))
        except ConnectionLost as exc:
            self.post_message(ConnectionLostMessage(str(exc)))

    def on_server_info(self, message: ServerInfo) -> None:
        self.query_one(StatusHeader).server_version = message.server_version

    def on_connection_lost(self, message: ConnectionLostMessage) -> None:
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
        self.reconnecting = False
        header = self.query_one(StatusHeader)
        header.lost = ""
        header.server_version = message.server_version
        self.notify("Reconnected to the database.")
        for view_id in ("tables", "badges"):
            self.query_one(f"#{view_id}-view").reload()  # type: ignore[attr-defined]

    def on_badge_file_state(self, message: BadgeFileState) -> None:
        self.query_one(StatusHeader).dirty = message.dirty

    def on_unmount(self) -> None:
        self.db.close()


def run_console(ctx, read_only: bool = False) -> int:
    app = BadgeConsoleApp(ctx.dsn, ctx.badges_path, ctx.database, read_only=read_only,
                          demo=getattr(ctx, "demo", False))
    code = app.run()
    return code if isinstance(code, int) else (app.return_code or 0)
