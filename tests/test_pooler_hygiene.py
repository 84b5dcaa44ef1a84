"""Behind a transaction-pooling PgBouncer, nothing we do is session-scoped: the console's
timeouts are SET LOCAL and no statement is prepared on the server (the next transaction
may run on another server connection, or a server connection another client then uses)."""

from __future__ import annotations

import psycopg
import pytest

from badge_console.core import browse
from badge_console.core.connection import connect
from badge_console.tui.db import Database


@pytest.fixture(scope="module")
def bouncer():
    from clusters import Cluster, PgBouncer

    cluster = Cluster.start()
    pool = PgBouncer(cluster, "transaction")
    yield pool
    pool.stop()
    cluster.stop()


def test_console_queries_leave_no_setting_in_the_pool(bouncer):
    db = Database(bouncer.dsn())
    try:
        for _ in range(3):
            db.run("tables", browse.list_tables)
            db.run("badges", browse.table_choices)
            db.server_version()
    finally:
        db.close()
    for _ in range(6):  # later clients of the pool, as psql would be
        with psycopg.connect(bouncer.dsn(), autocommit=True, prepare_threshold=None) as c:
            assert c.execute("SHOW statement_timeout").fetchone()[0] == "0"
            assert c.execute("SHOW lock_timeout").fetchone()[0] == "0"


def test_repeated_queries_of_two_clients_share_the_pool(bouncer):
    """psycopg prepares a query run 5 times; through the pool two clients' prepared
    statements would collide on one server connection (or be missing on another)."""
    a, b = (connect(bouncer.dsn(), autocommit=True) for _ in range(2))
    try:
        for i in range(12):
            for conn in (a, b):
                assert conn.execute("SELECT %s::int + 1", (i,)).fetchone()[0] == i + 1
    finally:
        a.close()
        b.close()


def test_two_workers_of_one_view_never_share_a_transaction(dsn):
    """A view's workers take turns on its connection: a query of one never runs inside the
    other's transaction (it saw the other's SET LOCAL timeout, or its aborted state)."""
    import threading

    db = Database(dsn)
    seen, errors = [], []

    def in_transaction(conn):
        with conn.transaction():
            conn.execute("SET LOCAL statement_timeout = '5s'")
            conn.execute("SELECT pg_sleep(0.02)")

    def plain(conn):
        return conn.execute("SELECT current_setting('statement_timeout')").fetchone()[0]

    def run(fn):
        try:
            seen.append(db.run("badges", fn))
        except Exception as exc:  # noqa: BLE001 - the assertion names it
            errors.append(repr(exc))

    for _ in range(20):
        pair = [threading.Thread(target=run, args=(fn,)) for fn in (in_transaction, plain)]
        for thread in pair:
            thread.start()
        for thread in pair:
            thread.join()
    db.discard("badges")
    assert errors == []
    assert [s for s in seen if s is not None] == ["0"] * 20
