"""Install view on real PostgreSQL: the plan with statuses and its exact SQL, confirm and
install, refusal while badge.json is invalid, backfill preview then run (exactly the
previewed awards, each notified; twice awards nobody twice; cancel and continue),
uninstall keeps awards, --read-only refuses, unsaved edits are not installed, run-time
errors shown next to the badge; and a snapshot of a plan with SQL and a preview."""

from __future__ import annotations

import json

import psycopg
from textual.widgets import DataTable, Static, TextArea

from badge_console.core.definitions import load_badge_file
from badge_console.core.install import plan_install, uninstall
from badge_console.tui.views import install_workers as install_module
from badge_console.tui.views.install import InstallView
from badge_console.tui.widgets.confirm import ConfirmScreen
from test_tui_support import (SIZE, badges_copy, console_db, make_app,  # noqa: F401
                              mask_header, settle, sync)


def _change_badges(path) -> None:
    """collector outdated, star disabled, veteran new, spring_cleaning orphaned."""
    doc = json.loads(path.read_text())
    badges = doc["badges"]
    badges[1]["condition"] += " and true"
    badges[2]["enabled"] = False
    badges.pop(3)
    badges.append(dict(badges[1], code="veteran", name="Veteran",
                       condition="count(id) >= 8 from dummy_sketch where user_id = NEW.user_id"))
    path.write_text(json.dumps(doc, indent=2))


async def _open(pilot, app) -> InstallView:
    await settle(pilot, app)
    await pilot.press("4")
    await settle(pilot, app)
    return app.query_one(InstallView)


def _plan_rows(app) -> dict[str, tuple[str, str, str]]:
    table = app.query_one("#plan-table", DataTable)
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3]))
            for r in (table.get_row_at(i) for i in range(table.row_count))}


def _text(app, selector: str) -> str:
    return str(app.query_one(selector, Static).render())


def _bc_triggers(dsn) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE 'bc\\_%'"
            " ORDER BY 1")]


def _awards(dsn) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM badges_badge").fetchone()[0]


def _set_key(path, index: int, key: str, value) -> None:
    doc = json.loads(path.read_text())
    doc["badges"][index][key] = value
    path.write_text(json.dumps(doc))


async def _press_without_question(pilot, app, key: str, status: str) -> None:
    """Pressing `key` asks nothing and the status line says `status`."""
    await pilot.press(key)
    await settle(pilot, app)
    assert not isinstance(app.screen, ConfirmScreen)
    assert status in _text(app, "#install-status")


async def _confirm(pilot, app, answer: str) -> None:
    await pilot.pause()
    assert isinstance(app.screen, ConfirmScreen), "a confirmation was expected"
    await pilot.click(f"#answer-{answer}")
    await settle(pilot, app)


@sync
async def test_plan_shows_statuses_actions_and_the_exact_sql(make_app, console_db, badges_copy):
    _change_badges(badges_copy)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        assert _plan_rows(app) == {
            "pionner": ("installed", "unchanged", "-"),
            "collector": ("outdated", "replace", "-"),
            "star": ("disabled", "drop", "-"),
            "veteran": ("missing", "create", "-"),
            "spring_cleaning": ("orphaned", "drop", "-")}
        area = app.query_one("#plan-sql", TextArea)
        with psycopg.connect(console_db) as conn:
            expected = plan_install(conn, load_badge_file(badges_copy)).sql_text()
        assert area.text == expected and area.read_only and area.language == "sql"
        assert 'DROP TRIGGER IF EXISTS "bc__del"' in area.text
        assert "1 create" in _text(app, "#plan-summary")
        assert _text(app, "#install-notice") == ""
        # the highlighted badge's detail says what happens and why
        app.query_one("#plan-table", DataTable).move_cursor(row=1)
        await pilot.pause()
        assert "outdated → replace: definition changed" in _text(app, "#plan-detail")
        # y copies the SQL (the whole text when nothing is selected)
        copied = []
        app.copy_to_clipboard = copied.append
        await pilot.press("y")
        assert copied == [expected]


@sync
async def test_confirm_installs_then_plan_is_up_to_date(make_app, console_db):
    with psycopg.connect(console_db, autocommit=True) as conn:
        uninstall(conn)
    assert _bc_triggers(console_db) == []
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        assert {s for s, a, _ in _plan_rows(app).values()} == {"missing"}
        await pilot.press("i")
        await _confirm(pilot, app, "cancel")
        assert _bc_triggers(console_db) == []
        assert "nothing was changed" in _text(app, "#install-status")
        await pilot.press("i")
        await _confirm(pilot, app, "install")
        assert _bc_triggers(console_db) == ["bc__del", "bc__ins", "bc__upd", "bc__upd"]
        assert "4 created, 0 replaced, 0 dropped" in _text(app, "#install-status")
        assert {a for _, a, _ in _plan_rows(app).values()} == {"unchanged"}
        # nothing left to do: says so, asks nothing
        await _press_without_question(pilot, app, "i", "Nothing to install")


@sync
async def test_invalid_json_refuses_with_the_reason(make_app, console_db, badges_copy):
    badges_copy.write_text('{"badges": [\n  {"name": "x",}\n]}')
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        notice = _text(app, "#install-notice")
        assert notice.startswith("No install possible yet:") and "line 2" in notice
        await _press_without_question(pilot, app, "i", "Nothing was tried")


@sync
async def test_invalid_condition_refuses_and_names_the_badge(make_app, console_db, badges_copy):
    _set_key(badges_copy, 1, "condition",
             "count(id) >= from dummy_sketch where user_id = NEW.user_id")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        assert _plan_rows(app)["collector"][:2] == ("invalid", "none")
        assert "badge #1 (collector), key 'condition'" in _text(app, "#install-notice")
        await _press_without_question(pilot, app, "i",
                                      "1 problem(s), first: badge #1 (collector)")
    assert len(_bc_triggers(console_db)) == 4  # untouched


@sync
async def test_backfill_preview_then_run_awards_exactly_that_many(make_app, console_db):
    assert _awards(console_db) == 0
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await _open(pilot, app)
        await pilot.press("v")
        await settle(pilot, app)
        table = app.query_one("#backfill-table", DataTable)
        would = {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[2])
                 for i in range(table.row_count)}
        assert would["spring_cleaning"] == "-"  # delete badge: not applicable, said so
        assert "not applicable: a delete badge" in str(table.get_row_at(3)[4])
        total = sum(int(v) for v in would.values() if v != "-")
        assert total > 0 and f"Preview: {total} award(s)" in _text(app, "#install-status")
        assert _awards(console_db) == 0  # the preview wrote nothing

        with psycopg.connect(console_db, autocommit=True) as listener:
            listener.execute("LISTEN badge_awarded")
            await pilot.press("b")
            await settle(pilot, app)
            assert str(total) in str(app.screen.query_one("#question", Static).render())
            await _confirm(pilot, app, "run")
            assert _awards(console_db) == total
            notes = [json.loads(n.payload) for n in listener.notifies(timeout=2,
                                                                     stop_after=total)]
        assert len(notes) == total and {n["op"] for n in notes} == {"backfill"}
        assert f"{total} award(s) granted" in _text(app, "#install-status")
        assert view.busy == ""

        # twice: the fresh preview finds nobody, nothing is asked
        await _press_without_question(pilot, app, "b", "Nothing to backfill")
        assert _awards(console_db) == total


@sync
async def test_backfill_cancelled_then_continued_awards_nobody_twice(make_app, console_db,
                                                                      monkeypatch):
    real = install_module.run_backfill
    views = []

    def small_batches(conn, bf, *, progress=None, cancel=None, **_):
        def report(p):
            progress(p)
            if p.rows_done and views and views[0].busy:
                views[0].cancel_event.set()  # as if Esc was pressed after the first batch
        return real(conn, bf, batch_size=20, progress=report, cancel=cancel)

    monkeypatch.setattr(install_module, "run_backfill", small_batches)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        views.append(await _open(pilot, app))
        await pilot.press("v")
        await settle(pilot, app)
        total = int(str(app.query_one("#install-status", Static).render()).split()[1])
        await pilot.press("b")
        await settle(pilot, app)
        await _confirm(pilot, app, "run")
        first = _awards(console_db)
        assert 0 < first < total
        assert "Backfill cancelled after" in _text(app, "#install-status")
        views.clear()
        await pilot.press("b")
        await settle(pilot, app)
        await _confirm(pilot, app, "run")
        assert _awards(console_db) == total
    with psycopg.connect(console_db) as conn:
        assert conn.execute("SELECT count(*) FROM (SELECT user_id, code FROM badges_badge"
                            " GROUP BY 1, 2 HAVING count(*) > 1) d").fetchone()[0] == 0


@sync
async def test_uninstall_shows_sql_removes_triggers_and_keeps_awards(make_app, console_db):
    with psycopg.connect(console_db, autocommit=True) as conn:
        conn.execute("UPDATE dummy_sketch SET hit_views = 5000 WHERE id <= 3")
    awards = _awards(console_db)
    assert awards > 0
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        await pilot.press("u")
        await settle(pilot, app)
        sql_text = app.query_one("#plan-sql", TextArea).text
        assert "DROP SCHEMA \"badge_console\" CASCADE" in sql_text
        assert "uninstall" in _text(app, "#sql-title")
        await _confirm(pilot, app, "uninstall")
        assert "4 trigger(s) and schema badge_console removed" in _text(app, "#install-status")
        assert {s for s, _, _ in _plan_rows(app).values()} == {"missing"}
    assert _bc_triggers(console_db) == []
    assert _awards(console_db) == awards
    with psycopg.connect(console_db) as conn:
        assert conn.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None


@sync
async def test_read_only_refuses_install_uninstall_backfill_but_previews(make_app, console_db):
    app = make_app(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        assert "Read-only" in _text(app, "#install-notice")
        for key, what in (("i", "install"), ("u", "uninstall"), ("b", "backfill")):
            await _press_without_question(
                pilot, app, key, f"Refused under --read-only: {what} would change the database.")
        await pilot.press("v")
        await settle(pilot, app)
        assert "nothing was written" in _text(app, "#install-status")
    assert len(_bc_triggers(console_db)) == 4 and _awards(console_db) == 0


@sync
async def test_unsaved_edits_are_pointed_out_and_not_installed(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        app.state.badge_file.badges[1].condition = "true"  # an edit in the Badges view, unsaved
        app.state.edited()
        await _open(pilot, app)
        assert "unsaved edits" in _text(app, "#install-notice")
        assert _plan_rows(app)["collector"][:2] == ("installed", "unchanged")  # saved file
        await _press_without_question(pilot, app, "i", "Nothing to install")


@sync
async def test_run_time_errors_are_shown_next_to_the_badge(make_app, console_db, badges_copy):
    from badge_console.core.install import install

    _set_key(badges_copy, 2, "condition", "NEW.hit_views / (NEW.hit_views - NEW.hit_views) > 1")
    with psycopg.connect(console_db, autocommit=True) as conn:
        install(conn, load_badge_file(badges_copy))
        for sketch in (1, 2):  # two statements, each skipped on the error and recorded
            conn.execute("UPDATE dummy_sketch SET hit_views = hit_views + 1 WHERE id = %s",
                         (sketch,))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _open(pilot, app)
        assert _plan_rows(app)["star"] == ("installed", "unchanged", "⚠ 2")
        app.query_one("#plan-table", DataTable).move_cursor(row=2)
        await pilot.pause()
        detail = _text(app, "#plan-detail")
        assert "2× skipped on a run-time error, SQLSTATE 22012" in detail
        assert "division by zero" in detail


@sync
async def test_palette_commands_show_the_view_and_act(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        view = app.query_one(InstallView)
        commands = {c.title: c for c in view.system_commands()}
        assert {"Install badges", "Uninstall badges", "Preview backfill",
                "Backfill awards"} <= set(commands)
        commands["Preview backfill"].callback()
        await settle(pilot, app)
        assert app.query_one("#views").active == "install"
        assert "Preview:" in _text(app, "#install-status")


# ---- snapshot -------------------------------------------------------------------------
def test_snapshot_install_plan_sql_and_backfill_preview(make_app, badges_copy, snap_compare):
    _change_badges(badges_copy)

    async def run_before(pilot) -> None:
        app = pilot.app
        await _open(pilot, app)
        await pilot.press("v")
        await settle(pilot, app)
        app.query_one("#plan-table", DataTable).move_cursor(row=1)
        for area in app.query(TextArea):
            area.cursor_blink = False
        mask_header(app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
