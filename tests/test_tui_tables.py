"""Tables view through the keyboard: tree, paging first/next/last/previous, filter
(good and bad), sort, and cancelling a slow query."""

from __future__ import annotations

from textual.widgets import DataTable, Input, Static, Tree

from badge_console.tui.views.tables import TablesView
from test_tui_support import SIZE, badges_copy, console_db, make_app, settle, sync  # noqa: F401


def _status(app) -> str:
    return str(app.query_one("#grid-status", Static).render())


async def _open_sketches(pilot, app):
    await settle(pilot, app)
    tree = app.query_one("#table-tree", Tree)
    labels = [str(n.label) for n in tree.root.children[0].children]
    row = 1 + next(i for i, label in enumerate(labels) if label.startswith("dummy_sketch"))
    tree.focus()
    tree.move_cursor(tree.root.children[0])
    for _ in range(row):
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot, app)
    return app.query_one(TablesView)


@sync
async def test_tree_shows_estimates_and_badge_triggers(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        public = app.query_one("#table-tree", Tree).root.children[0]
        labels = {str(n.label).split()[0]: n for n in public.children}
        assert str(labels["dummy_sketch"].label) == "dummy_sketch ~250 ⚡3"
        triggers = [str(c.label) for c in labels["dummy_sketch"].children]
        assert triggers == ["⚡ bc__del", "⚡ bc__ins", "⚡ bc__upd"]


@sync
async def test_page_through_to_the_last_row_and_back(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await _open_sketches(pilot, app)
        grid = app.query_one("#grid", DataTable)
        assert grid.row_count == 100 and _status(app).startswith("rows 1–100 of ~250")
        assert "collector, star, spring_cleaning" in str(
            app.query_one("#table-columns", Static).render())
        await pilot.press("n")
        await settle(pilot, app)
        assert grid.get_row_at(0)[0] == "101"
        await pilot.press("G")
        await settle(pilot, app)
        assert grid.get_row_at(grid.row_count - 1)[0] == "250"
        assert _status(app).startswith("rows ~151–250 of ~250")
        await pilot.press("p")
        await settle(pilot, app)
        assert grid.get_row_at(0)[0] == "51"
        await pilot.press("g")
        await settle(pilot, app)
        assert grid.get_row_at(0)[0] == "1" and view.page.at_start


@sync
async def test_filter_applies_and_a_bad_one_says_why_in_one_line(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open_sketches(pilot, app)
        grid = app.query_one("#grid", DataTable)
        error = app.query_one("#filter-error", Static)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"user_id = 8", "enter")
        await settle(pilot, app)
        assert grid.row_count > 0 and all(grid.get_row_at(i)[1] == "8"
                                           for i in range(grid.row_count))
        assert "WHERE user_id = 8" in _status(app) and str(error.render()) == ""
        filter_input = app.query_one("#filter", Input)
        filter_input.value = "user_id = = 8"
        filter_input.focus()
        await pilot.press("enter")
        await settle(pilot, app)
        assert str(error.render()).startswith("Not a valid WHERE expression")
        filter_input.value = "no_such_column > 1"
        filter_input.focus()
        await pilot.press("enter")
        await settle(pilot, app)
        text = str(error.render())
        assert "no_such_column" in text and "does not exist" in text and "\n" not in text
        filter_input.value = "true; DELETE FROM dummy_sketch"
        filter_input.focus()
        await pilot.press("enter")
        await settle(pilot, app)
        assert "one expression" in str(error.render())


@sync
async def test_sort_by_the_cursor_column_and_descending(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await _open_sketches(pilot, app)
        grid = app.query_one("#grid", DataTable)
        grid.focus()
        grid.move_cursor(column=3)
        await pilot.press("s")
        await settle(pilot, app)
        assert view.browser.order.sort == "hit_views" and "sorted by hit_views" in _status(app)
        values = [int(grid.get_row_at(i)[3]) for i in range(grid.row_count)]
        assert values == sorted(values)
        await pilot.press("s")
        await settle(pilot, app)
        values = [int(grid.get_row_at(i)[3]) for i in range(grid.row_count)]
        assert values == sorted(values, reverse=True) and values[0] >= 900


@sync
async def test_a_slow_query_can_be_cancelled(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await _open_sketches(pilot, app)
        app.query_one("#filter", Input).value = "pg_sleep(20) IS NOT NULL"
        app.query_one("#filter", Input).focus()
        await pilot.press("enter")
        await pilot.pause(0.5)
        assert "Loading" in _status(app)
        view.action_cancel()
        await settle(pilot, app, seconds=8)
        assert "cancelled" in _status(app).lower() or "cancel" in str(
            app.query_one("#filter-error", Static).render()).lower()
