"""Backfill: preview without writing, batches that award exactly what the preview counted."""

from __future__ import annotations

import json

import psycopg
import pytest

from badge_console.core.backfill import preview_backfill, run_backfill
from badge_console.core.definitions import parse_badge_file

from conftest import make_demo
from helpers import DEMO_BADGES, awards, install_badges, run


@pytest.fixture
def qualified(dsn, badge_file):
    """Users who qualify before the badges exist: 100 users, 450 sketches, some popular."""
    make_demo(dsn, users=100, sketches=450)  # 50 users own 5 sketches, 50 own 4
    run(dsn, "UPDATE dummy_sketch SET hit_views = 1500 WHERE id % 40 = 0")
    install_badges(dsn, DEMO_BADGES)
    return dsn, badge_file({"badges": DEMO_BADGES})


def award_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM badges_badge").fetchone()[0]


def by_code(doc) -> dict:
    return {b["code"]: b for b in doc["badges"]}


def test_preview_writes_nothing_and_equals_what_backfill_awards(qualified, cli):
    dsn, path = qualified
    code, out, _ = cli("backfill", "--dsn", dsn, "--badges", path, "--dry-run", "--json")
    assert code == 0
    preview = by_code(json.loads(out))
    assert award_count(dsn) == 0
    expected = {"pionner", "collector", "star"}
    assert {c for c, b in preview.items() if b["would_award"] > 0} == expected
    assert preview["collector"]["would_award"] == 50
    assert preview["collector"]["sample"] == sorted(preview["collector"]["sample"])[:10]

    with psycopg.connect(dsn, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        code, out, _ = cli("backfill", "--dsn", dsn, "--badges", path, "--json",
                           "--batch-size", "7", "--users-per-batch", "4")
        notes = [json.loads(n.payload) for n in listener.notifies(timeout=2.0)]
    assert code == 0
    done = by_code(json.loads(out))
    for c in expected:
        assert done[c]["awarded"] == preview[c]["would_award"], c
        assert len(awards(dsn, c)) == preview[c]["would_award"], c
    assert done["pionner"]["batches"] > 10  # 100 rows, 7 per transaction
    assert done["collector"]["batches"] == 25  # judged per user: 100 users, 4 per transaction
    total = sum(preview[c]["would_award"] for c in expected)
    assert len(notes) == total == award_count(dsn)
    assert {n["op"] for n in notes} == {"backfill"}


def test_backfill_twice_awards_nobody_twice(qualified, cli):
    dsn, path = qualified
    assert cli("backfill", "--dsn", dsn, "--badges", path, "--batch-size", "50")[0] == 0
    first = awards(dsn)
    code, out, _ = cli("backfill", "--dsn", dsn, "--badges", path, "--json")
    assert code == 0 and json.loads(out)["awarded"] == 0
    code, out, _ = cli("backfill", "--dsn", dsn, "--badges", path, "--dry-run", "--json")
    assert json.loads(out)["would_award"] == 0
    assert awards(dsn) == first and len(first) == len(set(first))


def test_delete_badges_are_not_applicable(qualified, cli):
    dsn, path = qualified
    code, out, _ = cli("backfill", "--dsn", dsn, "--badges", path, "--dry-run", "--json")
    item = by_code(json.loads(out))["spring_cleaning"]
    assert item["applicable"] is False and "delete badge" in item["reason"]
    code, out, _ = cli("backfill", "--dsn", dsn, "--badges", path, "--dry-run")
    assert code == 0 and "not applicable" in out and "nothing was written" in out


def test_cancel_between_batches_keeps_committed_awards_and_a_rerun_finishes(qualified):
    dsn, path = qualified
    bf = parse_badge_file(json.dumps({"badges": DEMO_BADGES}))
    calls = []
    with psycopg.connect(dsn) as conn:
        preview = preview_backfill(conn, bf)
        first = run_backfill(conn, bf, batch_size=10, progress=calls.append,
                             cancel=lambda: len(calls) >= 4)
        assert first.cancelled and 0 < first.awarded < preview.would_award
        assert award_count(dsn) == first.awarded  # each batch committed on its own
        second = run_backfill(conn, bf, batch_size=10)
    assert not second.cancelled
    assert first.awarded + second.awarded == preview.would_award == award_count(dsn)
    assert [p.rows_done for p in calls[:3]] == [0, 10, 20]


def test_table_without_primary_key_is_batched_by_block(dsn):
    run(dsn, "CREATE TABLE score (user_id int, points int)",
        "INSERT INTO score SELECT i % 300, i % 97 FROM generate_series(1, 3000) AS i")
    badges = [{"name": "High", "code": "high", "condition": "NEW.points >= 90",
               "trigger_condition": "insert", "trigger_table": "score", "user_field": "user_id"}]
    install_badges(dsn, badges)
    bf = parse_badge_file(json.dumps({"badges": badges}))
    with psycopg.connect(dsn) as conn:
        preview = preview_backfill(conn, bf)
        done = run_backfill(conn, bf, batch_size=200)
    assert preview.would_award > 0
    assert done.awarded == preview.would_award == len(awards(dsn, "high"))
    assert done.items[0].batches > 3


def test_install_with_backfill_awards_who_already_qualifies(dsn, badge_file, cli):
    make_demo(dsn, users=100, sketches=450)
    path = badge_file({"badges": DEMO_BADGES})
    code, out, _ = cli("install", "--dsn", dsn, "--badges", path, "--yes", "--backfill")
    assert code == 0 and "award(s) granted" in out
    assert len(awards(dsn, "collector")) == 50


def test_backfill_refused_under_read_only_but_preview_allowed(qualified, cli):
    dsn, path = qualified
    code, _, err = cli("backfill", "--dsn", dsn, "--badges", path, "--read-only")
    assert code == 1 and "--read-only" in err
    assert cli("backfill", "--dsn", dsn, "--badges", path, "--read-only", "--dry-run")[0] == 0
    assert award_count(dsn) == 0


def test_update_badge_comparing_old_and_new_sees_each_row_updated_to_itself(demo):
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
              " SELECT i, 't', i * 10 FROM generate_series(1, 100) AS i",
        "CREATE TABLE score (user_id int, points int)",
        "INSERT INTO score VALUES (1, 5)")
    badges = [
        {"name": "Steady", "code": "steady", "trigger_condition": "update",
         "condition": "NEW.hit_views >= OLD.hit_views AND NEW.hit_views > 900",
         "trigger_table": "dummy_sketch", "user_field": "user_id"},
        {"name": "Gain", "code": "gain", "trigger_condition": "update",
         "condition": "NEW.points > OLD.points", "trigger_table": "score",
         "user_field": "user_id"}]
    install_badges(demo, badges)
    bf = parse_badge_file(json.dumps({"badges": badges}))
    with psycopg.connect(demo) as conn:
        preview = preview_backfill(conn, bf)
        done = run_backfill(conn, bf, batch_size=16)
    steady, gain = done.items
    assert steady.awarded == preview.items[0].would_award == 10  # users 91..100
    assert steady.batches == 7
    assert not gain.applicable and "no primary key" in gain.reason
    assert [u for u, _ in awards(demo, "steady")] == list(range(91, 101))


def test_a_disabled_badge_on_a_dropped_table_is_listed_not_a_crash(qualified, cli, badge_file):
    """A badge kept in the file with enabled: false may name a table that is gone: backfill
    and revoke-unqualified say it does not apply, and still serve the other badges."""
    dsn, _ = qualified
    gone = dict(DEMO_BADGES[0], code="retired", name="Retired", trigger_table="gone_table",
                enabled=False)
    path = badge_file({"badges": [*DEMO_BADGES, gone]})
    code, out, err = cli("backfill", "--dsn", dsn, "--badges", path, "--dry-run", "--json")
    assert (code, err) == (0, "")
    preview = by_code(json.loads(out))
    assert preview["retired"]["would_award"] == 0
    assert "disabled" in preview["retired"]["reason"]
    assert preview["collector"]["would_award"] == 50
    code, out, err = cli("awards", "revoke-unqualified", "--dsn", dsn, "--badges", path,
                         "--dry-run")
    assert (code, err) == (0, ""), err
    assert "retired" in out
