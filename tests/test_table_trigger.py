"""Generator 8: one trigger per table and operation deciding every badge of it (SPEC §7,
"Cost flat in the number of badges"), the per-badge guarantees kept, and an install that
migrates generator-7 databases and replaces only the function when it can."""

from __future__ import annotations

import json

import psycopg
import pytest

from badge_console.core.definitions import parse_badge_file
from badge_console.core.install import install, plan_install
from badge_console.core.errors import LockTimeout

from helpers import awards, demo_badge, insert_sketches, install_badges, run

USERS = range(1, 9)


def _views(i: int) -> dict:
    return {"name": f"Views {i}", "code": f"views_{i}", "trigger_condition": "insert",
            "trigger_table": "dummy_sketch", "user_field": "user_id",
            "condition": f"NEW.hit_views >= {i * 10}"}


def _count(i: int, at: int | None = None) -> dict:
    return {"name": f"Count {i}", "code": f"count_{i}", "trigger_condition": "insert",
            "trigger_table": "dummy_sketch", "user_field": "user_id",
            "condition": f"count(id) >= {at or i} from dummy_sketch where user_id = NEW.user_id"}


FORTY = [_views(i) for i in range(1, 21)] + [_count(i) for i in range(1, 21)]


def _rows() -> list[tuple[int, int]]:
    """(user, hit_views) of the sketches written: user u writes u*2 sketches."""
    return [(u, (u * 37 + k * 11) % 230) for u in USERS for k in range(u * 2)]


def _expected(rows) -> list[tuple[int, str]]:
    got = set()
    for u in USERS:
        mine = [v for uu, v in rows if uu == u]
        got |= {(u, f"views_{i}") for i in range(1, 21) if max(mine) >= i * 10}
        got |= {(u, f"count_{i}") for i in range(1, 21) if len(mine) >= i}
    return sorted(got)


def _our_triggers(dsn) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT tgrelid::regclass::text, tgname, p.proname FROM pg_trigger t"
            " JOIN pg_proc p ON p.oid = t.tgfoid WHERE tgname LIKE 'bc\\_%' ORDER BY 1, 2")]


@pytest.mark.parametrize("one_at_a_time", [True, False], ids=["one-row", "bulk"])
def test_forty_badges_share_one_trigger_and_each_awards_as_alone(demo, one_at_a_time):
    install_badges(demo, FORTY)
    assert _our_triggers(demo) == [("dummy_sketch", "bc__ins", "public.dummy_sketch__insert")]
    rows = _rows()
    insert_sketches(demo, rows, one_at_a_time)
    assert sorted(awards(demo)) == _expected(rows)


def _errors(dsn) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute("SELECT code, count(*) FROM badge_console.error_log"
                                 " GROUP BY code").fetchall())


@pytest.mark.parametrize("one_at_a_time", [True, False], ids=["one-row", "bulk"])
@pytest.mark.parametrize("failing", [
    "1 / (NEW.hit_views - NEW.hit_views) = 1",  # a plain expression
    "(SELECT 1 / (count(*) - count(*)) FROM dummy_sketch WHERE user_id = NEW.user_id) = 1",
], ids=["expression", "query"])
def test_one_failing_badge_logs_alone_and_the_others_award(demo, one_at_a_time, failing):
    bad = {**_views(99), "code": "bad", "name": "Bad", "condition": failing}
    install_badges(demo, [_views(1), _count(2), bad, _count(3, at=1)])
    if one_at_a_time:
        run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (1, 'x', 50)",
            "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (1, 'z', 50)")
    else:
        run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
                  " VALUES (1, 'x', 50), (2, 'y', 5), (1, 'z', 50)")
    want = [(1, "count_2"), (1, "count_3"), (1, "views_1")]
    if not one_at_a_time:
        want.append((2, "count_3"))
    assert sorted(awards(demo)) == sorted(want)
    assert set(_errors(demo)) == {"bad"}


def test_an_on_error_raise_badge_among_others_still_fails_the_write(demo):
    bad = {**_views(99), "code": "bad", "name": "Bad", "on_error": "raise",
           "condition": "1 / (NEW.hit_views - NEW.hit_views) = 1"}
    install_badges(demo, [_views(1), bad, _count(1)])
    with pytest.raises(psycopg.errors.DivisionByZero):
        run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (1, 'x', 50)")
    assert awards(demo) == [] and _errors(demo) == {}


@pytest.mark.parametrize("with_failing", [False, True], ids=["healthy", "failing-paused"])
def test_a_paused_badge_among_many_records_nothing(demo, with_failing):
    bad = {**_views(99), "code": "bad", "name": "Bad",
           "condition": "1 / (NEW.hit_views - NEW.hit_views) = 1"}
    install_badges(demo, [_views(1), _views(2), _count(1), _count(2)]
                   + ([bad] if with_failing else []))
    run(demo, "INSERT INTO badge_console.paused (code) VALUES ('count_1'), ('views_2'), ('bad')")
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (1, 'x', 50)",
        "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (1, 'y', 50), (2, 'z', 50)")
    assert sorted(awards(demo)) == [(1, "count_2"), (1, "views_1"), (2, "views_1")]
    assert _errors(demo) == {}
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.queue").fetchone()[0] == 0


LEVELS = [_count(1, at=2), _count(2, at=4), _count(3, at=6)]


def test_shared_value_with_three_thresholds_awards_each_level_in_turn(demo):
    install_badges(demo, LEVELS)
    seen = []
    for n in range(1, 8):
        run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, %s)", params=(str(n),))
        seen.append(len(awards(demo)))
    assert seen == [0, 1, 1, 2, 2, 3, 3]
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 2, 'x' FROM generate_series(1, 5)")
    assert sorted(awards(demo)) == [(1, "count_1"), (1, "count_2"), (1, "count_3"),
                                    (2, "count_1"), (2, "count_2")]


def test_shared_value_is_one_query_in_the_one_row_path(demo):
    """The three levels' function evaluates count(id) once on the one-row path: one
    statement in each of its two branches (the user holds none of the levels, or some:
    filtered), a write takes one; the per-badge redo, used only after a failure, has its
    own. test_a_shared_value_is_evaluated_once_per_user_and_write counts the calls."""
    install_badges(demo, LEVELS)
    with psycopg.connect(demo) as conn:
        src = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s",
                           ("public.dummy_sketch__insert",)).fetchone()[0]
    batch = src.split("redo badge by badge")[0]
    assert batch.count("SELECT count(id) FROM dummy_sketch") == 2
    assert "width_bucket(" in batch and "ARRAY[2, 4, 6])" in batch


def test_a_generation_7_database_migrates_on_install(demo):
    install_badges(demo, [demo_badge("star"), demo_badge("collector")])
    # Make it look as generator 7 left it: per-badge triggers and functions, old bookkeeping.
    run(demo, "DROP TRIGGER bc__upd ON dummy_sketch", "DROP TRIGGER bc__ins ON dummy_sketch",
        'DROP FUNCTION badge_console."public.dummy_sketch__update"()',
        'DROP FUNCTION badge_console."public.dummy_sketch__insert"()',
        "CREATE FUNCTION badge_console.star__update() RETURNS trigger LANGUAGE plpgsql"
        " AS 'BEGIN RETURN NULL; END'",
        "CREATE FUNCTION badge_console.collector__insert() RETURNS trigger LANGUAGE plpgsql"
        " AS 'BEGIN RETURN NULL; END'",
        "CREATE TRIGGER bc_star_upd AFTER UPDATE ON dummy_sketch FOR EACH STATEMENT"
        " EXECUTE FUNCTION badge_console.star__update()",
        "CREATE TRIGGER bc_collector_ins AFTER INSERT ON dummy_sketch FOR EACH STATEMENT"
        " EXECUTE FUNCTION badge_console.collector__insert()",
        "UPDATE badge_console.installed SET fingerprint = 'generator7'")
    bf = parse_badge_file(json.dumps({"badges": [demo_badge("star"), demo_badge("collector")]}))
    with psycopg.connect(demo) as conn:
        plan = plan_install(conn, bf)
    assert {i.code: (i.status, i.action) for i in plan.items} == {
        "star": ("outdated", "replace"), "collector": ("outdated", "replace")}
    install_badges(demo, [demo_badge("star"), demo_badge("collector")])
    assert _our_triggers(demo) == [
        ("dummy_sketch", "bc__ins", "public.dummy_sketch__insert"),
        ("dummy_sketch", "bc__upd", "public.dummy_sketch__update")]
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM pg_proc WHERE proname IN"
                            " ('star__update', 'collector__insert')").fetchone()[0] == 0
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 3, 'x' FROM generate_series(1, 5)")
    assert awards(demo) == [(3, "collector")]


def _trigger_oid(dsn) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT oid::int FROM pg_trigger WHERE tgname = 'bc__ins'"
                            ).fetchone()[0]


def test_install_replaces_only_the_function_and_locks_no_table(demo):
    """A badge changed or added on a table whose trigger exists: the trigger stays (same
    pg_trigger row) and install takes no lock on the table, so a writer holding its row
    lock in an open transaction does not make install wait."""
    install_badges(demo, [_views(1), _count(1)])
    before = _trigger_oid(demo)
    writer = psycopg.connect(demo)
    try:
        writer.execute("INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (5, 'x', 0)")
        bf = parse_badge_file(json.dumps({"badges": [_views(2), _count(1, at=2), _count(3)]}))
        with psycopg.connect(demo) as conn:
            plan = install(conn, bf, lock_timeout="200ms")
    finally:
        writer.rollback()
        writer.close()
    assert not any("TRIGGER" in s for s in plan.tables)
    assert _trigger_oid(demo) == before
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (1, 'x', 25),"
              " (1, 'y', 0)")
    assert sorted(awards(demo)) == [(1, "count_1"), (1, "views_2")]


def test_a_new_table_trigger_waits_boundedly_behind_a_writer(demo):
    """Creating a trigger needs the table: behind an open writer install gives up within its
    lock timeout with the one sentence, nothing changed."""
    install_badges(demo, [_views(1)])
    writer = psycopg.connect(demo)
    try:
        writer.execute("INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (5, 'x', 0)")
        bf = parse_badge_file(json.dumps({"badges": [_views(1), demo_badge("star")]}))
        with psycopg.connect(demo) as conn, pytest.raises(LockTimeout) as err:
            install(conn, bf, lock_timeout="200ms")
    finally:
        writer.rollback()
        writer.close()
    assert "dummy_sketch" in str(err.value)
    assert [t[1] for t in _our_triggers(demo)] == ["bc__ins"]


def test_plan_warns_when_one_table_carries_too_many_query_conditions(demo, cli, badge_file):
    many = [{**_count(i), "condition": "count(id) >= 1 from dummy_sketch where user_id ="
             f" NEW.user_id and hit_views > {i}"} for i in range(1, 22)]  # 21 values
    path = badge_file({"badges": many})
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path)
    assert "public.dummy_sketch: 21 badges on insert, 21 of them" in " ".join(out.split())
    levels = [_count(i, at=i * 5) for i in range(1, 22)]  # one value, 21 levels: one query
    path = badge_file({"badges": levels + [_views(i) for i in range(1, 30)]})
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    assert json.loads(out)["warnings"] == []


@pytest.mark.parametrize("one_at_a_time", [True, False], ids=["one-row", "bulk"])
def test_a_shared_value_is_evaluated_once_per_user_and_write(demo, one_at_a_time):
    """Counted by the calls of a (stable) function the value calls: once per one-row
    write, once per distinct user in bulk, however many thresholds."""
    run(demo, "CREATE FUNCTION tick(u int) RETURNS int LANGUAGE plpgsql STABLE"
              " AS 'BEGIN RETURN u; END'")
    install_badges(demo, [{**_count(i), "condition": f"count(id) >= {at} from dummy_sketch"
                           " where user_id = tick(NEW.user_id)"}
                          for i, at in ((1, 2), (2, 4), (3, 6))])
    with psycopg.connect(demo) as conn:
        conn.execute("SET LOCAL track_functions = 'all'")
        if one_at_a_time:
            conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a')")
        else:
            conn.execute("INSERT INTO dummy_sketch (user_id, title) SELECT u, 'x'"
                         " FROM generate_series(1, 3) AS u, generate_series(1, 3)")
        calls = conn.execute("SELECT calls FROM pg_stat_xact_user_functions"
                             " WHERE funcname = 'tick'").fetchone()[0]
    assert calls == (1 if one_at_a_time else 3)
    assert sorted(awards(demo)) == ([] if one_at_a_time else [(u, "count_1") for u in (1, 2, 3)])


def test_one_plain_badge_in_a_bulk_update_awards_each_qualifying_user_once(demo):
    """The set path of a table with one plain badge filters the changed rows by the
    condition itself (W3 of bench/trigger_overhead.py): each qualifying user once, a
    row without a user skipped, a holder not awarded again, nothing recorded."""
    install_badges(demo, [demo_badge("star")])
    run(demo, "ALTER TABLE dummy_sketch ALTER user_id DROP NOT NULL",
        "INSERT INTO dummy_sketch (user_id, title) SELECT u, 'x' FROM generate_series(1, 4) AS u,"
        " generate_series(1, 3)",
        "INSERT INTO dummy_sketch (user_id, title) VALUES (NULL, 'orphan'), (NULL, 'orphan')",
        "UPDATE dummy_sketch SET hit_views = 1000 WHERE id = (SELECT min(id) FROM dummy_sketch"
        " WHERE user_id = 1)")
    run(demo, "UPDATE dummy_sketch SET hit_views = 1000 + id"
              " WHERE user_id IN (1, 2, 3) OR user_id IS NULL")
    assert awards(demo) == [(1, "star"), (2, "star"), (3, "star")]
    assert _errors(demo) == {}


@pytest.mark.parametrize("one_at_a_time", [True, False], ids=["one-row", "bulk"])
def test_the_redo_after_a_failure_still_skips_a_paused_sibling(demo, one_at_a_time):
    """Bad fails (on_error skip), so every badge is judged again alone: Views 2, paused,
    stays unawarded in that pass too; Views 1 awards; only Bad's error is recorded."""
    bad = {**_views(99), "code": "bad", "name": "Bad",
           "condition": "1 / (NEW.hit_views - NEW.hit_views) = 1"}
    install_badges(demo, [_views(1), _views(2), bad])
    run(demo, "INSERT INTO badge_console.paused (code) VALUES ('views_2')")
    insert_sketches(demo, [(1, 50), (2, 50)], one_at_a_time)
    assert sorted(awards(demo)) == [(1, "views_1"), (2, "views_1")]
    assert set(_errors(demo)) == {"bad"}


def test_a_row_trigger_redo_judges_each_badge_alone_on_its_own_row(demo):
    """A table without a primary key whose badge compares OLD with NEW gets a row
    trigger; a failing sibling still logs alone and the healthy badge awards."""
    run(demo, "CREATE TABLE scores (user_id int, points int)",
        "INSERT INTO scores VALUES (1, 1), (2, 5)")
    rose = {"name": "Rose", "code": "rose", "condition": "NEW.points > OLD.points",
            "trigger_condition": "update", "trigger_table": "scores", "user_field": "user_id"}
    bad = {**rose, "code": "bad", "name": "Bad",
           "condition": "1 / (NEW.points - NEW.points) = 1"}
    install_badges(demo, [rose, bad])
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'bc__upd'"
                            ).fetchone()[0] == 1  # FOR EACH ROW
    run(demo, "UPDATE scores SET points = points + 1 WHERE user_id = 1",
        "UPDATE scores SET points = points - 1 WHERE user_id = 2")
    assert awards(demo) == [(1, "rose")]
    assert set(_errors(demo)) == {"bad"}
