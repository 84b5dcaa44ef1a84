"""Badges view with a series: the list shows it with its levels, the editor has Value
and Levels fields, an untouched series saves byte-identical, level errors show under
the Levels field."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Static, TextArea

from test_levels import SMALL
from test_tui_support import (SIZE, badges_copy, console_db, make_app,  # noqa: F401
                              settle, sync)
from test_tui_badges import _badges, _select, _statuses


def with_series(path) -> bytes:
    doc = json.loads(path.read_text())
    doc["badges"].append(dict(SMALL, code="sketcher", name="Sketcher"))
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path.read_bytes()


@sync
async def test_a_series_lists_its_levels_and_edits_in_value_and_levels(make_app, badges_copy):
    before = with_series(badges_copy)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        statuses = _statuses(app)
        assert list(statuses)[-4:] == ["sketcher", "  bronze", "  silver", "  gold"]
        assert [statuses[c] for c in ("  bronze", "  silver", "  gold")] == ["missing"] * 3
        await _select(pilot, app, "  silver")
        assert app.query_one("#f-value", TextArea).text == SMALL["value"]
        assert app.query_one("#f-levels", TextArea).text == (
            "bronze 2 Collector (bronze)\nsilver 3 Collector (silver)\ngold 5 Collector (gold)")
        assert not app.query_one("#row-condition").display
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        assert not app.state.dirty
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert badges_copy.read_bytes() == before
        app.query_one("#f-levels", TextArea).text = "bronze 2 Collector (bronze)\nsilver 1 S"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        error = str(app.query_one("#e-levels", Static).render())
        assert "line 2: at 1 is not above the line before's 2" in error
        table = app.query_one("#badge-list", DataTable)
        assert str(table.get_row_at(table.row_count - 1)[1]) == "invalid"


@sync
async def test_dry_run_view_shows_the_value_and_the_levels_reached(make_app, badges_copy):
    from test_tui_dryrun import _dryrun, _grid, _run

    with_series(badges_copy)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _dryrun(pilot, app)
        await _run(pilot, app, badge="sketcher", where="user_id = 8", limit="1")
        rows = _grid(app)
        assert len(rows) == 1 and rows[0][1] == "8"
        assert rows[0][3].startswith("value ") and rows[0][3].endswith(
            "→ bronze ✓ silver ✓ gold ✓") and rows[0][4] == "✓ award"


@sync
async def test_the_kill_switch_on_a_level_row_pauses_that_level(make_app, badges_copy,
                                                                 console_db):
    import psycopg

    from helpers import install_file
    from test_tui_support import wait_for

    with_series(badges_copy)
    install_file(console_db, badges_copy)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await _select(pilot, app, "  silver")
        await pilot.press("k")
        await pilot.pause()
        await pilot.click("#answer-go")
        await wait_for(pilot, lambda: "paused" in _statuses(app)["  silver"], "silver paused")
        with psycopg.connect(console_db) as conn:
            assert conn.execute("SELECT code FROM badge_console.paused").fetchall() == [
                ("silver",)]


@sync
async def test_a_new_series_is_made_in_the_editor_and_saved_without_a_condition(
        make_app, badges_copy):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _badges(pilot, app)
        await pilot.press("ctrl+l")
        await settle(pilot, app)
        assert "new_series" in _statuses(app)
        assert not app.query_one("#row-condition").display
        assert app.query_one("#row-value").display and app.query_one("#row-levels").display
        app.query_one("#f-code").value = "writer"
        app.query_one("#f-trigger_table").value = "dummy_sketch"
        await pilot.pause()
        app.query_one("#f-user_field").value = "user_id"
        app.query_one("#f-value", TextArea).text = SMALL["value"]
        app.query_one("#f-levels", TextArea).text = "bronze 2 Writer (bronze)\ngold 5 Writer (gold)"
        await pilot.press("ctrl+r")
        await settle(pilot, app)
        statuses = _statuses(app)
        assert list(statuses)[-3:] == ["writer", "  bronze", "  gold"]
        assert statuses["  bronze"] != "invalid"
        await pilot.press("ctrl+s")
        await settle(pilot, app)
    saved = json.loads(badges_copy.read_text())["badges"][-1]
    assert saved["code"] == "writer" and "condition" not in saved
    assert saved["value"] == SMALL["value"] and saved["user_field"] == "user_id"
    assert [(lv["code"], lv["at"], lv["name"]) for lv in saved["levels"]] == [
        ("bronze", 2, "Writer (bronze)"), ("gold", 5, "Writer (gold)")]
