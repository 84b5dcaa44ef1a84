"""core.advice: a condition that would scan a table on every write names the index to add."""

from __future__ import annotations

import json

import psycopg

from badge_console.core.advice import index_advice
from badge_console.core.definitions import parse_badge_file
from badge_console.core.resolve import resolve
from conftest import make_demo
from helpers import demo_badge


def advice_for(dsn: str, *badges: dict) -> dict[str, list[str]]:
    bf = parse_badge_file(json.dumps({"badges": list(badges)}))
    with psycopg.connect(dsn) as conn:
        res = resolve(conn, bf)
        assert res.ok, res.problems
        return {t.badge.code: index_advice(conn, t) for t in res.targets}


def test_indexed_condition_gets_no_advice(dsn):
    make_demo(dsn, users=50, sketches=500)  # the demo indexes dummy_sketch(user_id)
    assert advice_for(dsn, demo_badge("collector")) == {"collector": []}


def test_missing_index_is_named(dsn):
    make_demo(dsn, users=50, sketches=500)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP INDEX dummy_sketch_user_id")
    [warning] = advice_for(dsn, demo_badge("collector"))["collector"]
    assert "collector" in warning and '"public"."dummy_sketch"' in warning
    assert 'CREATE INDEX ON "public"."dummy_sketch" ("user_id")' in warning


def test_condition_without_a_table_and_the_sample_row_are_not_advised(dsn):
    # Star reads only NEW: the one sample row of dummy_sketch is the transition
    # source, whose scan is not the condition's and must never be reported.
    make_demo(dsn, users=50, sketches=500)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP INDEX dummy_sketch_user_id")
    assert advice_for(dsn, demo_badge("star"), demo_badge("pionner")) == {
        "star": [], "pionner": []}


def test_other_table_with_odd_names_is_quoted(dsn):
    make_demo(dsn, users=20)
    with psycopg.connect(dsn) as conn:
        conn.execute('CREATE TABLE "Comment Log" ("Author Id" int, body text)')
        conn.execute('INSERT INTO "Comment Log" SELECT i %% 20, %s FROM generate_series(1, 3000) i',
                     ("x",))
        conn.execute('ANALYZE "Comment Log"')
    badge = demo_badge("collector") | dict(
        code="commenter", name="Commenter",
        condition='count(*) >= 3 from "Comment Log" where "Author Id" = NEW.user_id '
                  "and body <> ''")
    [warning] = advice_for(dsn, badge)["commenter"]
    # the equality with NEW is the column to index, not every column in the filter
    assert 'CREATE INDEX ON "public"."Comment Log" ("Author Id")' in warning


def test_update_badge_reading_old_and_new(dsn):
    make_demo(dsn, users=20, sketches=100)
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE TABLE view_log (sketch_id int, viewer int)")
    badge = demo_badge("star") | dict(
        code="climber", name="Climber",
        condition="NEW.hit_views > OLD.hit_views and exists (select 1 from view_log "
                  "where sketch_id = NEW.id)")
    [warning] = advice_for(dsn, badge)["climber"]
    assert 'CREATE INDEX ON "public"."view_log" ("sketch_id")' in warning
    assert "update" in warning


def test_advice_leaves_no_trace(dsn):
    make_demo(dsn, users=20, sketches=100)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP INDEX dummy_sketch_user_id")
        conn.commit()
        bf = parse_badge_file(json.dumps({"badges": [demo_badge("collector")]}))
        target = resolve(conn, bf).targets[0]
        conn.commit()
        assert index_advice(conn, target)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"
