"""The console as a new operator meets it (issue 20), on real PostgreSQL: a broken
badge.json said on every view, keys that always work (Esc, tab clicks, alt+digit),
80x24, fresh state after every action, help, keys that write ask first, the first
screen, plain words (the Dry run and Live feed details are in their views' files)."""

from __future__ import annotations

import json

import psycopg
import pytest
from textual.widgets import DataTable, Input, Select, Static, TextArea, Tree

from badge_console.tui.views.badges import BadgesView
from badge_console.tui.views.dryrun import DryRunView
from badge_console.tui.views.feed import FeedView
from badge_console.tui.views.tables import TablesView
from badge_console.tui.widgets.header import StatusHeader
from conftest import ROOT
from test_tui_support import wait_for
from test_tui_support import (SIZE, badges_copy, console_db, make_app,  # noqa: F401
                              settle, sync)

SMALL = (80, 24)


def _text(app, selector: str) -> str:
    return str(app.query_one(selector).render())


def _header(app) -> str:
    return "".join(str(w.render()) for w in app.query_one(StatusHeader).query(Static)
                   if w.display)


def _help(app) -> str:
    return str(app.screen.sections)  # what the help screen lists: (heading, [(key, text)])


def _notes(app) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


async def _view(pilot, app, key: str) -> None:
    await settle(pilot, app)
    await pilot.press(key)
    await settle(pilot, app)


def _statuses(app) -> dict[str, str]:
    table = app.query_one("#badge-list", DataTable)
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
            for i in range(table.row_count)}


@pytest.fixture
def broken_file(tmp_path):
    path = tmp_path / "badge.json"
    path.write_text('{"badges": [\n  {"code": "x",}\n]}')
    return path


# ---- 1. a malformed badge.json ----------------------------------------------------------
@sync
async def test_malformed_file_is_a_banner_on_every_view_with_line_and_column(make_app,
                                                                          broken_file):
    app = make_app(badges=broken_file)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        header = _header(app)
        assert "line 2, column 16" in header and "Reload badges file" in header
        assert "saved" not in header and "not loaded" in header
        await _view(pilot, app, "4")
        assert "line 2, column 16" in _header(app)  # the same banner on another view
        broken_file.write_text((ROOT / "badge.json").read_text())  # fixed on disk
        await _view(pilot, app, "3")
        app.action_reload_badges()
        await settle(pilot, app)
        assert "not loaded" not in _header(app) and "saved" in _header(app)
        values = [value for _, value in app.query_one("#dr-badge", Select)._options]
        assert "pionner" in values  # the Dry run's choices follow the reloaded file


@sync
async def test_actions_that_need_the_file_say_why(make_app, broken_file):
    app = make_app(badges=broken_file)
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert "Cannot add a badge" in _text(app, "#editor-message")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Cannot save" in _text(app, "#editor-message")
        assert "line 2, column 16" in _notes(app)
        await _view(pilot, app, "3")
        badge = app.query_one("#dr-badge", Select)
        assert "__draft__" not in str(badge.query_one("SelectCurrent").render())


# ---- 2. keys that always work -------------------------------------------------------------
@sync
async def test_clicking_a_tab_makes_the_views_keys_work(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.click("#--content-tab-badges")
        await settle(pilot, app)
        assert app.focused is not None and app.focused.id == "badge-list"


@sync
async def test_escape_leaves_the_editor_and_the_dry_run_fields(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        app.query_one("#f-condition", TextArea).focus()
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused.id == "badge-list"
        await _view(pilot, app, "3")
        app.query_one("#dr-sample", Input).focus()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.focused, Input)


@sync
async def test_tab_from_the_badge_list_lands_in_the_name_field(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        assert app.focused.id == "badge-list"
        await pilot.press("tab")
        await pilot.press(*"X")
        await pilot.pause()
        assert app.query_one("#f-name", Input).value.endswith("X")


@sync
async def test_f_key_and_alt_digit_switch_view_from_a_text_field(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        area = app.query_one("#f-condition", TextArea)
        area.focus()
        before = area.text
        await pilot.press("f4")  # F1 is help: F2-F6 are views 1-5
        await pilot.pause()
        assert app.query_one("#views").active == "dryrun"
        assert area.text == before  # nothing went into the SQL
        app.query_one("#dr-sample", Input).focus()
        await pilot.press("alt+2")
        await pilot.pause()
        assert app.query_one("#views").active == "badges"


# ---- 3. 80x24 -------------------------------------------------------------------------------
@sync
async def test_80x24_header_keeps_file_unsaved_and_read_only(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=SMALL) as pilot:
        await _view(pilot, app, "2")
        app.query_one("#f-name", Input).value = "Pioneer"
        await pilot.pause()
        line = _text(app, "#status-line")
        assert "badge.json" in line and "unsaved edits" in line and "READ-ONLY" in line


@sync
async def test_80x24_dry_run_shows_mode_and_result_rows(make_app):
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await _view(pilot, app, "3")
        mode = app.query_one("#dr-mode").region
        assert mode.right <= 80 and mode.width >= 10
        assert app.query_one("#dr-grid").region.height >= 3


@sync
async def test_80x24_badges_buttons_are_all_on_screen(make_app):
    app = make_app()
    async with app.run_test(size=SMALL) as pilot:
        await _view(pilot, app, "2")
        editor = app.query_one("#editor").region
        for button in app.query("#editor-buttons Button"):
            assert button.region.right <= editor.right, button.id


# ---- 4. stale state ----------------------------------------------------------------------
@sync
async def test_after_install_badges_list_and_tables_tree_are_fresh(make_app, badges_copy):
    doc = json.loads(badges_copy.read_text())
    # on a table and operation that has no trigger yet, so the tree has one more to show
    doc["badges"].append({"name": "Veteran", "code": "veteran", "trigger_table": "auth_user",
                          "trigger_condition": "insert", "user_field": "id",
                          "condition": "NEW.id > 0"})
    badges_copy.write_text(json.dumps(doc))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        await wait_for(pilot, lambda: _statuses(app).get("veteran") == "missing",
                       "veteran checked as missing")
        await _view(pilot, app, "4")
        await pilot.press("i")
        await settle(pilot, app)
        await pilot.click("#answer-install")
        await settle(pilot, app)
        await settle(pilot, app)
        assert _statuses(app)["veteran"] == "installed"
        tree = app.query_one("#table-tree", Tree)
        labels = [str(n.label) for n in tree.root.children[0].children]
        assert any(label.startswith("auth_user") and "⚡2" in label for label in labels)


@sync
async def test_backfill_table_goes_away_after_uninstall(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "4")
        await pilot.press("v")
        await settle(pilot, app)
        assert app.query_one("#backfill-table").display
        await pilot.press("u")
        await settle(pilot, app)
        await pilot.click("#answer-uninstall")
        table = app.query_one("#backfill-table")
        await wait_for(pilot, lambda: not table.display, "the backfill table to go away")


@sync
async def test_valid_message_goes_when_the_condition_is_edited_and_title_follows(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert "Every badge is valid" in _text(app, "#editor-message")
        app.query_one("#f-condition", TextArea).text = "NEW.date_joined <"
        await pilot.pause()
        assert "Every badge is valid" not in _text(app, "#editor-message")
        app.query_one("#f-name", Input).value = "Pioneer"
        await pilot.pause()
        assert "Pioneer" in _text(app, "#editor-title")


# ---- 5. help ------------------------------------------------------------------------------
@sync
async def test_question_mark_and_f1_show_the_views_keys_and_esc_closes(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "1")
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        text = _help(app)
        for key in ("Prev", "First", "Sort", "Reload"):  # hidden from the footer
            assert key in text
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ != "HelpScreen"
        await _view(pilot, app, "2")
        await pilot.press("f1")
        await pilot.pause()
        text = _help(app)
        assert "Duplicate" in text and "New" in text and "Kill switch" in text
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ != "HelpScreen"
        keys = [c for c in app.get_system_commands(app.screen) if c.title == "Keys"]
        assert len(keys) == 1  # the palette's Keys is this help, which Esc closes
        keys[0].callback()
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert type(app.screen).__name__ != "HelpScreen"


# ---- 6. keys that write ask first --------------------------------------------------------
def _paused(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT to_regclass('badge_console.paused')").fetchone()
        if row[0] is None:
            return False
        return bool(conn.execute("SELECT count(*) FROM badge_console.paused").fetchone()[0])


@sync
async def test_pausing_a_badge_asks_first_and_p_writes_nothing(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        await pilot.press("p")
        await settle(pilot, app)
        assert type(app.screen).__name__ != "ConfirmScreen" and not _paused(console_db)
        await pilot.press("k")
        await pilot.pause()
        assert type(app.screen).__name__ == "ConfirmScreen" and not _paused(console_db)
        await pilot.click("#answer-go")
        await wait_for(pilot, lambda: _paused(console_db), "the pause to be written")
        await settle(pilot, app)
        await wait_for(pilot, lambda: "paused" in _statuses(app)["pionner"], "the paused status")


@sync
async def test_run_and_validate_are_different_keys(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "3")
        view = app.query_one(DryRunView)
        keys = {b.action: b.key for b in view.BINDINGS}
        badges = {b.action: b.key for b in BadgesView.BINDINGS}
        assert keys["run"] != badges["validate"]
        await pilot.press(keys["run"])
        await settle(pilot, app)
        assert app.query_one("#views").active == "dryrun"
        assert app.query_one("#dr-grid", DataTable).row_count > 0


def test_no_view_key_is_taken_by_a_key_that_works_everywhere():
    from badge_console.tui.app import BadgeConsoleApp
    from badge_console.tui.views.awards import AwardsView
    from badge_console.tui.views.install import InstallView

    everywhere = {key for b in BadgeConsoleApp.BINDINGS if b.priority
                  for key in b.key.split(",")}
    for view in (TablesView, BadgesView, DryRunView, InstallView, FeedView, AwardsView):
        for binding in view.BINDINGS:
            for key in binding.key.split(","):
                assert key not in everywhere, (view.__name__, key)


# ---- 7. the first screen -------------------------------------------------------------------
@sync
async def test_first_screen_enter_opens_a_table_and_paging_waits_for_one(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = app.query_one(TablesView)
        assert view.check_action("next_page", ()) is None  # shown greyed, not offered
        await pilot.press("enter")
        await settle(pilot, app)
        assert view.browser is not None and view.page is not None
        assert view.check_action("next_page", ()) is True


@sync
async def test_filter_rejected_by_postgres_keeps_focus_in_the_filter(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.query_one(TablesView).open_table("public", "dummy_sketch")
        await settle(pilot, app)
        await pilot.press("slash")
        await pilot.press(*"hit_views > 'abc'")
        await pilot.press("enter")
        await settle(pilot, app)
        assert "abc" in _text(app, "#filter-error") or _text(app, "#filter-error")
        assert app.focused is app.query_one("#filter", Input)


# ---- 8. words -----------------------------------------------------------------------------
@sync
async def test_timeout_names_the_timeout_that_stopped_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = app.query_one(TablesView)
        view.open_table("public", "dummy_sketch")
        await settle(pilot, app)
        view.browser.timeout = "300ms"
        app.query_one("#filter", Input).value = "pg_sleep(0.05) IS NOT NULL"
        app.query_one("#filter", Input).focus()
        await pilot.press("enter")
        await settle(pilot, app)
        shown = _text(app, "#filter-error") + _text(app, "#grid-status")
        assert "300ms" in shown and "30s" not in shown


@sync
async def test_unreachable_database_in_plain_words(console_db, badges_copy):
    from badge_console.tui.app import BadgeConsoleApp

    app = BadgeConsoleApp("postgresql://nobody@127.0.0.1:1/x", badges_copy, "nowhere")
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        header = _header(app)
        assert "File checks only" not in header
        options = str(app.query_one("#f-trigger_table", Select).query_one(
            "SelectCurrent").render())
        assert "not found" not in options
        await _view(pilot, app, "4")
        await pilot.press("i")
        await pilot.pause()
        assert "install refused" not in _text(app, "#install-status").lower()
        assert "install refused" not in _text(app, "#install-notice").lower()


@sync
async def test_fire_mode_refused_under_read_only_is_said_once(make_app):
    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "3")
        app.query_one("#dr-mode", Select).value = "fire"
        await pilot.pause()
        app.query_one(DryRunView).action_run()
        await pilot.pause()
        assert "refused" in _text(app, "#dr-error").lower()
        assert "read-only" not in _notes(app).lower()


@sync
async def test_screenshot_goes_next_to_the_badges_file(make_app, badges_copy, tmp_path,
                                                      monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home-without-downloads"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.deliver_screenshot()
        await pilot.pause()
        assert list(badges_copy.parent.glob("*.svg"))
        assert "Screenshot saved" in _notes(app)


@sync
async def test_theme_is_remembered(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("BADGE_CONSOLE_DATA_DIR", str(tmp_path / "data"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.theme = "nord"
        await pilot.pause()
    again = make_app()
    assert again.theme == "nord"
