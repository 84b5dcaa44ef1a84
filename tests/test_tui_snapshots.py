"""Snapshots of every view on the fixed demo (40 users, 250 sketches, demo badges
installed). The header's server version and badges path are masked; the database is
named "demo-db" by the test; times are shown in UTC."""

from __future__ import annotations

import pytest
from textual.widgets import Input, TextArea

from badge_console.tui.views.tables import TablesView
from test_tui_support import (SIZE, badges_copy, console_db, make_app,  # noqa: F401
                              mask_header, settle)


def _steady(app) -> None:
    for widget in app.query(Input):
        widget.cursor_blink = False
    for widget in app.query(TextArea):
        widget.cursor_blink = False
    mask_header(app)


def _before(view_key: str | None = None, then=None):
    async def run_before(pilot) -> None:
        app = pilot.app
        await settle(pilot, app)
        if view_key:
            await pilot.press(view_key)
            await settle(pilot, app)
        if then is not None:
            await then(pilot, app)
            await settle(pilot, app)
        _steady(app)
        await pilot.pause()

    return run_before


async def _open_grid(pilot, app) -> None:
    app.query_one(TablesView).open_table("public", "dummy_sketch")
    await settle(pilot, app)
    app.query_one("#grid").focus()


async def _catalog_read(pilot, app) -> None:
    """The editor shows column types once its catalog worker has answered."""
    from badge_console.tui.widgets.badge_editor import BadgeEditor
    from test_tui_support import wait_for

    editor = app.query_one(BadgeEditor)
    await wait_for(pilot, lambda: bool(editor.choices), "the catalog in the editor")


async def _break_condition(pilot, app) -> None:
    from textual.widgets import DataTable

    await _catalog_read(pilot, app)
    app.query_one("#badge-list", DataTable).move_cursor(row=1)
    await pilot.pause()
    app.query_one("#f-condition", TextArea).text = \
        "count(id) >= from dummy_sketch where user_id = NEW.user_id"
    await pilot.press("ctrl+r")


def test_snapshot_tables_view(make_app, snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_before(then=_open_grid))


def test_snapshot_tables_tree_only(make_app, snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_before())


def test_snapshot_badges_view(make_app, snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=_before("2", _catalog_read))


def test_snapshot_badges_editor_with_error(make_app, snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE,
                        run_before=_before("2", then=_break_condition))


# ---- every view at 80x24 and 140x40 (issue 20: every view must work at 80x24) ----------
async def _dry_run_collector(pilot, app) -> None:
    from textual.widgets import Select

    from badge_console.tui.views.dryrun import DryRunView

    app.query_one("#dr-badge", Select).value = "collector"
    await pilot.pause()
    app.query_one(DryRunView).action_run()


async def _feed_live(pilot, app) -> None:
    import asyncio

    from badge_console.tui.views.feed import FeedView

    view = app.query_one(FeedView)
    for _ in range(200):
        if view.state.kind == "caught_up":
            break
        await asyncio.sleep(0.05)


async def _plan_shown(pilot, app) -> None:
    """The plan table sizes its columns from its rows: wait until the view is idle with
    every row of its plan shown (a second plan load clears the table), then a repaint."""
    from badge_console.tui.views.install import InstallView, Job
    from badge_console.tui.widgets.install_plan import PlanTable
    from test_tui_support import wait_for

    view, table = app.query_one(InstallView), app.query_one(PlanTable)
    await wait_for(pilot, lambda: view.busy is Job.IDLE and view.plan is not None
                   and table.row_count == len(view.plan.items), "the install plan's rows")
    await pilot.pause()
    await pilot.pause()


VIEW_STEPS = {"tables": ("1", _open_grid), "badges": ("2", _catalog_read),
              "dryrun": ("3", _dry_run_collector), "install": ("4", _plan_shown),
              "feed": ("5", _feed_live)}
EVERY_VIEW = pytest.mark.parametrize("view", list(VIEW_STEPS))


@EVERY_VIEW
def test_snapshot_every_view_at_80x24(make_app, snap_compare, view):
    key, then = VIEW_STEPS[view]
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=_before(key, then))


@EVERY_VIEW
def test_snapshot_every_view_at_140x40(make_app, snap_compare, view):
    key, then = VIEW_STEPS[view]
    assert snap_compare(make_app(), terminal_size=(140, 40), run_before=_before(key, then))


def test_a_wait_that_times_out_fails_the_snapshot_instead_of_hanging():
    """A snapshot whose run_before waits in vain must fail (CI once hung here for an hour:
    Textual's autopilot exits the app on an Exception only)."""
    from textual._doc import take_svg_screenshot
    from textual.app import App

    from test_tui_support import wait_for

    async def never(pilot) -> None:
        await wait_for(pilot, lambda: False, "what never comes", timeout=0.5)

    with pytest.raises(AssertionError, match="what never comes"):
        take_svg_screenshot(App(), terminal_size=(40, 10), run_before=never)


async def _series_in_editor(pilot, app) -> None:
    from textual.widgets import DataTable

    await _catalog_read(pilot, app)
    table = app.query_one("#badge-list", DataTable)
    table.move_cursor(row=table.row_count - 2)  # the series' second level: its editor
    await pilot.pause()


def test_snapshot_badges_editor_with_a_series(make_app, snap_compare, badges_copy):
    from test_tui_levels import with_series

    with_series(badges_copy)
    assert snap_compare(make_app(), terminal_size=SIZE,
                        run_before=_before("2", then=_series_in_editor))
