"""The Awards view on real PostgreSQL: the grid pages by keyset, searches by user and
badge, counts per badge; grant and revoke go through a confirm and change the table (one
notification each); revoke-unqualified previews, then revokes exactly the holders who no
longer qualify; read-only refuses. Snapshots at 80x24 and 140x40."""

from __future__ import annotations

import json

import psycopg
import pytest
from textual.widgets import DataTable, Input

from badge_console.tui.views import awards as awards_module
from badge_console.tui.views.awards import AwardsView
from badge_console.tui.widgets.confirm import ConfirmScreen
from badge_console.tui.widgets.grant_form import GrantForm
from test_tui_support import wait_for
from test_tui_support import (badges_copy, console_db, make_app,  # noqa: F401
                              mask_header, settle, sync)

SIZE = (120, 36)


def fixed_awards(dsn: str) -> None:
    """Awards at fixed times, written straight into the table (as an old install left them)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for code, name, users in (("pionner", "Pionner", 5), ("collector", "Collector", 8),
                                  ("star", "Star", 12)):
            conn.execute(
                "INSERT INTO badges_badge (user_id, name, code, awarded_at)"
                " SELECT u, %s, %s, timestamptz '2026-11-30 12:00:00+00'"
                " + (u * 7 + length(%s)) * interval '1 minute' FROM generate_series(1, %s) AS u",
                (name, code, code, users))


@pytest.fixture
def awarded(console_db):
    fixed_awards(console_db)
    return console_db


def table_awards(dsn: str, code: str | None = None) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT user_id, code FROM badges_badge WHERE code = coalesce(%s,"
                            " code) ORDER BY 1, 2", (code,)).fetchall()


async def open_awards(pilot, app) -> AwardsView:
    await settle(pilot, app)
    await pilot.press("6")
    await settle(pilot, app)
    view = app.query_one(AwardsView)
    await wait_for(pilot, lambda: view.page is not None, "the first page")
    return view


def grid_users(view: AwardsView) -> list[str]:
    grid = view.query_one("#aw-grid", DataTable)
    return [str(grid.get_row_at(i)[1]) for i in range(grid.row_count)]


def status(view: AwardsView) -> str:
    return str(view.query_one("#aw-status").render())


async def answer(pilot, app, screen_type, button: str) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type), screen_type.__name__)
    app.screen.query_one(f"#{button}").press()
    await pilot.pause()


@sync
async def test_grid_pages_newest_first_searches_and_counts(make_app, awarded, monkeypatch):
    monkeypatch.setattr(awards_module, "PAGE", 10)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_awards(pilot, app)
        assert grid_users(view) == [str(u) for u in range(12, 2, -1)]  # star, newest first
        counts = view.query_one("#aw-counts", DataTable)
        assert [tuple(counts.get_row_at(i)[:2]) for i in range(counts.row_count)] == [
            ("Star", "12"), ("Collector", "8"), ("Pionner", "5")]
        assert "page 1" in status(view) and "n older" in status(view)
        await pilot.press("n")
        await wait_for(pilot, lambda: len(view.starts) == 2 and view.page.rows[0].user_id == 2,
                       "page 2")
        assert grid_users(view)[:3] == ["2", "1", "8"]  # then the collectors
        await pilot.press("p")
        await wait_for(pilot, lambda: len(view.starts) == 1 and grid_users(view)[0] == "12",
                       "page 1 again")
        await pilot.press("slash")
        app.query_one("#aw-user", Input).value = "4"
        app.query_one("#aw-badge", Input).value = "coll"
        await pilot.press("enter")
        await wait_for(pilot, lambda: grid_users(view) == ["4"], "user 4's Collector only")
        assert view.page.rows[0].code == "collector"
        assert "search: 4 coll" in status(view)


@sync
async def test_revoke_and_grant_ask_first_and_notify_one_event_each(make_app, awarded):
    app = make_app()
    with psycopg.connect(awarded, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        async with app.run_test(size=SIZE) as pilot:
            view = await open_awards(pilot, app)
            await pilot.press("r")  # the top row: user 12's Star
            await answer(pilot, app, ConfirmScreen, "answer-cancel")
            assert ("12", "star") in [(str(u), c) for u, c in table_awards(awarded)]
            await pilot.press("r")
            await answer(pilot, app, ConfirmScreen, "answer-revoke")
            await wait_for(pilot, lambda: grid_users(view)[0] == "11", "the revoke")
            assert (12, "star") not in table_awards(awarded)
            await pilot.press("g")
            await wait_for(pilot, lambda: isinstance(app.screen, GrantForm), "the grant form")
            app.screen.query_one("#grant-code", Input).value = "pionner"
            app.screen.query_one("#grant-user", Input).value = "30"
            await answer(pilot, app, GrantForm, "grant-ok")
            await answer(pilot, app, ConfirmScreen, "answer-grant")
            await wait_for(pilot, lambda: grid_users(view)[0] == "30", "the grant")
        got = [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    assert [(g["event"], g["user_id"], g["code"]) for g in got] == [
        ("revoke", 12, "star"), ("grant", 30, "pionner")]


@sync
async def test_revoke_unqualified_previews_then_revokes_exactly_the_unqualified(make_app,
                                                                              awarded):
    with psycopg.connect(awarded, autocommit=True) as conn:  # users 1-3 keep 3 sketches each
        conn.execute("ALTER TABLE dummy_sketch DISABLE TRIGGER USER")
        conn.execute("DELETE FROM dummy_sketch WHERE user_id <= 3 AND id NOT IN (SELECT min(id)"
                     " + n FROM dummy_sketch, generate_series(0, 2) AS n GROUP BY user_id, n)")
        conn.execute("ALTER TABLE dummy_sketch ENABLE TRIGGER USER")
        keep = {r[0] for r in conn.execute(
            "SELECT user_id FROM dummy_sketch WHERE user_id <= 8 GROUP BY user_id"
            " HAVING count(*) >= 5").fetchall()}
        pioneers = {r[0] for r in conn.execute(
            "SELECT id FROM auth_user WHERE id <= 5 AND date_joined < now() - interval '1 year'")}
    assert keep == {4, 5, 6, 7, 8} and pioneers == {1, 2, 3, 4, 5}  # the fixed demo
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_awards(pilot, app)
        await pilot.press("u")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the preview")
        question = app.screen.question
        # the demo's sketches have fewer than 1,000 views; its users joined long ago
        assert "collector: 3 of 8 (users 1, 2, 3)" in question
        assert "star: 12 of 12" in question and "pionner" not in question
        assert len(table_awards(awarded)) == 25  # the preview changed nothing
        await answer(pilot, app, ConfirmScreen, "answer-revoke")
        await wait_for(pilot, lambda: not view.running, "the run")
        await settle(pilot, app)
    assert table_awards(awarded) == sorted([(u, "collector") for u in keep]
                                           + [(u, "pionner") for u in pioneers])


@sync
async def test_read_only_refuses_grant_and_revoke(make_app, awarded):
    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_awards(pilot, app)
        await pilot.press("r")
        await pilot.press("g")
        await pilot.pause()
        assert not isinstance(app.screen, (ConfirmScreen, GrantForm))
        assert len(table_awards(awarded)) == 25
        assert view.page is not None


@sync
async def test_django_award_table_shows_time_not_recorded(make_app, console_db):
    with psycopg.connect(console_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE badges_badge DROP COLUMN awarded_at")
        conn.execute("INSERT INTO badges_badge (user_id, name, code) VALUES (3, 'Star', 'star')")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_awards(pilot, app)
        grid = view.query_one("#aw-grid", DataTable)
        assert grid.get_row_at(0)[4] == "time not recorded"
        counts = view.query_one("#aw-counts", DataTable)
        assert counts.get_row_at(0)[2:] == ["time not recorded", "time not recorded"]


def _snapshot(make_app, snap_compare, size):
    async def run_before(pilot) -> None:
        app = pilot.app
        await open_awards(pilot, app)
        for widget in app.query(Input):
            widget.cursor_blink = False
        mask_header(app)
        await pilot.pause()

    return snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_snapshot_awards_view_80x24(make_app, awarded, snap_compare):
    assert _snapshot(make_app, snap_compare, (80, 24))


def test_snapshot_awards_view_140x40(make_app, awarded, snap_compare):
    assert _snapshot(make_app, snap_compare, (140, 40))


@sync
async def test_awards_view_and_its_commands_are_in_the_palette(make_app, awarded):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Awards view", "Awards: grant", "Awards: revoke",
                "Awards: revoke unqualified"} <= set(titles)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Awards view")
        await pilot.pause(0.5)
        await pilot.press("enter")
        view = app.query_one(AwardsView)
        await wait_for(pilot, lambda: view.page is not None, "the first page")
        assert app.query_one("#views").active == "awards"
