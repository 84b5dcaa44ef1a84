"""No award is lost (SPEC section 7): concurrent writers for one user, rolled-back writes,
a writer holding the (badge, user) lock for long, and time passing with no write."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from badge_console.core.reconcile import run_pass

from helpers import awards, demo_badge, install_badges, run

USERS = 40
PER_USER = 5  # Collector is earned at 5 sketches


def _queue(dsn) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM badge_console.queue").fetchone()[0]


def _while_held(dsn, held: str, write: str) -> None:
    """`held` in a transaction left open (its trigger holds the lock), `write` committed
    meanwhile by another connection, then `held` committed."""
    with psycopg.connect(dsn) as holder:
        holder.execute(held)
        run(dsn, write)


def _reconcile(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return run_pass(conn)


def _write_concurrently(dsn, writers: int, users: int = USERS) -> None:
    """Each user gets exactly PER_USER sketches, each insert its own transaction, spread
    over `writers` connections that walk the users in the same order (so that several
    insert for one user at the same moment)."""
    plan: list[list[int]] = [[] for _ in range(writers)]
    for user in range(1, users + 1):
        for k in range(PER_USER):
            plan[(user * PER_USER + k) % writers].append(user)
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def work(mine: list[int]) -> None:
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                start.wait()
                for user in mine:
                    conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (%s, 'x')",
                                 (user,))
        except BaseException as exc:  # reported below: a writer must never fail
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(mine,)) for mine in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


@pytest.mark.parametrize("writers", [2, 8, 16])
def test_concurrent_writers_on_the_same_users_lose_no_award(demo, writers):
    install_badges(demo, [demo_badge("collector")])
    _write_concurrently(demo, writers)
    _reconcile(demo)
    assert awards(demo, "collector") == [(u, "collector") for u in range(1, USERS + 1)]
    assert _queue(demo) == 0


def test_a_single_writer_awards_at_once_and_never_queues(demo):
    install_badges(demo, [demo_badge("collector")])
    _write_concurrently(demo, 1)
    assert _queue(demo) == 0
    assert awards(demo, "collector") == [(u, "collector") for u in range(1, USERS + 1)]


def test_bulk_statements_from_concurrent_writers_lose_no_award(demo):
    """The set-based path: two statements of several rows each for the same users."""
    install_badges(demo, [demo_badge("collector")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT u, 'x'"
              " FROM generate_series(1, 20) u, generate_series(1, 3)")
    bulk = "INSERT INTO dummy_sketch (user_id, title) SELECT u, 'x' FROM generate_series(1, 20) u"
    _while_held(demo, bulk, bulk)  # the second waits 30 ms at most, then queues
    assert awards(demo, "collector") == []  # each saw 4 sketches per user
    assert _reconcile(demo).awarded_from_queue == 20
    assert awards(demo, "collector") == [(u, "collector") for u in range(1, 21)]


def test_a_rolled_back_write_queues_nothing_and_awards_nothing(demo):
    install_badges(demo, [demo_badge("collector")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 1, 'x' FROM generate_series(1, 3)")
    holder = psycopg.connect(demo)  # holds user 1's lock
    holder.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')")
    with psycopg.connect(demo) as other:  # cannot have the lock: queues, then rolls back
        other.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')")
        assert other.execute("SELECT count(*) FROM badge_console.queue").fetchone()[0] == 1
        other.rollback()
    holder.rollback()
    holder.close()
    assert _queue(demo) == 0
    _reconcile(demo)
    assert awards(demo) == []


def test_a_long_transaction_holding_the_lock_does_not_make_writers_wait(demo):
    """The bound is sqlgen_locks.LOCK_WAIT (30 ms); the writer neither fails nor waits for the
    holder's commit, and the award is made by the next reconcile."""
    install_badges(demo, [demo_badge("collector")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 1, 'x' FROM generate_series(1, 3)")
    holder = psycopg.connect(demo)
    holder.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')")  # 4th, held
    done = threading.Event()

    def write() -> None:
        with psycopg.connect(demo, autocommit=True) as conn:
            conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')")
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    finished = done.wait(timeout=20)  # generous for a loaded CI machine; the holder waits on
    holder.commit()                   # nothing, so an unbounded writer would hang until here
    writer.join()
    holder.close()
    assert finished, "the writer waited for the lock holder's commit"
    assert awards(demo) == []  # neither transaction saw 5 sketches
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT code, op, user_id FROM badge_console.queue").fetchall() == [
            ("collector", "insert", "1")]
    assert _reconcile(demo).awarded_from_queue == 1
    assert awards(demo) == [(1, "collector")]


def test_reconcile_leaves_rows_whose_lock_a_writer_still_holds(demo):
    """A writer that holds the lock may not have committed what the condition must see:
    its user's queued rows wait for the next pass."""
    install_badges(demo, [demo_badge("collector")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 1, 'x' FROM generate_series(1, 3)")
    holder = psycopg.connect(demo)
    holder.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')")
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')")  # queued
    first = _reconcile(demo)
    assert (first.awarded, first.queued) == (0, 1)
    holder.commit()
    holder.close()
    second = _reconcile(demo)
    assert (second.awarded_from_queue, second.queued) == (1, 0)
    assert awards(demo) == [(1, "collector")]
    assert _reconcile(demo).awarded == 0  # idempotent


def test_pionner_crossing_the_year_with_no_write_is_awarded_by_reconcile(demo):
    install_badges(demo, [demo_badge("pionner")])
    run(demo, "UPDATE auth_user SET date_joined = now() - interval '1 year' + interval '1 hour'"
              " WHERE id IN (1, 2)")
    assert awards(demo) == []
    # time passes: the users' rows are not written, their join date is a year ago now
    run(demo, "ALTER TABLE auth_user DISABLE TRIGGER USER",
        "UPDATE auth_user SET date_joined = date_joined - interval '2 hours' WHERE id IN (1, 2)",
        "ALTER TABLE auth_user ENABLE TRIGGER USER")
    assert awards(demo) == []
    result = _reconcile(demo)
    assert result.awarded_time_based == 2
    assert awards(demo) == [(1, "pionner"), (2, "pionner")]
    assert _reconcile(demo).awarded == 0


def test_reconcile_notifies_each_award_like_a_trigger(demo):
    import json

    install_badges(demo, [demo_badge("pionner")])
    run(demo, "ALTER TABLE auth_user DISABLE TRIGGER USER",
        "UPDATE auth_user SET date_joined = now() - interval '2 years' WHERE id = 3",
        "ALTER TABLE auth_user ENABLE TRIGGER USER")
    with psycopg.connect(demo, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        _reconcile(demo)
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert [(p["user_id"], p["code"], p["op"], p["table"]) for p in payloads] == [
        (3, "pionner", "reconcile", "public.auth_user")]


def test_a_queued_delete_is_judged_on_the_deleted_row(demo):
    """Rows are queued whole, so a delete badge whose condition reads other rows is judged
    by reconcile on the row that is gone."""
    last = {"name": "Clean slate", "code": "clean_slate", "trigger_condition": "delete",
            "trigger_table": "dummy_sketch", "user_field": "user_id",
            "condition": "NOT EXISTS (SELECT 1 FROM dummy_sketch s WHERE s.user_id = OLD.user_id)"}
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (1, 'b')")
    install_badges(demo, [last])
    _while_held(demo, "DELETE FROM dummy_sketch WHERE title = 'a'",
                "DELETE FROM dummy_sketch WHERE title = 'b'")  # queued: the lock is held
    assert awards(demo) == []
    assert _reconcile(demo).awarded_from_queue == 1
    assert awards(demo) == [(1, "clean_slate")]


def test_the_row_trigger_fallback_locks_and_queues_too(demo):
    """A table without a primary key and a condition comparing OLD with NEW gets a row
    trigger; it takes the lock as the statement trigger does, and reconcile pairs each
    queued row's OLD with its NEW."""
    tally = {"name": "Two up", "code": "two_up", "trigger_condition": "update",
             "trigger_table": "tally", "user_field": "user_id",
             "condition": "NEW.n > OLD.n AND (SELECT count(*) FROM tally t"
                          " WHERE t.user_id = NEW.user_id AND t.n > 0) >= 2"}
    run(demo, "CREATE TABLE tally (user_id int, tag text, n int)",
        "INSERT INTO tally VALUES (1, 'a', 0), (1, 'b', 0)")
    install_badges(demo, [tally])
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT action_orientation FROM information_schema.triggers"
                            " WHERE trigger_name = 'bc__upd'").fetchone() == ("ROW",)
    _while_held(demo, "UPDATE tally SET n = 1 WHERE tag = 'a'",
                "UPDATE tally SET n = 1 WHERE tag = 'b'")  # queued: the lock is held
    assert awards(demo) == []
    assert _reconcile(demo).awarded_from_queue == 1
    assert awards(demo) == [(1, "two_up")]


def test_a_plain_expression_calling_an_application_function_takes_the_lock(demo):
    """A function of the application's may read other rows as a sub-select does."""
    run(demo, "CREATE FUNCTION sketches(u int) RETURNS bigint LANGUAGE sql STABLE"
              " AS 'SELECT count(*) FROM dummy_sketch WHERE user_id = u'",
        "INSERT INTO dummy_sketch (user_id, title) SELECT 1, 'x' FROM generate_series(1, 3)")
    install_badges(demo, [demo_badge("collector", condition="sketches(NEW.user_id) >= 5")])
    one = "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'x')"
    _while_held(demo, one, one)
    assert _queue(demo) == 1
    _reconcile(demo)
    assert awards(demo) == [(1, "collector")]


@pytest.mark.parametrize("rows", [1, 2], ids=["one-row", "set-based"])
def test_a_queued_update_pairs_old_with_new_in_reconcile(demo, rows):
    climb = {"name": "Climber", "code": "climber", "trigger_condition": "update",
             "trigger_table": "dummy_sketch", "user_field": "user_id",
             "condition": "NEW.hit_views > OLD.hit_views AND (SELECT sum(hit_views)"
                          " FROM dummy_sketch s WHERE s.user_id = NEW.user_id) >= 30"}
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
              " VALUES (1, 'a', 0), (1, 'b', 0), (1, 'c', 0)")
    install_badges(demo, [climb])
    _while_held(demo, "UPDATE dummy_sketch SET hit_views = 10 WHERE title = 'a'",
                "UPDATE dummy_sketch SET hit_views = 10 WHERE title IN ('b', 'c')" if rows == 2
                else "UPDATE dummy_sketch SET hit_views = 20 WHERE title = 'b'")
    assert awards(demo) == []
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.queue"
                            " WHERE old_row IS NOT NULL AND new_row IS NOT NULL").fetchone()[0] == rows
    assert _reconcile(demo).awarded_from_queue == 1
    assert awards(demo) == [(1, "climber")]


def test_reconcile_rechecks_a_time_based_badge_in_batches(demo):
    """Batches of a few rows (block ranges of the table), each committed: every user who
    crossed the mark is found, none twice."""
    install_badges(demo, [demo_badge("pionner")])
    run(demo, "ALTER TABLE auth_user DISABLE TRIGGER USER",
        "UPDATE auth_user SET date_joined = now() - interval '2 years' WHERE id % 3 = 0",
        "ALTER TABLE auth_user ENABLE TRIGGER USER")
    with psycopg.connect(demo, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE auth_user")  # rows per page known: batches of ~10 rows
        pages = conn.execute("SELECT relpages FROM pg_class WHERE relname = 'auth_user'"
                             ).fetchone()[0]
        assert pages > 1  # so that the pass takes several batches
        assert run_pass(conn, batch=10).awarded_time_based == 33
        assert run_pass(conn, batch=10).awarded_time_based == 0
    assert awards(demo) == [(u, "pionner") for u in range(3, 100, 3)]
