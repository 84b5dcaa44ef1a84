"""The kill switch always works, errors stay bounded, and our awards never break a delete.

Each case is a row of issue 15's table, tried as the application would write.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from badge_console.core.install import uninstall
from helpers import awards, demo_badge, install_badges, run

FAILING = "(NEW.hit_views / (NEW.hit_views - NEW.hit_views)) > 0"  # division by zero


def sketches(dsn, n=50):
    run(dsn, "INSERT INTO dummy_sketch (user_id, title) SELECT 1 + i % 90, 's' || i"
             f" FROM generate_series(1, {int(n)}) AS i")


def one_row_updates(dsn, n: int) -> int:
    """n one-row updates, one transaction each; returns how many failed."""
    failed = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM dummy_sketch ORDER BY id")]
        for i in range(n):
            try:
                conn.execute("UPDATE dummy_sketch SET hit_views = hit_views + 1 WHERE id = %s",
                             (ids[i % len(ids)],))
            except psycopg.Error:
                failed += 1
    return failed


def count(dsn, query):
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchone()[0]


@pytest.mark.parametrize("target", ["star", None])
def test_pause_stops_a_failing_inline_raise_badge(demo, cli, target):
    install_badges(demo, [demo_badge("star", condition=FAILING, on_error="raise")])
    sketches(demo)
    assert one_row_updates(demo, 5) == 5  # raise: the write fails, as asked
    assert cli("pause", *([target] if target else []), "--dsn", demo)[0] == 0
    assert one_row_updates(demo, 50) == 0
    run(demo, "UPDATE dummy_sketch SET hit_views = hit_views + 1")  # the set-based path too
    assert count(demo, "SELECT count(*) FROM badge_console.error_log") == 0


def test_paused_skip_badge_records_nothing(demo, cli):
    install_badges(demo, [demo_badge("star", condition=FAILING)])
    sketches(demo)
    assert cli("pause", "star", "--dsn", demo)[0] == 0
    assert one_row_updates(demo, 20) == 0
    assert count(demo, "SELECT count(*) FROM badge_console.error_log") == 0


def test_failing_badge_pauses_itself_after_1000_statements(demo, cli, badge_file):
    path = badge_file({"badges": [demo_badge("star", condition=FAILING)]})
    assert cli("install", "--dsn", demo, "--badges", path, "--yes")[0] == 0
    sketches(demo)
    assert one_row_updates(demo, 1200) == 0
    assert count(demo, "SELECT count(*) FROM badge_console.error_log") == 1000
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    star = json.loads(out)["badges"][0]
    assert star["paused"] and star["auto_paused"]["sqlstate"] == "22012"
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path)
    assert "auto-paused" in out and "division by zero" in out
    code, out, _ = cli("errors", "--dsn", demo, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["badges"][0]["code"] == "star" and doc["badges"][0]["count"] == 1000
    code, out, _ = cli("errors", "star", "--dsn", demo)
    assert code == 0 and "division by zero" in out and "auto-paused" in out
    # resume re-arms: failures are recorded again and count towards a new pause
    assert cli("resume", "star", "--dsn", demo)[0] == 0
    assert one_row_updates(demo, 3) == 0
    assert count(demo, "SELECT count(*) FROM badge_console.error_log") == 3
    assert count(demo, "SELECT count(*) FROM badge_console.paused") == 0
    code, out, _ = cli("errors", "--clear", "--json", "--dsn", demo)
    assert code == 0 and json.loads(out)["cleared"] == 3
    assert count(demo, "SELECT count(*) FROM badge_console.error_log") == 0


def test_errors_clear_is_refused_read_only(demo, cli):
    install_badges(demo, [demo_badge("star")])
    code, _, err = cli("errors", "--clear", "--read-only", "--dsn", demo)
    assert code == 1 and "read-only" in err


DJANGO_AWARDS = """
CREATE TABLE badges_badge (id serial PRIMARY KEY, name varchar(255) NOT NULL,
  code varchar(100) NOT NULL,
  user_id integer NOT NULL REFERENCES auth_user (id) DEFERRABLE INITIALLY DEFERRED,
  UNIQUE (user_id, name))
"""


def test_django_user_delete_is_never_broken_by_a_delete_badge(demo):
    run(demo, DJANGO_AWARDS)
    install_badges(demo, [demo_badge("spring_cleaning")])
    sketches(demo)
    with psycopg.connect(demo) as conn:  # user.delete(): awards, then sketches, then the user
        conn.execute("DELETE FROM badges_badge WHERE user_id = 2")
        conn.execute("DELETE FROM dummy_sketch WHERE user_id = 2")
        conn.execute("DELETE FROM auth_user WHERE id = 2")
    assert count(demo, "SELECT count(*) FROM auth_user WHERE id = 2") == 0
    run(demo, "DELETE FROM dummy_sketch WHERE user_id = 3")  # a plain delete still awards
    assert awards(demo) == [(3, "spring_cleaning")]
    with psycopg.connect(demo) as conn:
        uninstall(conn)
    assert count(demo, "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0


def test_cascading_delete_is_never_broken_by_a_delete_badge(demo):
    run(demo, "ALTER TABLE dummy_sketch DROP CONSTRAINT dummy_sketch_user_id_fkey",
        "ALTER TABLE dummy_sketch ADD FOREIGN KEY (user_id) REFERENCES auth_user (id)"
        " ON DELETE CASCADE",
        "CREATE TABLE badges_badge (id bigserial PRIMARY KEY, name text NOT NULL,"
        " code text NOT NULL, awarded_at timestamptz NOT NULL DEFAULT now(),"
        " user_id integer NOT NULL REFERENCES auth_user (id), UNIQUE (user_id, code))")
    install_badges(demo, [demo_badge("spring_cleaning", on_error="raise")])
    sketches(demo)
    run(demo, "DELETE FROM auth_user WHERE id = 2")
    assert count(demo, "SELECT count(*) FROM auth_user WHERE id = 2") == 0
    assert awards(demo) == []


def test_failing_writers_never_wait_on_one_another(demo):
    """No counter row: a failing write in an open transaction does not hold up another."""
    install_badges(demo, [demo_badge("star", condition=FAILING)])
    sketches(demo)
    with psycopg.connect(demo) as first, psycopg.connect(demo) as second:
        first.execute("UPDATE dummy_sketch SET hit_views = 1 WHERE id = 1")  # left open
        second.execute("SET lock_timeout = '1s'")
        second.execute("UPDATE dummy_sketch SET hit_views = 1 WHERE id = 2")
        second.commit()
        first.commit()
    assert count(demo, "SELECT count(*) FROM badge_console.error_log") == 2


def test_installing_the_fixed_badge_clears_its_errors_and_auto_pause(demo, cli, badge_file):
    install_badges(demo, [demo_badge("star", condition=FAILING)])
    sketches(demo)
    one_row_updates(demo, 1000)
    path = badge_file({"badges": [demo_badge("star")]})
    assert cli("install", "--dsn", demo, "--badges", path, "--yes")[0] == 0
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    star = json.loads(out)["badges"][0]
    assert (star["status"], star["errors"], star["paused"]) == ("installed", [], False)
    run(demo, "UPDATE dummy_sketch SET hit_views = 1000 WHERE id = 1")
    assert awards(demo) == [(2, "star")]


def test_pause_stops_a_row_trigger_too(demo, cli):
    """A partition gets a row trigger (no transition tables there): paused, it raises nothing."""
    run(demo, "CREATE TABLE parted (id int, user_id int, v int) PARTITION BY RANGE (id)",
        "CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000)")
    for condition in ("(NEW.v / 0) > 1", "(NEW.v / 0) > count(*) FROM parted"):
        install_badges(demo, [{"name": "P", "code": "p", "condition": condition,
                               "trigger_condition": "insert", "trigger_table": "parted_1",
                               "user_field": "user_id", "on_error": "raise"}])
        with pytest.raises(psycopg.errors.DivisionByZero):
            run(demo, "INSERT INTO parted_1 VALUES (1, 1, 1)")
        assert cli("pause", "p", "--dsn", demo)[0] == 0
        run(demo, "INSERT INTO parted_1 VALUES (1, 1, 1)")
        assert cli("resume", "p", "--dsn", demo)[0] == 0
