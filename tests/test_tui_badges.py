"""Badges view: statuses, editor validation errors next to the field, save (atomic,
conflict on disk, read-only refusal), add, duplicate, delete with confirmation."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Static, TextArea

from badge_console.tui.views.badges import BadgesView
from test_tui_support import (SIZE, badges_copy, console_db, make_app,  # noqa: F401
                              settle, sync, wait_for)


async def _badges(pilot, app) -> BadgesView:
    await settle(pilot, app)
    await pilot.press("2")
    await settle(pilot, app)
    return app.query_one(BadgesView)


def _statuses(app) -> dict[str, str]:
    table = app.query_one("#badge-list", DataTable)
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1])
            for i in range(table.row_count)}


def _error(app, key: str) -> str:
    return str(app.query_one(f"#e-{key}", Static).render())


async def _select(pilot, app, code: str) -> None:
    table = app.query_one("#badge-list", DataTable)
    row = list(_statuses(app)).index(code)
    table.focus()
    table.move_cursor(row=row)
    await pilot.pause()


@sync
async def test_list_shows_install_statuses(make_app, console_db):
    import psycopg

    with psycopg.connect(console_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE dummy_sketch DISABLE TRIGGER USER")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        assert _statuses(app) == {"pionner": "installed, timed", "collector": "disabled-in-db",
                                  "star": "disabled-in-db", "spring_cleaning": "disabled-in-db"}


@sync
async def test_statuses_invalid_outdated_missing_orphaned_disabled(make_app, badges_copy):
    doc = json.loads(badges_copy.read_text())
    badges = doc["badges"]
    badges[0]["condition"] = "NEW.date_joined <"          # invalid
    badges[1]["condition"] += " and true"                 # outdated
    badges[2]["enabled"] = False                          # disabled
    badges.pop(3)                                         # spring_cleaning: orphaned
    badges.append(dict(badges[1], code="more", name="More", condition="true"))  # missing
    badges_copy.write_text(json.dumps(doc))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        assert _statuses(app) == {"pionner": "invalid", "collector": "outdated",
                                  "star": "disabled", "more": "missing",
                                  "spring_cleaning": "orphaned"}
        detail = str(app.query_one("#badge-detail", Static).render())
        assert detail.startswith("invalid: condition:")


@sync
async def test_break_condition_see_error_fix_and_save(make_app, badges_copy):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await _select(pilot, app, "collector")
        area = app.query_one("#f-condition", TextArea)
        assert area.text.startswith("count(id) >= 5") and area.language == "sql"
        area.text = "count(id) >= from dummy_sketch where user_id = NEW.user_id"
        await pilot.pause()
        assert app.state.dirty
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert "syntax error" in _error(app, "condition")
        assert _statuses(app)["collector"] == "invalid"
        area.text = "count(id) >= 5 from dummy_sketch where user_id = NEW.nope"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert "nope" in _error(app, "condition")
        area.text = "count(id) >= 6 from dummy_sketch where user_id = NEW.user_id"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert _error(app, "condition") == "" and _statuses(app)["collector"] == "outdated"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert not app.state.dirty
        saved = json.loads(badges_copy.read_text())
        assert saved["badges"][1]["condition"].startswith("count(id) >= 6")
        assert not list(badges_copy.parent.glob(".badge.json.*"))


@sync
async def test_user_field_choices_follow_the_trigger_table(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await _badges(pilot, app)
        await _select(pilot, app, "pionner")
        options = [v for _, v in view.editor._column_options("auth_user", None)]
        assert "date_joined" in options
        app.query_one("#f-trigger_table").value = "dummy_sketch"
        await pilot.pause()
        badge = app.state.badge_file.badges[0]
        assert badge.trigger_table == "dummy_sketch" and badge.user_field == "id"
        app.query_one("#f-user_field").value = "user_id"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert "date_joined" in _error(app, "condition")


@sync
async def test_save_invalid_asks_first(make_app, badges_copy):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        app.query_one("#f-code").value = "Bad Code"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert "lowercase" in _error(app, "code")
        assert app.screen.__class__.__name__ == "ConfirmScreen"
        await pilot.click("#answer-cancel")
        await pilot.pause()
        assert app.state.dirty and "Bad Code" not in badges_copy.read_text()


@sync
async def test_file_changed_on_disk_offers_reload_or_overwrite(make_app, badges_copy):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        app.query_one("#f-name").value = "Pioneer (mine)"
        doc = json.loads(badges_copy.read_text())
        doc["badges"][0]["name"] = "Pioneer (theirs)"
        badges_copy.write_text(json.dumps(doc))
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert "changed on disk" in str(app.screen.query_one("#question").render())
        await pilot.click("#answer-cancel")
        await pilot.pause()
        assert "theirs" in badges_copy.read_text() and app.state.dirty
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        await pilot.click("#answer-reload")
        await settle(pilot, app)
        assert app.state.badge_file.badges[0].name == "Pioneer (theirs)" and not app.state.dirty
        app.query_one("#f-name").value = "Pioneer (mine)"
        badges_copy.write_text(badges_copy.read_text().replace("theirs", "third"))
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        await pilot.click("#answer-overwrite")
        await settle(pilot, app)
        assert "Pioneer (mine)" in badges_copy.read_text() and not app.state.dirty


@sync
async def test_read_only_refuses_to_save(make_app, badges_copy):
    before = badges_copy.read_text()
    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        app.query_one("#f-name").value = "Changed"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert "--read-only" in str(app.query_one("#editor-message", Static).render())
    assert badges_copy.read_text() == before


@sync
async def test_add_duplicate_and_delete_with_confirmation(make_app, badges_copy):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await _select(pilot, app, "star")
        await pilot.press("ctrl+o")
        await settle(pilot, app)
        assert "star_copy" in _statuses(app)
        assert app.state.badge_file.by_code("star_copy").name == "Star (copy)"
        await pilot.press("ctrl+n")
        await settle(pilot, app)
        assert "new_badge" in _statuses(app)
        assert "non-empty" in _error(app, "condition")
        assert _statuses(app)["new_badge"] == "invalid"
        await _select(pilot, app, "new_badge")
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#answer-cancel")
        await pilot.pause()
        assert "new_badge" in _statuses(app)
        await _select(pilot, app, "new_badge")
        await pilot.press("delete")
        await pilot.pause()
        await pilot.click("#answer-delete")
        await settle(pilot, app)
        assert "new_badge" not in _statuses(app)
        await _select(pilot, app, "star_copy")
        app.query_one("#f-code").value = "star_two"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        if app.screen.__class__.__name__ == "ConfirmScreen":
            await pilot.click("#answer-save")
            await settle(pilot, app)
        codes = [b["code"] for b in json.loads(badges_copy.read_text())["badges"]]
        assert codes == ["pionner", "collector", "star", "spring_cleaning", "star_two"]


@sync
async def test_typing_after_validate_continues_where_the_cursor_was(make_app, badges_copy):
    """Real key presses: validating must not reload the editor under the operator's cursor."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await _select(pilot, app, "collector")
        area = app.query_one("#f-condition", TextArea)
        area.focus()
        await pilot.press("end", "space", "a", "n", "d")
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert "syntax error" in _error(app, "condition")
        assert app.focused is area
        await pilot.press("backspace", "backspace", "backspace", "backspace", "ctrl+r")
        await settle(pilot, app)
        assert area.text == "count(id) >= 5 from dummy_sketch where user_id = NEW.user_id"
        assert _error(app, "condition") == ""


@sync
async def test_pause_and_resume_a_badge_and_see_recorded_errors(make_app, console_db):
    import psycopg

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await _select(pilot, app, "star")
        await pilot.press("k")  # the kill switch asks first
        await pilot.pause()
        await pilot.click("#answer-go")
        await wait_for(pilot, lambda: "paused" in _statuses(app)["star"], "star shown paused")
        with psycopg.connect(console_db) as conn:
            assert conn.execute("SELECT code FROM badge_console.paused").fetchall() == [("star",)]
            conn.execute("INSERT INTO badge_console.error_log (code, sqlstate, message)"
                         " VALUES ('star', '22012', 'division by zero')")
        await pilot.press("k")
        await pilot.pause()
        await pilot.click("#answer-go")
        await wait_for(pilot, lambda: "paused" not in _statuses(app)["star"]
                       and "skipped" in str(app.query_one("#badge-detail", Static).render()),
                       "star resumed, its errors shown")
        detail = str(app.query_one("#badge-detail", Static).render())
        assert "skipped 1 statement(s)" in detail and "division by zero" in detail
        with psycopg.connect(console_db) as conn:
            assert conn.execute("SELECT count(*) FROM badge_console.paused").fetchone()[0] == 0


@sync
async def test_pause_refused_read_only(make_app, console_db):
    import psycopg

    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await _select(pilot, app, "star")
        await pilot.press("k")
        await settle(pilot, app)
        assert "--read-only" in str(app.query_one("#editor-message", Static).render())
    with psycopg.connect(console_db) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.paused").fetchone()[0] == 0
