"""A statement that changes one row is judged on the row (the application's usual write);
more rows go the set-based way. Both must award exactly the same users."""

from __future__ import annotations

import psycopg
import pytest

from badge_console.core.condition import check_condition

from helpers import awards, demo_badge, install_badges, run

JUMP = {"name": "Jump", "code": "jump", "trigger_condition": "update",
        "trigger_table": "dummy_sketch", "user_field": "user_id",
        "condition": "NEW.hit_views - OLD.hit_views >= 500"}


def _sketches(dsn, users=range(1, 7), views=0):
    run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
             " SELECT u, 'x', %(v)s FROM unnest(%(u)s::int[]) u",
        params={"u": list(users), "v": views})


@pytest.mark.parametrize("one_at_a_time", [True, False], ids=["one-row", "one-statement"])
def test_one_row_and_set_based_writes_award_the_same_users(demo, one_at_a_time):
    install_badges(demo, [demo_badge("collector"), demo_badge("star"), JUMP,
                          demo_badge("spring_cleaning")])
    rows = [(u, 1000 if u == 6 else 0) for u in (1, 2, 3, 4, 4, 4, 4, 4, 5, 6)]
    bump = "hit_views = CASE user_id WHEN 3 THEN 1000 ELSE hit_views + 600 END"
    if one_at_a_time:
        for user, views in rows:
            run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (%s, 'x', %s)",
                params=(user, views))
        for user in (1, 2, 3):
            run(demo, f"UPDATE dummy_sketch SET {bump} WHERE user_id = %s", params=(user,))
        for user in (5, 6):
            run(demo, "DELETE FROM dummy_sketch WHERE user_id = %s", params=(user,))
    else:
        run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
                  " SELECT u, 'x', v FROM unnest(%s::int[], %s::int[]) AS r(u, v)",
            params=([u for u, _ in rows], [v for _, v in rows]))
        run(demo, f"UPDATE dummy_sketch SET {bump} WHERE user_id IN (1, 2, 3)")
        run(demo, "DELETE FROM dummy_sketch WHERE user_id IN (5, 6)")
    assert awards(demo) == [(1, "jump"), (2, "jump"), (3, "jump"), (3, "star"),
                            (4, "collector"), (5, "spring_cleaning")]


def test_one_row_update_pairs_old_with_new(demo):
    _sketches(demo, users=[1, 2], views=100)
    install_badges(demo, [JUMP])
    run(demo, "UPDATE dummy_sketch SET hit_views = hit_views + 600 WHERE user_id = 1")
    run(demo, "UPDATE dummy_sketch SET hit_views = hit_views + 100 WHERE user_id = 2")
    assert awards(demo) == [(1, "jump")]


def test_statement_changing_no_row_awards_nothing_and_fails_nothing(demo):
    _sketches(demo, users=[1])
    install_badges(demo, [demo_badge("star"), demo_badge("spring_cleaning")])
    run(demo, "UPDATE dummy_sketch SET hit_views = 5000 WHERE user_id = 99",
        "DELETE FROM dummy_sketch WHERE user_id = 99")
    assert awards(demo) == []
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.error_log").fetchone()[0] == 0


def test_one_row_write_of_a_paused_badge_records_nothing(demo):
    """Pausing is the operator's way to stop a broken condition: with the badge paused, a
    failing condition records no error (a plain expression still runs first, being
    cheaper than the pause check; a sub-select does not run at all)."""
    _sketches(demo, users=[1])
    install_badges(demo, [demo_badge("star", condition="NEW.hit_views / (NEW.id - NEW.id) > 0")])
    run(demo, "INSERT INTO badge_console.paused (code) VALUES ('star')",
        "UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 1")
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.error_log").fetchone()[0] == 0
    run(demo, "DELETE FROM badge_console.paused",
        "UPDATE dummy_sketch SET hit_views = 1001 WHERE user_id = 1")
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.error_log").fetchone()[0] == 1


def test_one_row_writes_keep_probing_the_index_after_the_award_table_was_analysed_empty(demo):
    """The planner trap of an award table ANALYZEd while empty, on the one-row path: the
    trigger's plans are cached generic for the session, so a probe planned as a
    sequential scan while the award table looked empty would stay one as the table grows."""
    install_badges(demo, [demo_badge("collector", condition="true")])
    run(demo, "ANALYZE badges_badge")
    with psycopg.connect(demo) as conn:  # one transaction: its own table statistics
        for user in range(1, 41):
            conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (%s, 'x')", (user,))
        seq, idx = conn.execute("SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables"
                                " WHERE relname = 'badges_badge'").fetchone()
    assert len(awards(demo)) == 40
    assert seq == 0 and idx >= 40


@pytest.mark.parametrize("condition, inline", [
    ("NEW.hit_views >= 1000", True),
    ("NEW.title LIKE 'a%' OR now() > NEW.created_at", True),
    ("count(id) >= 5 FROM dummy_sketch WHERE user_id = NEW.user_id", False),
    ("NEW.hit_views > (SELECT 10)", False),
    ("EXISTS (SELECT 1 FROM auth_user WHERE id = NEW.user_id)", False),
])
def test_plain_expressions_are_evaluated_inline(condition, inline):
    assert (check_condition(condition, ("update",)).expression_sql is not None) == inline


def test_an_aggregate_without_from_is_not_inlined_and_still_awards(demo):
    """`count(*) = 1` is a valid condition (one row, no FROM) but could not stand in a
    WHERE clause: the database says count is an aggregate, so it stays a sub-select."""
    install_badges(demo, [demo_badge("collector", condition="count(*) = 1")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')",
        "INSERT INTO dummy_sketch (user_id, title) SELECT u, 'x' FROM generate_series(2, 4) u")
    assert awards(demo) == [(u, "collector") for u in range(1, 5)]


@pytest.mark.parametrize("condition", [
    "to_jsonb(NEW) ->> 'title' = 'gold'",  # NEW as a whole row
    "NEW.title = 'gold' AND random() < 2",  # volatile: runs once per row, never de-duplicated
    "(SELECT NEW.title) = 'gold'",  # a sub-select: not inline
])
def test_whole_row_volatile_and_sub_select_conditions_award_on_both_paths(demo, condition):
    install_badges(demo, [demo_badge("collector", condition=condition)])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'gold')",
        "INSERT INTO dummy_sketch (user_id, title) VALUES (2, 'tin')",
        "INSERT INTO dummy_sketch (user_id, title) SELECT u, CASE WHEN u % 2 = 0 THEN 'gold'"
        " ELSE 'tin' END FROM generate_series(3, 8) u")
    assert awards(demo) == [(u, "collector") for u in (1, 4, 6, 8)]



RAISE_AS = """CREATE FUNCTION raise_as(state text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
  RAISE EXCEPTION 'condition failed' USING ERRCODE = state;
END $f$"""


@pytest.mark.parametrize("on_error", ["skip", "raise"])
@pytest.mark.parametrize("sqlstate", ["P0002", "P0003"], ids=["no_data_found", "too_many_rows"])
def test_a_condition_raising_what_the_row_fetch_raises_is_the_badges_error(
        demo, on_error, sqlstate):
    """The one-row path learns "no row" and "several rows" from SELECT INTO STRICT's
    errors; the same errors raised by the condition are the badge's own failure."""
    run(demo, RAISE_AS)
    _sketches(demo, users=[1])
    install_badges(demo, [demo_badge("star", condition=f"raise_as('{sqlstate}')",
                                     on_error=on_error)])
    update = "UPDATE dummy_sketch SET hit_views = 1 WHERE user_id = 1"
    if on_error == "raise":
        with pytest.raises(psycopg.Error) as failed:
            run(demo, update)
        assert failed.value.sqlstate == sqlstate
    else:
        run(demo, update)
        with psycopg.connect(demo) as conn:
            logged = conn.execute("SELECT sqlstate FROM badge_console.error_log").fetchall()
        assert logged == [(sqlstate,)]
    assert awards(demo) == []
