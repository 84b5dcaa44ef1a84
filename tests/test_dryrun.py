"""Dry run: evaluate a badge on sample rows, or fire its real trigger, and leave no trace."""

from __future__ import annotations

import json
import time

import psycopg
import pytest
from psycopg import sql

from badge_console.core.definitions import Badge, load_badge_file
from badge_console.core.dryrun import dry_run
from badge_console.core.sample_rows import Sample
from badge_console.core.errors import (ChangesNeedUpdate, DefinitionError, FilterError,
                                       FilterRejected, SampleError, SampleRejected,
                                       StatementRefused, UnknownSampleColumns)
from conftest import make_demo
from helpers import ROOT, demo_badge, install_file, run

BADGES = ROOT / "badge.json"
SKETCHES = 410  # users 8, 15, ... 71 own 5 sketches (Collector), every other user 4


@pytest.fixture
def sketches(dsn):
    make_demo(dsn, users=100, sketches=SKETCHES)
    return dsn


@pytest.fixture
def installed(sketches):
    install_file(sketches, BADGES)
    return sketches


def go(dsn, badge, sample=None, **kwargs):
    with psycopg.connect(dsn) as conn:
        return dry_run(conn, load_badge_file(BADGES), badge, sample or Sample(), **kwargs)


def draft(code="collector", **changes) -> Badge:
    return Badge.from_dict(demo_badge(code, **changes))


def snapshot(dsn) -> dict:
    """Everything a dry run must leave as it was."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        rows = {f"{s}.{t}": conn.execute(sql.SQL("SELECT md5(string_agg(x::text, ',' ORDER BY"
                                                 " x::text)) FROM {} AS x").format(
            sql.Identifier(s, t))).fetchone()[0] for s, t in tables}
        return {
            "rows": rows,
            "relations": conn.execute("SELECT count(*) FROM pg_class").fetchone()[0],
            "schemas": conn.execute("SELECT array_agg(nspname ORDER BY nspname)"
                                    " FROM pg_namespace").fetchone()[0],
            "triggers": conn.execute(
                "SELECT tgrelid::regclass::text, tgname, tgenabled, tgfoid::int FROM pg_trigger"
                " WHERE NOT tgisinternal ORDER BY 1, 2").fetchall(),
            "functions": conn.execute(
                "SELECT p.oid::int, p.proname, md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog',"
                " 'information_schema') ORDER BY 1").fetchall(),
        }


def collectors(dsn, users) -> set[str]:
    """Independently: which of these users own at least 5 sketches."""
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT user_id::text FROM dummy_sketch WHERE user_id = ANY(%s)"
                             " GROUP BY user_id HAVING count(*) >= 5",
                             ([int(u) for u in users],)).fetchall()
    return {r[0] for r in found}


# --- evaluate mode --------------------------------------------------------------------------

def test_collector_on_twenty_sample_users_matches_an_independent_count(installed):
    result = go(installed, "collector", Sample(limit=20))
    users = [r.user for r in result.rows]
    assert len(result.rows) == 20 and len(set(users)) == 20
    expected = collectors(installed, users)
    assert 0 < len(expected) < 20
    assert {r.user for r in result.rows if r.value} == expected
    assert set(result.winners) == expected
    assert result.summary() == f"Would award {len(expected)} distinct user(s) out of 20 row(s)."
    assert all(r.error is None and r.holds is False for r in result.rows)


def test_a_user_who_holds_the_badge_is_not_awarded_again(installed):
    run(installed, "INSERT INTO badges_badge (user_id, name, code) VALUES (8, 'Collector',"
                   " 'collector')")
    result = go(installed, "collector", Sample(where="user_id IN (8, 15)", limit=20))
    by_user = {r.user: r for r in result.rows}
    assert by_user["8"].holds is True and by_user["8"].value is True
    assert by_user["8"].would_award is False
    assert by_user["15"].holds is False and by_user["15"].would_award is True
    assert result.winners == ["15"]


def test_an_unsaved_draft_is_evaluated_and_the_file_is_untouched(installed):
    before = BADGES.read_bytes()
    edited = draft(condition="count(id) >= 1 from dummy_sketch where user_id = NEW.user_id")
    saved = go(installed, "collector", Sample(limit=20))
    result = go(installed, edited, Sample(limit=20))
    assert len(saved.winners) < 20 and len(result.winners) == 20
    assert BADGES.read_bytes() == before


def test_an_invalid_draft_is_a_definition_error_naming_the_key(installed):
    with pytest.raises(DefinitionError) as caught:
        go(installed, draft(condition="NEW.no_such_column > 1"))
    assert "condition" in str(caught.value) and "no_such_column" in str(caught.value)


def test_an_error_on_one_row_does_not_stop_the_others(sketches):
    result = go(sketches, draft(condition="100 / (NEW.hit_views - 131) > 0"),
                Sample(limit=5))
    assert result.rows[0].row["hit_views"] == 131
    failed = result.rows[0].error
    assert failed.kind == "other" and failed.message == "division by zero"
    assert str(failed) == "division by zero" and result.rows[0].value is None
    assert all(r.error is None and r.value is not None for r in result.rows[1:])


def test_a_slow_condition_stops_at_the_statement_timeout(sketches):
    started = time.monotonic()
    result = go(sketches, draft(condition="pg_sleep(30) IS NOT NULL"), Sample(limit=3),
                statement_timeout="1s")
    assert time.monotonic() - started < 10
    assert (result.rows[0].error.kind, result.rows[0].error.timeout) == ("timeout", "1s")
    assert "statement timeout (1s)" in str(result.rows[0].error)
    assert [(r.error.kind, r.error.row) for r in result.rows[1:]] == [("skipped", 1)] * 2
    assert str(result.rows[1].error) == "not evaluated: row 1 hit the statement timeout"
    assert result.winners == []


def test_a_condition_that_writes_fails_read_only_and_writes_nothing(sketches):
    run(sketches, "CREATE TABLE spy (user_id int)",
        "CREATE FUNCTION sneaky(u int) RETURNS boolean LANGUAGE sql"
        " AS 'INSERT INTO spy VALUES (u) RETURNING true'")
    result = go(sketches, draft(condition="sneaky(NEW.user_id)"), Sample(limit=2))
    assert all(r.error.kind == "write" and "read only" in str(r.error)
               and "INSERT" in str(r.error) for r in result.rows)
    with psycopg.connect(sketches) as conn:
        assert conn.execute("SELECT count(*) FROM spy").fetchone()[0] == 0


def test_update_badge_with_changes_and_hand_typed_rows(sketches):
    star = go(sketches, "star", Sample(where="id <= 3", changes={"hit_views": 5000}))
    assert [r.value for r in star.rows] == [True, True, True]
    assert star.rows[0].row["hit_views"] == 5000
    unchanged = go(sketches, "star", Sample(where="id <= 3"))
    assert [r.value for r in unchanged.rows] == [False] * 3
    typed = go(sketches, "star", Sample(rows=[{"user_id": 3, "title": "t", "hit_views": 1}],
                                        changes={"hit_views": 1000}))
    assert typed.rows[0].user == "3" and typed.rows[0].would_award is True


def test_percent_signs_in_condition_and_filter_are_sql_not_placeholders(sketches):
    result = go(sketches, draft(condition="NEW.title LIKE 'Sketch 1%' AND NEW.id % 2 = 1"),
                Sample(where="title LIKE 'Sketch 1%'", limit=4))
    assert [r.row["title"] for r in result.rows] == ["Sketch 1", "Sketch 10", "Sketch 11",
                                                     "Sketch 12"]
    assert [r.value for r in result.rows] == [True, False, True, False]


@pytest.mark.parametrize("where", ["id = 1; DROP TABLE dummy_sketch",
                                   "true UNION SELECT 1", "true) OR (true", "id = 1 LIMIT 1"])
def test_a_filter_that_is_not_one_expression_is_refused(sketches, where):
    with pytest.raises(FilterError):
        go(sketches, "collector", Sample(where=where))
    with psycopg.connect(sketches) as conn:
        assert conn.execute("SELECT count(*) FROM dummy_sketch").fetchone()[0] == SKETCHES


def test_bad_input_is_one_sentence_with_its_facts(sketches):
    with pytest.raises(SampleError, match="No badge with code 'nope'"):
        go(sketches, "nope")
    with pytest.raises(FilterRejected, match="no_col") as filter_:
        go(sketches, "collector", Sample(where="no_col = 1"))
    assert isinstance(filter_.value, FilterError) and filter_.value.failure.kind == "other"
    with pytest.raises(UnknownSampleColumns, match="typed row 1, title2 is not a column") \
            as typed:
        go(sketches, "collector", Sample(rows=[{"title2": "x"}]))
    assert (typed.value.input, typed.value.row, typed.value.columns, typed.value.table) == (
        "rows", 1, ["title2"], "public.dummy_sketch")
    with pytest.raises(UnknownSampleColumns, match="In the changes, views is not a column") \
            as changes:
        go(sketches, "star", Sample(changes={"views": 1}))
    assert (changes.value.input, changes.value.row) == ("changes", None)
    with pytest.raises(SampleRejected, match="typed row 1: .*integer") as rejected:
        go(sketches, "collector", Sample(rows=[{"user_id": "abc"}]))
    assert (rejected.value.input, rejected.value.row) == ("rows", 1)
    with pytest.raises(SampleError, match="not triggered by delete"):
        go(sketches, "collector", op="delete")
    with pytest.raises(SampleError, match="between 1 and 1000"):
        go(sketches, "collector", Sample(limit=0))
    with pytest.raises(ChangesNeedUpdate, match="update badges only") as insert:
        go(sketches, "collector", Sample(changes={"hit_views": 1}))
    assert insert.value.op == "insert"


def test_explain_shows_the_plan_and_warns_about_a_large_scan(sketches):
    run(sketches, "CREATE TABLE big AS SELECT i AS v FROM generate_series(1, 20000) AS i",
        "ANALYZE big")
    quick = go(sketches, "collector", Sample(limit=1), explain=True)
    assert "dummy_sketch" in quick.explain and not any("scans all" in n for n in quick.notes)
    slow = go(sketches, draft(condition="EXISTS (SELECT 1 FROM big WHERE v = NEW.user_id)"),
              Sample(limit=1), explain=True)
    assert "Seq Scan on public.big" in slow.explain or "Seq Scan on big" in slow.explain
    assert any("scans all of public.big (~20,000 rows)" in n for n in slow.notes)


# --- fire mode ------------------------------------------------------------------------------

def test_fire_runs_the_real_trigger_on_three_rows_and_leaves_no_trace(installed):
    listener = psycopg.connect(installed, autocommit=True)
    listener.execute("LISTEN badge_awarded")
    before = snapshot(installed)
    result = go(installed, "collector", Sample(where="user_id = 22", limit=3), mode="fire")
    assert result.fire.written == 3 and result.fire.error is None
    assert [a["user_id"] for a in result.fire.awarded] == ["22"]  # 4 sketches + 3 copies
    assert result.fire.disabled == ["bc__ins"]
    star = go(installed, "star", Sample(where="id <= 2", changes={"hit_views": 9999}),
              mode="fire")
    assert sorted(a["user_id"] for a in star.fire.awarded) == sorted(r.user for r in star.rows)
    gone = go(installed, "spring_cleaning", Sample(rows=[{"user_id": 5, "title": "x"}]),
              mode="fire")
    assert [a["user_id"] for a in gone.fire.awarded] == ["5"]
    go(installed, "pionner", Sample(limit=20))
    assert snapshot(installed) == before
    assert list(listener.notifies(timeout=1, stop_after=1)) == []
    run(installed, "UPDATE dummy_sketch SET hit_views = 5000 WHERE id = 1")  # a real award
    assert [n.channel for n in listener.notifies(timeout=5, stop_after=1)] == ["badge_awarded"]
    listener.close()
    notes = " ".join(result.notes)
    assert "SHARE ROW EXCLUSIVE" in notes and "sequence" in notes.lower()


def test_fire_does_not_let_the_installed_trigger_fire_too(installed):
    before = snapshot(installed)
    # a failing condition (on_error skip) logs one error per firing: two would mean both
    # the installed trigger and the dry-run one ran on the write
    failing = draft(condition="1 / (NEW.hit_views - 131) > 0")
    result = go(installed, failing, Sample(where="id = 1"), mode="fire")
    assert result.fire.disabled == ["bc__ins"]
    assert len(result.fire.trigger_errors) == 1
    assert "division by zero" in result.fire.trigger_errors[0]
    assert snapshot(installed) == before  # the installed trigger is enabled again


def test_fire_where_nothing_is_installed_creates_and_drops_everything(sketches):
    before = snapshot(sketches)
    result = go(sketches, "collector", Sample(where="user_id = 8", limit=1), mode="fire")
    assert [a["user_id"] for a in result.fire.awarded] == ["8"]
    assert snapshot(sketches) == before
    with psycopg.connect(sketches) as conn:
        assert conn.execute("SELECT to_regclass('badges_badge'), to_regnamespace("
                            "'badge_console')").fetchone() == (None, None)


def test_fire_behind_an_open_application_write_gives_up_in_one_sentence(installed):
    with psycopg.connect(installed) as app:  # an uncommitted INSERT: ROW EXCLUSIVE held
        app.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'open')")
        started = time.monotonic()
        with pytest.raises(StatementRefused) as caught:
            go(installed, "collector", Sample(limit=1), mode="fire", lock_timeout="200ms")
        assert time.monotonic() - started < 10  # a hang guard, not a benchmark
        app.rollback()
    message = str(caught.value)
    assert "nothing was changed: could not get a table lock in time" in message
    assert "\n" not in message and "--" not in message and caught.value.failure.kind == "lock"


def test_fire_reports_unique_collisions_and_trigger_errors_as_results(sketches):
    users = Badge.from_dict({"name": "Joined", "code": "joined", "condition": "true",
                             "trigger_condition": "insert", "trigger_table": "auth_user",
                             "user_field": "id"})
    clash = go(sketches, users, Sample(limit=2), mode="fire")
    assert "duplicate key" in str(clash.fire.error) and clash.fire.awarded == []
    fresh = go(sketches, users, Sample(rows=[{"username": "new_one"}]), mode="fire")
    assert fresh.fire.error is None and len(fresh.fire.awarded) == 1
    skip = go(sketches, draft(condition="1 / (NEW.hit_views - 131) > 0"), Sample(limit=1),
              mode="fire")
    assert skip.fire.error is None and "division by zero" in skip.fire.trigger_errors[0]
    boom = go(sketches, draft(condition="1 / (NEW.hit_views - 131) > 0", on_error="raise"),
              Sample(limit=1), mode="fire")
    assert "division by zero" in str(boom.fire.error)
    with psycopg.connect(sketches) as conn:
        assert conn.execute("SELECT to_regclass('badges_badge')").fetchone()[0] is None


# --- command line ---------------------------------------------------------------------------

def test_cli_table_and_json(cli, installed):
    code, out, _ = cli("dry-run", "collector", "--dsn", installed, "--badges", BADGES,
                       "--limit", "20")
    assert code == 0 and "would award" in out and "out of 20 row(s)" in out
    code, out, err = cli("dry-run", "star", "--dsn", installed, "--badges", BADGES, "--where",
                         "id <= 2", "--set", '{"hit_views": 2000}', "--mode", "fire", "--json",
                         "--explain")
    doc = json.loads(out)
    assert code == 0 and doc["mode"] == "fire" and len(doc["fire"]["awarded"]) == 2
    assert doc["explain"] and "brief table lock" in err


def test_cli_exit_codes_and_read_only(cli, installed):
    base = ("--dsn", installed, "--badges", BADGES)
    assert cli("dry-run", "nope", *base)[0] == 1
    assert cli("dry-run", "collector", *base, "--where", "1=1; DELETE FROM x")[0] == 1
    code, _, err = cli("dry-run", "collector", *base, "--rows", '[{"user_id": 1')
    assert code == 1 and "not valid JSON" in err and "Traceback" not in err
    assert cli("dry-run", "collector", *base, "--read-only")[0] == 0
    code, _, err = cli("dry-run", "collector", *base, "--read-only", "--mode", "fire")
    assert code == 1 and "--read-only" in err
    code, _, err = cli("dry-run", "collector", "--dsn",
                       "postgresql://bob:s3cret@127.0.0.1:1/x", "--badges", BADGES)
    assert code == 3 and "s3cret" not in err


def test_cli_words_bad_input_with_its_options(cli, sketches):
    """The engine's errors say which input; the CLI names the option that gave it."""
    base = ("--dsn", sketches, "--badges", BADGES)
    said = {args: cli("dry-run", *args, *base) for args in (
        ("collector", "--rows", '[{"user_id": 1'), ("collector", "--rows", "[1]"),
        ("star", "--set", '{"a": '), ("star", "--set", "[1]"),
        ("collector", "--rows", '{"title2": "x"}'), ("star", "--set", '{"views": 1}'),
        ("collector", "--rows", '{"user_id": "abc"}'), ("star", "--set", '{"hit_views": "x"}'),
        ("collector", "--where", "no_col = 1"), ("collector", "--set", '{"hit_views": 1}'))}
    assert {code for code, _, _ in said.values()} == {1}
    assert [err.strip().removeprefix("badge-console: ") for _, _, err in said.values()] == [
        "--rows is not valid JSON: Expecting ',' delimiter at line 1, column 15.",
        "--rows must be a JSON object or a non-empty list of objects (column: value).",
        "--set is not valid JSON: Expecting value at line 1, column 7.",
        "--set must be a JSON object (column: new value).",
        "In row 1 of --rows, title2 is not a column of public.dummy_sketch.",
        "In --set, views is not a column of public.dummy_sketch.",
        'PostgreSQL rejects row 1 of --rows: invalid input syntax for type integer: "abc".',
        'PostgreSQL rejects the --set changes: invalid input syntax for type integer: "x".',
        'PostgreSQL rejects the --where filter: column "no_col" does not exist.',
        "Changes (--set) apply to update badges only."]


def test_cli_words_a_busy_table_with_lock_timeout(cli, installed):
    with psycopg.connect(installed) as app:  # an uncommitted INSERT: ROW EXCLUSIVE held
        app.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'open')")
        code, _, err = cli("dry-run", "collector", "--mode", "fire", "--lock-timeout", "200ms",
                           "--dsn", installed, "--badges", BADGES)
        app.rollback()
    assert code == 1 and err.strip().splitlines()[-1] == (
        "badge-console: Fire mode could not install the trigger for the test, nothing was "
        "changed: could not get a table lock in time (the table is busy); retry or raise "
        "--lock-timeout.")
