"""Dry run view on real PostgreSQL: evaluate Collector on 20 rows, dry-run the editor's
unsaved draft, fire the real trigger on three rows and find the database unchanged,
fire refused under read-only, one line for a bad filter, cancel; plus a snapshot."""

from __future__ import annotations

import json

import psycopg
from textual.widgets import DataTable, Input, Select, Static, TextArea

from badge_console.tui.views.dryrun import DRAFT, DryRunView
from test_tui_operator import _view
from test_tui_support import (SIZE, badges_copy, console_db, make_app,  # noqa: F401
                              mask_header, settle, sync, wait_for)


async def _dryrun(pilot, app) -> DryRunView:
    await settle(pilot, app)
    await pilot.press("3")
    await settle(pilot, app)
    return app.query_one(DryRunView)


async def _run(pilot, app, badge: str = "collector", mode: str = "eval", where: str = "",
               limit: str = "20", kind: str = "where") -> None:
    app.query_one("#dr-badge", Select).value = badge
    app.query_one("#dr-mode", Select).value = mode
    app.query_one("#dr-sample-kind", Select).value = kind
    app.query_one("#dr-sample", Input).value = where
    app.query_one("#dr-limit", Input).value = limit
    await pilot.pause()
    await pilot.press("ctrl+g")
    await settle(pilot, app, seconds=40)


async def _edit_collector(pilot, app, condition: str) -> None:
    """Type a new condition for Collector in the Badges editor (not saved), then key 3."""
    await settle(pilot, app)
    await pilot.press("2")
    await settle(pilot, app)
    app.query_one("#badge-list", DataTable).move_cursor(row=1)
    await pilot.pause()
    app.query_one("#f-condition", TextArea).text = condition
    await pilot.pause()
    await pilot.press("3")
    await settle(pilot, app)


def _grid(app) -> list[list[str]]:
    grid = app.query_one("#dr-grid", DataTable)
    return [[str(cell) for cell in grid.get_row_at(i)] for i in range(grid.row_count)]


def _text(app, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def _state(dsn: str) -> dict:
    """What a dry run must never change: rows, awards, triggers, functions, error log.
    (Sequence values fire mode consumed are not returned: PostgreSQL cannot roll them
    back, and the view's notes say so.)"""
    with psycopg.connect(dsn) as conn:
        one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
        return {
            "users": one("SELECT count(*) FROM auth_user"),
            "sketches": one("SELECT count(*) FROM dummy_sketch"),
            "sketch_sum": one("SELECT sum(hit_views) FROM dummy_sketch"),
            "awards": one("SELECT count(*) FROM badges_badge"),
            "triggers": conn.execute("SELECT tgname, tgenabled FROM pg_trigger WHERE NOT "
                                     "tgisinternal ORDER BY 1").fetchall(),
            "functions": one("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON "
                             "n.oid = p.pronamespace WHERE n.nspname = 'badge_console'"),
            "errors": one("SELECT count(*) FROM badge_console.error_log"),
        }


@sync
async def test_collector_evaluated_on_20_rows(make_app, console_db):
    before = _state(console_db)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _dryrun(pilot, app)
        await _run(pilot, app)
        rows = _grid(app)
        assert len(rows) == 20
        assert [r[0] for r in rows] == [str(i) for i in range(1, 21)]
        # sketch i belongs to user 1 + (7 i) mod 40; every demo user has 6+ sketches
        assert [r[1] for r in rows[:3]] == ["8", "15", "22"]
        assert all(r[2] == "no" and r[3] == "true" and r[4] == "✓ award" for r in rows)
        summary = _text(app, "#dr-summary")
        assert "collector (saved) on public.dummy_sketch (insert, evaluate)" in summary
        assert "Would award 20 distinct user(s) out of 20 row(s)." in summary
        assert "rolled back" in _text(app, "#dr-notes-text")
        assert _text(app, "#dr-error") == ""
        app.query_one(DryRunView).action_toggle_explain()
        await pilot.pause()
        assert app.query_one("#dr-explain").display
        assert "Scan" in _text(app, "#dr-explain-text")
    assert _state(console_db) == before


@sync
async def test_draft_with_a_new_threshold_is_dry_run_before_saving(make_app, badges_copy,
                                                                 console_db):
    on_disk = badges_copy.read_bytes()
    with psycopg.connect(console_db) as conn:
        seven = {str(u) for u, in conn.execute(
            "SELECT user_id FROM dummy_sketch GROUP BY 1 HAVING count(*) >= 7")}
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _edit_collector(pilot, app,
                              "count(id) >= 7 from dummy_sketch where user_id = NEW.user_id")
        await _run(pilot, app, badge=DRAFT)
        draft = _grid(app)
        assert "collector (draft)" in _text(app, "#dr-summary")
        winners = {r[1] for r in draft if r[4] == "✓ award"}
        assert winners == {r[1] for r in draft} & seven
        assert 0 < len(winners) < len(draft) and any(r[3] == "false" for r in draft)
        await _run(pilot, app, badge="collector")  # the saved badge still says 5
        assert all(r[4] == "✓ award" for r in _grid(app))
        assert app.state.dirty
    assert badges_copy.read_bytes() == on_disk
    assert json.loads(on_disk)["badges"][1]["condition"].startswith("count(id) >= 5")


@sync
async def test_fire_on_three_rows_leaves_nothing_behind(make_app, console_db):
    before = _state(console_db)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _dryrun(pilot, app)
        app.query_one("#dr-mode", Select).value = "fire"
        await pilot.pause()
        assert "SHARE ROW EXCLUSIVE lock" in _text(app, "#dr-notice")
        await _run(pilot, app, mode="fire", limit="3")
        await wait_for(pilot, lambda: len(_grid(app)) == 3, "the fire run's three rows")
        summary = _text(app, "#dr-summary")
        assert "Fired: 3 row(s) written, the trigger awarded 3 user(s)" in summary
        assert "The real trigger awarded: 8, 15, 22" in summary
        notes = _text(app, "#dr-notes-text")
        assert "bc__ins were disabled" in notes and "rolled back" in notes
    assert _state(console_db) == before


@sync
async def test_fire_is_refused_under_read_only_and_evaluate_works(make_app, console_db):
    before = _state(console_db)
    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _dryrun(pilot, app)
        await _run(pilot, app, mode="fire", limit="3")
        assert "Fire mode is refused" in _text(app, "#dr-notice")
        assert _text(app, "#dr-error").startswith("Fire mode is refused under --read-only")
        assert _grid(app) == []
        await _run(pilot, app, mode="eval", limit="3")
        assert len(_grid(app)) == 3 and _text(app, "#dr-error") == ""
    assert _state(console_db) == before


@sync
async def test_bad_filter_and_bad_rows_show_one_line(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _dryrun(pilot, app)
        await _run(pilot, app, where="user_id = = 3")
        error = _text(app, "#dr-error")
        assert error == 'Not a valid WHERE expression: syntax error at or near "=".'
        assert "\n" not in error and _grid(app) == []
        await _run(pilot, app, where="no_such_column > 1")
        assert _text(app, "#dr-error").startswith(
            'PostgreSQL rejects the WHERE filter: column "no_such_column" does not exist')
        await _run(pilot, app, kind="rows", where='{"user_id": 3,')
        assert _text(app, "#dr-error").startswith("The typed rows are not valid JSON")
        await _run(pilot, app, kind="rows", where='{"user_id": 3, "title": "typed"}')
        assert _text(app, "#dr-error") == ""
        assert [r[1] for r in _grid(app)] == ["3"]


@sync
async def test_a_slow_condition_can_be_cancelled(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _edit_collector(pilot, app, "pg_sleep(1) IS NOT NULL")
        view = app.query_one(DryRunView)
        app.query_one("#dr-badge", Select).value = DRAFT
        await pilot.press("ctrl+g")
        for _ in range(50):  # until the worker is inside the 20 s of pg_sleep
            await pilot.pause(0.1)
            if any(w.group == "dryrun" and w.is_running for w in app.workers):
                break
        await pilot.pause(0.5)
        assert "Evaluating collector (draft)" in _text(app, "#dr-status")
        view.action_cancel()
        await settle(pilot, app)
        assert _text(app, "#dr-error").startswith("Cancelled")
        assert view.running is None
        await _run(pilot, app, limit="2")  # the next run works on a fresh connection
        assert len(_grid(app)) == 2


def test_snapshot_dryrun_results(make_app, snap_compare):
    async def before(pilot) -> None:
        app = pilot.app
        await _dryrun(pilot, app)
        await _run(pilot, app, limit="12")
        for widget in app.query(Input):
            widget.cursor_blink = False
        mask_header(app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=before)


def test_the_view_words_engine_errors_in_its_own_terms():
    """The same sentences the view showed when it rewrote the engine's CLI wording."""
    from badge_console.core.errors import (ChangesNeedUpdate, FilterRejected, SampleNotJson,
                                           SampleRejected, SampleShapeInvalid,
                                           StatementFailure, StatementRefused,
                                           UnknownSampleColumns)
    from badge_console.tui.views.dryrun_form import sentence

    lock, bad = StatementFailure("lock", "canceling statement"), StatementFailure("other", "no")
    said = {sentence(e) for e in (SampleNotJson("rows", "Expecting value", 1, 2),
                                  SampleNotJson("changes", "Expecting value", 1, 2))}
    assert said == {"The typed rows are not valid JSON: Expecting value at line 1, column 2.",
                    "The SET changes are not valid JSON: Expecting value at line 1, column 2."}
    assert sentence(SampleShapeInvalid("rows")) == (
        "The typed rows must be a JSON object or a non-empty list of objects (column: value).")
    assert sentence(SampleShapeInvalid("changes")) == (
        "SET must be a JSON object (column: new value).")
    assert sentence(UnknownSampleColumns("rows", 2, ["a", "b"], "public.t")) == (
        "In typed row 2, a, b is not a column of public.t.")
    assert sentence(UnknownSampleColumns("changes", None, ["v"], "public.t")) == (
        "In SET, v is not a column of public.t.")
    assert sentence(SampleRejected("rows", 3, bad)) == "PostgreSQL rejects typed row 3: no."
    assert sentence(SampleRejected("changes", None, lock)) == (
        "PostgreSQL rejects the SET changes: could not get a table lock in time (the table "
        "is busy); retry when it is quieter.")
    assert sentence(FilterRejected(bad)) == "PostgreSQL rejects the WHERE filter: no."
    assert sentence(ChangesNeedUpdate("insert")) == "SET changes apply to update badges only."
    assert sentence(StatementRefused("Fire mode could not install the trigger for the test, "
                                     "nothing was changed", lock)) == (
        "Fire mode could not install the trigger for the test, nothing was changed: could not "
        "get a table lock in time (the table is busy); retry when it is quieter.")


# ---- met by a new operator (issue 20) ----------------------------------------------------
@sync
async def test_explain_before_any_run_runs_and_shows_the_plan(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "3")
        app.query_one("#dr-badge", Select).value = "collector"
        await pilot.press("ctrl+t")
        await settle(pilot, app)
        assert app.query_one("#dr-results").has_class("-explain")
        assert "EXPLAIN" in _text(app, "#dr-explain-text")


@sync
async def test_sample_rows_show_the_columns_the_condition_reads_first(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "3")
        app.query_one("#dr-badge", Select).value = "star"
        app.query_one(DryRunView).action_run()
        await settle(pilot, app)
        grid = app.query_one("#dr-grid", DataTable)
        assert str(grid.get_row_at(0)[5]).startswith("hit_views=")


@sync
async def test_value_column_forgets_an_old_errors_width(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        app.query_one("#badge-list", DataTable).move_cursor(row=1)
        await pilot.pause()
        area = app.query_one("#f-condition", TextArea)
        good = area.text
        area.text = "NEW.user_id / 0 = 1"  # every row: "✗ division by zero"
        await _view(pilot, app, "3")
        app.query_one("#dr-badge", Select).value = "__draft__"
        app.query_one(DryRunView).action_run()
        await settle(pilot, app)
        grid = app.query_one("#dr-grid", DataTable)
        wide = grid.columns["value"].content_width
        await _view(pilot, app, "2")
        app.query_one("#f-condition", TextArea).text = good
        await _view(pilot, app, "3")
        app.query_one(DryRunView).action_run()
        await settle(pilot, app)
        assert wide > len("value / error") and grid.columns["value"].content_width < wide


@sync
async def test_typed_rows_placeholder_uses_the_badges_table(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "2")
        await _view(pilot, app, "3")
        app.query_one("#dr-badge", Select).value = "pionner"
        app.query_one("#dr-sample-kind", Select).value = "rows"
        sample = app.query_one("#dr-sample", Input)
        await wait_for(pilot, lambda: '"id"' in sample.placeholder, "auth_user's columns")
        assert "title" not in sample.placeholder
