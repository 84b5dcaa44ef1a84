"""The console shell: five views on keys and in the palette, header, quit guard, and a
lost connection shown as a banner and recovered from, never a traceback."""

from __future__ import annotations

import psycopg

from badge_console.tui import app as app_module
from badge_console.tui.views.tables import TablesView
from badge_console.tui.widgets.header import StatusHeader
from test_tui_support import SIZE, badges_copy, console_db, make_app, settle, sync  # noqa: F401


@sync
async def test_views_switch_by_key(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        tabs = app.query_one("#views")
        for key, view in (("2", "badges"), ("3", "dryrun"), ("4", "install"), ("5", "feed"),
                          ("1", "tables")):
            await pilot.press(key)
            await pilot.pause()
            assert tabs.active == view


@sync
async def test_views_are_in_the_command_palette(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for label in ("Tables view", "Badges view", "Dry run view", "Install view",
                      "Live feed view"):
            assert label in titles
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Live feed view")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        assert app.query_one("#views").active == "feed"


@sync
async def test_header_shows_database_version_and_file_never_a_password(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        header = app.query_one(StatusHeader)
        with psycopg.connect(console_db) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        assert header.server_version == version
        assert header.database == "demo-db" and header.badges_path.endswith("badge.json")
        assert not header.dirty


def test_run_console_masks_the_password(console_db, badges_copy, monkeypatch):  # noqa: F811
    from badge_console.cli.context import Context

    seen = {}

    def fake_run(self, *args, **kwargs):
        seen["database"] = self.database
        return 0

    monkeypatch.setattr(app_module.BadgeConsoleApp, "run", fake_run)
    ctx = Context("postgresql://bob:s3cret@127.0.0.1:5432/x", badges_copy,
                  "bob@127.0.0.1:5432/x", demo=False)
    assert app_module.run_console(ctx) == 0
    assert "s3cret" not in seen["database"]


@sync
async def test_quit_with_unsaved_edits_asks_first(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        await settle(pilot, app)
        app.query_one("#f-name").value = "Pioneer"
        await pilot.pause()
        assert app.dirty and app.query_one(StatusHeader).dirty
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.click("#answer-cancel")
        await pilot.pause()
        assert app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.click("#answer-quit")
        await pilot.pause()
    assert app.return_code == 0


@sync
async def test_lost_connection_shows_a_banner_then_reconnects(make_app, console_db,
                                                             monkeypatch):
    monkeypatch.setattr(app_module, "RECONNECT_EVERY", 0.2)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = app.query_one(TablesView)
        view.open_table("public", "dummy_sketch")
        await settle(pilot, app)
        with psycopg.connect(console_db, autocommit=True) as conn:
            # this test's database only: on a shared server other runs' sessions live on
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name = 'badge-console' AND pid <> pg_backend_pid()"
                         " AND datname = current_database()")  # not other tests' backends
        view.action_next_page()
        await settle(pilot, app)
        header = app.query_one(StatusHeader)
        assert header.lost.startswith("Lost the database connection") or app.reconnecting \
            or "Reconnected" in str([n.message for n in app._notifications])
        for _ in range(50):
            await pilot.pause(0.1)
            if not header.lost:
                break
        assert not header.lost and not app.reconnecting
        view.action_next_page()
        await settle(pilot, app)
        assert view.page is not None and view.page.rows


@sync
async def test_palette_lists_view_commands_even_before_views_mount(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        early = [c.title for c in app.get_system_commands(app.screen)]
        assert "Dry run view" in early and "Live feed view" in early
        await settle(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Dry run: run" in titles and "Live feed: pause or resume" in titles
        assert "Install badges" in titles and "Backfill awards" in titles
