"""Badges on a partitioned table, managed the pg_partman way: partitions are created (or
attached) after the badges were installed, and the application writes to the parent."""

from __future__ import annotations

import psycopg

from helpers import awards, install_badges, run

REGULAR = {"name": "Regular", "code": "regular", "trigger_condition": "insert",
           "condition": "count(*) >= 2 from event_log where user_id = NEW.user_id",
           "trigger_table": "event_log", "user_field": "user_id"}
BIG = {"name": "Big spender", "code": "big", "condition": "NEW.amount > 100",
       "trigger_condition": "insert", "trigger_table": "event_log", "user_field": "user_id"}


def test_rows_in_partitions_created_after_install_are_awarded(dsn):
    run(dsn, "CREATE TABLE auth_user (id integer PRIMARY KEY)",
        "INSERT INTO auth_user SELECT generate_series(1, 20)",
        "CREATE TABLE event_log (id bigserial, user_id integer NOT NULL REFERENCES auth_user,"
        " amount integer, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
        "CREATE TABLE event_log_p2026_01 PARTITION OF event_log"
        " FOR VALUES FROM ('2026-01-01') TO ('2026-02-01')",
        "CREATE TABLE event_log_default PARTITION OF event_log DEFAULT")
    install_badges(dsn, [REGULAR, BIG])
    # what pg_partman's maintenance does later: a new child declared as a partition, and
    # one made like the parent, then attached
    run(dsn, "CREATE TABLE event_log_p2026_02 PARTITION OF event_log"
             " FOR VALUES FROM ('2026-02-01') TO ('2026-03-01')",
        "CREATE TABLE event_log_p2026_03 (LIKE event_log INCLUDING ALL)",
        "ALTER TABLE event_log ATTACH PARTITION event_log_p2026_03"
        " FOR VALUES FROM ('2026-03-01') TO ('2026-04-01')")
    run(dsn, "INSERT INTO event_log (user_id, amount, at) VALUES (1, 5, '2026-02-03'),"
             " (1, 5, '2026-03-04')",  # two partitions made after install, one statement
        "INSERT INTO event_log (user_id, amount, at) VALUES (2, 500, '2026-03-03')",
        "INSERT INTO event_log (user_id, amount, at) VALUES (3, 5, '2026-02-01')",
        "INSERT INTO event_log (user_id, amount, at) VALUES (3, 5, '2027-01-01')")  # default
    assert awards(dsn) == [(1, "regular"), (2, "big"), (3, "regular")]
    with psycopg.connect(dsn) as conn:  # the rows really went to the new partitions
        assert conn.execute("SELECT tableoid::regclass::text, count(*) FROM event_log"
                            " GROUP BY 1 ORDER BY 1").fetchall() == [
            ("event_log_default", 1), ("event_log_p2026_02", 2), ("event_log_p2026_03", 2)]
