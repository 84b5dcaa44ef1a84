"""Tables view: schema/table tree, columns and key, and a grid paged by keyset.

All database work runs in thread workers (group "tables") that post messages; the
handlers here are the only code that touches widgets. Paging state is a core
`Browser`; one page of rows is on screen and in memory at a time.

`core.browse` (and with it psycopg and pglast) is imported where it is used, first by
the worker that loads the tree: this view is on the first screen, which must not wait
for the database driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from ...core.errors import StatementTimeout
from ..db import ConnectionLost, QueryCancelled
from ..messages import ConnectionDropped
from ..state import console_app

if TYPE_CHECKING:
    from ...core import browse

KIND = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
        "f": "foreign table"}


def _rows(estimate: int | None) -> str:
    return "?" if estimate is None else f"~{estimate:,}"


class TablesView(Horizontal):
    BINDINGS = [
        Binding("n", "next_page", "Next"),
        Binding("p", "previous_page", "Prev"),
        Binding("g", "first_page", "First", show=False),
        Binding("G", "last_page", "Last"),
        Binding("s", "sort", "Sort", show=False),
        Binding("slash", "focus_filter", "Filter"),
        Binding("escape", "cancel", "Cancel query / leave the filter", show=False),
        Binding("r", "reload", "Reload", show=False),
    ]
    HELP = (("Enter", "open the table under the cursor in the tree"),
            ("click a header", "sort by that column (again: descending, again: off)"))
    PAGING = ("next_page", "previous_page", "first_page", "last_page", "sort")

    @dataclass
    class TreeLoaded(Message):
        entries: list[browse.TableEntry]
        search_path: list[str]
        broken: dict = field(default_factory=dict)  # (schema, table, trigger) -> why

    @dataclass
    class PageLoaded(Message):
        browser: browse.Browser
        page: browse.Page
        new_table: bool

    @dataclass
    class PageFailed(Message):
        message: str
        filter_error: bool = False

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.browser: browse.Browser | None = None
        self.page: browse.Page | None = None
        self.search_path: list[str] = []
        self._grid_after_filter = False  # focus the grid once a filter's page is in

    def compose(self) -> ComposeResult:
        tree: Tree = Tree(Text("database"), id="table-tree")  # Text: no markup parser, no emoji table
        tree.show_root = False
        yield tree
        with Vertical(id="table-pane"):
            yield Static("Pick a table on the left (Enter).", id="table-title")
            yield Static("", id="table-columns")
            with Horizontal(id="filter-bar"):
                yield Static("WHERE ", id="filter-label")
                yield Input(placeholder="a condition on this table's columns; Enter applies, "
                                        "empty clears", id="filter", compact=True)
            yield Static("", id="filter-error")
            yield DataTable(id="grid", zebra_stripes=True, cursor_type="cell")
            yield Static("", id="grid-status")

    def on_mount(self) -> None:
        self.query_one("#grid", DataTable).header_height = 2
        self.query_one("#table-tree", Tree).focus()
        self.call_after_refresh(self.load_tree)  # the first screen does not wait for the driver

    # ---- workers ------------------------------------------------------------------
    def _fail(self, exc: Exception) -> None:
        from ...core import browse

        if isinstance(exc, ConnectionLost):
            self.post_message(ConnectionDropped(str(exc)))
            self.post_message(self.PageFailed("Waiting for the database…"))
        elif isinstance(exc, browse.FilterError):
            self.post_message(self.PageFailed(str(exc), filter_error=True))
        elif isinstance(exc, StatementTimeout):
            self.post_message(self.PageFailed(
                f"Stopped by the statement timeout ({exc.timeout}): the query is too slow; "
                "narrow the WHERE filter or sort by an indexed column.",
                filter_error=bool(self.browser and self.browser.where)))
        elif isinstance(exc, QueryCancelled):
            self.post_message(self.PageFailed(str(exc)))
        else:
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.post_message(self.PageFailed(f"Error: {text}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="tables-tree")
    def load_tree(self) -> None:
        from ...core import browse
        from ...core.catalog import search_path
        from ...core.health import broken_triggers

        try:
            entries, path, broken = console_app(self).db.run(
                "tables", lambda conn: (browse.list_tables(conn), search_path(conn),
                                        broken_triggers(conn)))
        except Exception as exc:  # noqa: BLE001 - every failure becomes a message
            self._fail(exc)
            return
        self.post_message(self.TreeLoaded(entries, path, broken))

    @work(thread=True, exclusive=True, exit_on_error=False, group="tables-page")
    def fetch(self, browser: browse.Browser, move: str, page: browse.Page | None,
              new_table: bool = False) -> None:
        from ...core import browse

        def go(conn):
            if new_table:
                browser.table = browse.describe(conn, browser.table.schema, browser.table.name)
            if move == "first" or page is None:
                return browser.first(conn)
            return {"next": browser.next, "previous": browser.previous}.get(
                move, lambda c, p: browser.last(c))(conn, page)

        try:
            result = console_app(self).db.run("tables", go)
        except Exception as exc:  # noqa: BLE001
            if not get_current_worker().is_cancelled:
                self._fail(exc)
            return
        if not get_current_worker().is_cancelled:
            self.post_message(self.PageLoaded(browser, result, new_table))

    @work(thread=True, group="tables-cancel")
    def _cancel_query(self) -> None:
        console_app(self).db.cancel("tables")

    # ---- handlers -----------------------------------------------------------------
    def on_tables_view_tree_loaded(self, message: TreeLoaded) -> None:
        self.search_path = message.search_path
        tree = self.query_one("#table-tree", Tree)
        tree.clear()
        schemas: dict[str, TreeNode] = {}
        for entry in message.entries:
            if entry.schema not in schemas:
                schemas[entry.schema] = tree.root.add(Text(entry.schema, style="bold"),
                                                      expand=entry.schema in self.search_path)
            label = Text(entry.name)
            label.append(f" {_rows(entry.estimate)}", style="dim")
            if entry.kind != "r":
                label.append(f" {KIND.get(entry.kind, entry.kind)}", style="italic dim")
            if entry.badge_triggers:
                label.append(f" ⚡{len(entry.badge_triggers)}", style="yellow")
                node = schemas[entry.schema].add(label, data=entry)
                for trigger in entry.badge_triggers:
                    if (entry.schema, entry.name, trigger) in message.broken:
                        leaf = Text(f"⚡ {trigger} broken", style="bold red")
                    else:
                        leaf = Text(f"⚡ {trigger}", style="yellow")
                    node.add_leaf(leaf, data=entry)
            else:
                schemas[entry.schema].add_leaf(label, data=entry)
        if not message.entries:
            tree.root.add_leaf("(no tables you may read)")
        self.call_after_refresh(self._cursor_on_first_table)

    def _cursor_on_first_table(self) -> None:
        """Enter opens a table from the first look: the cursor starts on one."""
        tree = self.query_one("#table-tree", Tree)
        if tree.cursor_node is not None and tree.cursor_node.data is not None:
            return
        for line in range(tree.last_line + 1):
            node = tree.get_node_at_line(line)
            if node is not None and node.data is not None:
                tree.cursor_line = line
                return

    @on(Tree.NodeSelected, "#table-tree")
    def _node_selected(self, event: Tree.NodeSelected) -> None:
        from ...core import browse

        entry = event.node.data
        if isinstance(entry, browse.TableEntry):
            self.open_table(entry.schema, entry.name)

    def open_table(self, schema: str, name: str) -> None:
        """Show a table: describe it, then its first page (also used by tests)."""
        from ...core import browse

        info = browse.TableInfo(schema, name, "r", (), (), "key", None)
        self.browser = browse.Browser(info)
        self.page = None
        filter_input = self.query_one("#filter", Input)
        filter_input.value = ""
        self.query_one("#filter-error", Static).update("")
        self.query_one("#table-title", Static).update(Text(f"{schema}.{name}", style="bold"))
        self._start("first", new_table=True)
        self.refresh_bindings()

    def _start(self, move: str, new_table: bool = False) -> None:
        if self.browser is None:
            return
        self.query_one("#grid-status", Static).update(
            Text("Loading…  (Esc cancels)", style="italic"))
        self.fetch(self.browser, move, self.page, new_table)

    def on_tables_view_page_loaded(self, message: PageLoaded) -> None:
        if message.browser is not self.browser:
            return
        self.page = message.page
        grid = self.query_one("#grid", DataTable)
        table = message.browser.table
        if message.new_table or not grid.columns:
            self._show_table_info(table)
        self._fill_grid(grid, message.browser, message.page)
        self.refresh_bindings()
        if self._grid_after_filter:
            self._grid_after_filter = False
            grid.focus()

    def _show_table_info(self, table: browse.TableInfo) -> None:
        from ...core import browse

        title = Text(table.display, style="bold")
        title.append(f"  {KIND.get(table.kind, table.kind)}, {_rows(table.estimate)} rows",
                     style="dim")
        key = {"key": f"primary key ({', '.join(table.key)})",
               "ctid": "no primary key: paged by ctid",
               "offset": "view: paged by OFFSET"}[table.paging]
        title.append(f"  ·  {key}", style="dim")
        self.query_one("#table-title", Static).update(title)
        bf = console_app(self).state.badge_file
        used = browse.badges_using(bf, table, self.search_path) if bf else []
        info = Text("Badges using it: ", style="dim")
        info.append(", ".join(used) if used else "none", style="yellow" if used else "dim")
        info.append(f"  ·  {len(table.columns)} columns", style="dim")
        self.query_one("#table-columns", Static).update(info)

    def _fill_grid(self, grid: DataTable, browser: browse.Browser, page: browse.Page) -> None:
        table = browser.table
        cursor = grid.cursor_coordinate
        grid.clear(columns=True)
        for name in page.columns:
            col = table.column(name)
            label = Text(name, style="bold")
            if col and col.in_key:
                label.append(" key", style="yellow")
            if browser.order.sort == name:
                label.append(" ▼" if browser.order.descending else " ▲")
            label.append("\n" + (col.type if col else ""), style="dim")
            grid.add_column(label, key=name)
        grid.add_rows(page.rows)
        if page.rows and cursor.column < len(page.columns):
            grid.move_cursor(column=cursor.column, row=0, animate=False)
        status = Text(page.range_text, style="bold")
        if browser.order.sort:
            status.append(f"  ·  sorted by {browser.order.sort}"
                          f"{' descending' if browser.order.descending else ''}", style="dim")
        if browser.where:
            status.append(f"  ·  WHERE {browser.where}", style="cyan")
        status.append("   n next  p prev  g first  G last  s sort  / filter", style="dim")
        self.query_one("#grid-status", Static).update(status)

    def on_tables_view_page_failed(self, message: PageFailed) -> None:
        if message.filter_error:
            self.query_one("#filter-error", Static).update(Text(message.message, style="red"))
        self.query_one("#grid-status", Static).update(
            Text(message.message if not message.filter_error else "Filter not applied.",
                 style="red" if not message.filter_error else "dim"))
        if message.filter_error and self.browser is not None:
            self.browser.where = None
        if self._grid_after_filter:  # the corrected text must go into the filter again
            self._grid_after_filter = False
            self.query_one("#filter", Input).focus()

    @on(Input.Submitted, "#filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        from ...core import browse

        if self.browser is None:
            self.query_one("#filter-error", Static).update(
                Text("Pick a table first.", style="red"))
            return
        error = self.query_one("#filter-error", Static)
        try:
            self.browser.set_filter(event.value)
        except browse.FilterError as exc:
            error.update(Text(str(exc), style="red"))
            return
        error.update("")
        self.page = None
        self._grid_after_filter = True
        self._start("first")

    @on(DataTable.HeaderSelected, "#grid")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        self._sort_by(str(event.column_key.value))

    def _sort_by(self, column: str) -> None:
        from ...core import browse

        if self.browser is None:
            return
        order = self.browser.order
        if order.sort != column:
            self.browser.order = browse.Order(column)
        elif not order.descending:
            self.browser.order = browse.Order(column, True)
        else:
            self.browser.order = browse.Order()
        self.page = None
        self._start("first")

    # ---- actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters) -> bool | None:
        """Paging keys show greyed out until a table is open (None: shown, disabled)."""
        if action in self.PAGING and self.browser is None:
            return None
        return True

    def action_next_page(self) -> None:
        if self.page is not None and not self.page.at_end:
            self._start("next")

    def action_previous_page(self) -> None:
        if self.page is not None and not self.page.at_start:
            self._start("previous")

    def action_first_page(self) -> None:
        self._start("first")

    def action_last_page(self) -> None:
        self._start("last")

    def action_sort(self) -> None:
        grid = self.query_one("#grid", DataTable)
        if self.page is None or not grid.columns:
            return
        column = self.page.columns[min(grid.cursor_coordinate.column, len(self.page.columns) - 1)]
        self._sort_by(column)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_cancel(self) -> None:
        if any(w.group == "tables-page" and w.is_running for w in self._my_workers()):
            self._cancel_query()
        elif self.app.focused is self.query_one("#filter", Input):
            self.focus_home()

    def focus_home(self) -> None:
        """The grid once a table is open, the tree before."""
        grid = self.query_one("#grid", DataTable)
        (grid if grid.columns else self.query_one("#table-tree", Tree)).focus()

    def database_changed(self) -> None:
        """Triggers installed or dropped, awards written: counts and triggers again."""
        self.load_tree()

    def action_reload(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Reload the tree and the current page (after a reconnect, or on demand)."""
        self.load_tree()
        if self.browser is not None:
            self._start("first")

    def _my_workers(self):
        return [w for w in self.app.workers if w.node is self]
