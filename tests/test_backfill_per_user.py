"""Backfill per distinct user: a condition that reads NEW only through the user field is
decided once per user, not once per row (or once per batch a user's rows fall in), and
awards exactly the users a plain GROUP BY query says qualify."""

from __future__ import annotations

import json

import psycopg
import pytest

from badge_console.core.backfill import preview_backfill, run_backfill
from badge_console.core.backfill_batches import table_batches, table_winners
from badge_console.core.definitions import parse_badge_file
from badge_console.core.resolve import resolve

from helpers import awards, install_badges, run

# `judged(u)` is true and says so with a notice: each notice is one evaluation of the
# condition (a one-time filter of the sub-select, evaluated once per execution of it).
JUDGED = """
CREATE FUNCTION judged(u int) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN RAISE NOTICE 'judged %', u; RETURN true; END $$
"""
COUNT = "count(*) >= 5 from score where user_id = NEW.user_id and judged(NEW.user_id)"


def _badge(condition: str) -> dict:
    return {"name": "Prolific", "code": "prolific", "condition": condition,
            "trigger_condition": "insert", "trigger_table": "score", "user_field": "user_id"}


@pytest.fixture
def scores(dsn):
    """40 users, user u owning u % 8 rows interleaved over the table (0 to 7: some at
    exactly 5), 30 rows without a user; users 5 (qualifies) and 9 (does not) already
    hold the badge."""
    run(dsn, "CREATE TABLE score (id serial PRIMARY KEY, user_id int, points int)",
        "INSERT INTO score (user_id, points) SELECT u, k FROM generate_series(1, 40) AS u,"
        " generate_series(1, 7) AS k WHERE k <= u % 8 ORDER BY k, u",
        "INSERT INTO score (user_id, points) SELECT NULL, 1 FROM generate_series(1, 30)",
        "CREATE INDEX score_user ON score (user_id)", JUDGED)
    return dsn


def _prepare(dsn: str, condition: str):
    badges = [_badge(condition)]
    install_badges(dsn, badges)
    run(dsn, "INSERT INTO badges_badge (user_id, name, code) VALUES"
             " (5, 'Prolific', 'prolific'), (9, 'Prolific', 'prolific')")
    return parse_badge_file(json.dumps({"badges": badges}))


def _qualified(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT user_id FROM score WHERE user_id IS NOT NULL GROUP BY user_id"
            " HAVING count(*) >= 5 ORDER BY 1")]


def _backfill_counting(dsn: str, bf, **sizes):
    """run_backfill, and how many times the condition was evaluated."""
    judged = []
    with psycopg.connect(dsn) as conn:
        conn.add_notice_handler(lambda d: judged.append(d.message_primary))
        done = run_backfill(conn, bf, **sizes)
    return done, [m for m in judged if m.startswith("judged")]


def test_condition_of_the_user_field_is_evaluated_once_per_user(scores):
    bf = _prepare(scores, COUNT)
    with psycopg.connect(scores) as conn:
        preview = preview_backfill(conn, bf)
    done, judged = _backfill_counting(scores, bf, batch_size=4, users_per_batch=7)
    qualified = _qualified(scores)
    assert 5 in qualified and 9 not in qualified and len(qualified) == 15
    assert [u for u, _ in awards(scores, "prolific")] == sorted({*qualified, 9})
    assert done.awarded == preview.would_award == len(qualified) - 1  # 5 held it already
    users = 35  # users owning at least one row (u % 8 == 0 own none), 2 of them holders
    assert len(judged) == users - 2
    assert len(set(judged)) == len(judged)
    assert done.items[0].batches == 5  # 35 users, 7 per transaction


def test_condition_reading_other_new_columns_is_evaluated_per_row(scores):
    bf = _prepare(scores, COUNT + " and NEW.points > 0")
    done, judged = _backfill_counting(scores, bf, batch_size=4, users_per_batch=7)
    assert [u for u, _ in awards(scores, "prolific")] == sorted({*_qualified(scores), 9})
    assert len(judged) > 35  # a user's rows with distinct points are judged apart
    assert done.items[0].batches > 40  # 170 rows, 4 per transaction


def test_without_an_index_on_the_user_field_rows_are_walked(scores):
    run(scores, "DROP INDEX score_user")
    bf = _prepare(scores, COUNT)
    done, judged = _backfill_counting(scores, bf, batch_size=4, users_per_batch=7)
    assert [u for u, _ in awards(scores, "prolific")] == sorted({*_qualified(scores), 9})
    assert len(judged) > 35  # a user whose rows span batches is judged in each
    assert done.items[0].batches > 40


def test_cancelled_between_user_batches_a_rerun_finishes(scores):
    bf = _prepare(scores, COUNT)
    calls = []
    with psycopg.connect(scores) as conn:
        first = run_backfill(conn, bf, users_per_batch=7, progress=calls.append,
                             cancel=lambda: len(calls) >= 3)
        second = run_backfill(conn, bf, users_per_batch=7)
    assert first.cancelled and 0 < first.awarded < 14
    assert first.awarded + second.awarded == 14
    assert [u for u, _ in awards(scores, "prolific")] == sorted({*_qualified(scores), 9})
    done = [p.rows_done for p in calls]
    assert done == sorted(done) and 0 < done[1] < done[2] < 200  # rows of 7 users each


GROUPED = "count(*) >= 5 from score as s where s.user_id = NEW.user_id and s.points > 0"


def _index_scans(dsn: str, bf, batch_users: int | None) -> int:
    """Index scans of `score` that one winners query of backfill makes (the whole table as
    the preview asks it, or the first batch of `batch_users` users), read from the
    transaction's own statistics."""
    with psycopg.connect(dsn) as conn:
        conn.execute("SET LOCAL enable_seqscan = off")  # as on a table worth the index
        res = resolve(conn, bf)
        target = res.targets[0]
        if batch_users is None:
            winners = table_winners(conn, target, "insert", res.award)
        else:
            batches = table_batches(conn, target, "insert", res.award, 4, batch_users)
            winners = batches.next(batches.first())[0]
        before = conn.execute(SCANS).fetchone()[0]
        assert conn.execute(winners).fetchall()
        return conn.execute(SCANS).fetchone()[0] - before


SCANS = "SELECT idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'score'"


def test_aggregate_of_the_users_own_rows_is_asked_grouped_not_per_user(scores):
    bf = _prepare(scores, GROUPED)
    with psycopg.connect(scores) as conn:
        preview = preview_backfill(conn, bf)
    done = _backfill_counting(scores, bf, users_per_batch=7)[0]
    assert [u for u, _ in awards(scores, "prolific")] == sorted({*_qualified(scores), 9})
    assert done.awarded == preview.would_award == 14
    assert done.items[0].batches == 5
    run(scores, "DELETE FROM badges_badge WHERE user_id NOT IN (5, 9)")
    # one scan (or none) for all users; per user it would be one scan each: 33 and 7
    assert _index_scans(scores, bf, None) <= 1
    assert _index_scans(scores, bf, 7) <= 1


def test_an_aggregate_true_over_no_rows_is_asked_per_user(scores):
    """count(*) < 2 of the rows with points > 5 is true for a user none of whose rows
    pass the filter: they have no group, so grouping would miss them."""
    bf = _prepare(scores, "count(*) < 2 from score where user_id = NEW.user_id"
                          " and points > 5")
    done = _backfill_counting(scores, bf, users_per_batch=7)[0]
    with psycopg.connect(scores) as conn:
        expected = [r[0] for r in conn.execute(
            "SELECT user_id FROM score WHERE user_id IS NOT NULL GROUP BY user_id"
            " HAVING count(*) FILTER (WHERE points > 5) < 2 ORDER BY 1")]
    assert len(expected) == 30
    assert [u for u, _ in awards(scores, "prolific")] == sorted({*expected, 5, 9})
    assert done.awarded == len(set(expected) - {5, 9})


def test_an_aggregate_of_another_table_is_asked_per_user(scores):
    """Only users with a row in the trigger table are backfilled, whatever the other
    table holds (a trigger on score never fires for a user without scores)."""
    run(scores, "CREATE TABLE bonus (user_id int)",
        "INSERT INTO bonus SELECT u FROM generate_series(30, 99) AS u")
    bf = _prepare(scores, "count(*) >= 1 from bonus where user_id = NEW.user_id")
    _backfill_counting(scores, bf, users_per_batch=7)
    owners = {u for u in range(30, 41) if u % 8}
    assert [u for u, _ in awards(scores, "prolific")] == sorted(owners | {5, 9})
