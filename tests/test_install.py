"""Plan statuses, atomic install, locks, uninstall, odd names and injection attempts."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest

from badge_console.core.definitions import parse_badge_file
from badge_console.core.errors import DefinitionError, OperationFailed
from badge_console.core.install import install, plan_install, uninstall

from helpers import DEMO_BADGES, awards, demo_badge, install_badges, run


def statuses(dsn, badges, **settings) -> dict:
    bf = parse_badge_file(json.dumps({"badges": badges, **settings}))
    with psycopg.connect(dsn) as conn:
        plan = plan_install(conn, bf)
    return {i.code: (i.status, i.action) for i in plan.items}


def test_plan_statuses_follow_edits(demo):
    assert statuses(demo, DEMO_BADGES) == {b["code"]: ("missing", "create") for b in DEMO_BADGES}
    install_badges(demo, DEMO_BADGES)
    edited = [demo_badge("pionner"), demo_badge("collector", condition=(
        "count(id) >= 10 from dummy_sketch where user_id = NEW.user_id")),
        demo_badge("star", enabled=False)]
    assert statuses(demo, edited) == {
        "pionner": ("installed", "unchanged"), "collector": ("outdated", "replace"),
        "star": ("disabled", "drop"), "spring_cleaning": ("orphaned", "drop")}
    run(demo, "DROP TRIGGER bc__upd ON auth_user")
    assert statuses(demo, edited)["pionner"] == ("missing", "replace")
    bad = [demo_badge("pionner", condition="NEW.nope")]
    assert statuses(demo, bad)["pionner"] == ("invalid", "none")


def test_applying_the_edited_plan(demo):
    install_badges(demo, DEMO_BADGES)
    install_badges(demo, [demo_badge("collector", condition=(
        "count(id) >= 2 from dummy_sketch where user_id = NEW.user_id"))])
    with psycopg.connect(demo) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'bc\\_%' ORDER BY 1")]
    assert names == ["bc__ins"]
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (1, 'b')")
    assert awards(demo) == [(1, "collector")]


def test_invalid_file_installs_nothing(demo):
    with pytest.raises(DefinitionError):
        install_badges(demo, [demo_badge("star"), demo_badge("collector", user_field="nope")])
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
                            ).fetchone()[0] == 0


def test_failure_midway_keeps_previous_installation(demo):
    install_badges(demo, DEMO_BADGES)
    # A function of another return type under the new table's function name makes its
    # CREATE OR REPLACE FUNCTION fail after earlier drops/creates ran.
    run(demo, "CREATE TABLE other (id int PRIMARY KEY, user_id int)",
        'CREATE FUNCTION badge_console."public.other__insert"() RETURNS int LANGUAGE sql'
        " AS 'SELECT 1'")
    late = {"name": "Late", "code": "late", "condition": "true", "trigger_condition": "insert",
            "trigger_table": "other", "user_field": "user_id"}
    changed = [demo_badge("star", condition="NEW.hit_views >= 5"), *DEMO_BADGES[:2], late]
    with pytest.raises(OperationFailed) as err:
        install_badges(demo, changed)
    assert "nothing was changed" in str(err.value)
    assert statuses(demo, DEMO_BADGES) == {b["code"]: ("installed", "unchanged")
                                           for b in DEMO_BADGES}


def test_install_gives_up_behind_an_application_lock(demo):
    blocker = psycopg.connect(demo)
    blocker.execute("LOCK TABLE dummy_sketch IN ACCESS EXCLUSIVE MODE")
    try:
        bf = parse_badge_file(json.dumps([demo_badge("star")]))
        started = time.monotonic()
        with psycopg.connect(demo) as conn, pytest.raises(OperationFailed) as err:
            install(conn, bf, lock_timeout="300ms")
        assert time.monotonic() - started < 5
        assert "lock" in str(err.value)
    finally:
        blocker.rollback()
        blocker.close()
    assert statuses(demo, [demo_badge("star")])["star"] == ("missing", "create")


def test_concurrent_installs_are_serialised(demo):
    bf = parse_badge_file(json.dumps(DEMO_BADGES))
    results, errors = [], []

    def go():
        try:
            with psycopg.connect(demo) as conn:
                results.append(install(conn, bf))
        except Exception as exc:  # asserted below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    created = sum(1 for plan in results for i in plan.items if i.action == "create")
    assert created == len(DEMO_BADGES)  # one install created, the others found nothing to do


def test_uninstall_keeps_awards_and_data(demo):
    install_badges(demo, DEMO_BADGES)
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 1, 'x' FROM generate_series(1, 5)")
    with psycopg.connect(demo) as conn:
        assert uninstall(conn) == 4
        assert conn.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM dummy_sketch").fetchone()[0] == 5
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
                            ).fetchone()[0] == 0
    assert awards(demo) == [(1, "collector")]
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 2, 'x' FROM generate_series(1, 5)")
    assert awards(demo) == [(1, "collector")]


ODD_TABLES = ['My Table', 'quote"d', "x'); drop table auth_user; --", "ünïcödé", "select"]


@pytest.mark.parametrize("table", ODD_TABLES)
def test_odd_table_and_column_names(demo, table):
    from psycopg import sql

    with psycopg.connect(demo) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, {} int, \"Score\" int)")
                     .format(sql.Identifier(table), sql.Identifier("User ID")))
    badge = {"name": "Odd 'name' \"quoted\" ; drop table auth_user; --", "code": "odd",
             "condition": 'NEW."Score" > 10', "trigger_condition": "insert",
             "trigger_table": table, "user_field": "User ID"}
    install_badges(demo, [badge])
    with psycopg.connect(demo) as conn:
        conn.execute(sql.SQL("INSERT INTO {} ({}, \"Score\") VALUES (1, 5), (2, 50)").format(
            sql.Identifier(table), sql.Identifier("User ID")))
        name = conn.execute("SELECT name FROM badges_badge").fetchone()[0]
        assert conn.execute("SELECT to_regclass('auth_user')").fetchone()[0] is not None
    assert awards(demo) == [(2, "odd")]
    assert name == badge["name"]


def test_schema_qualified_table_off_the_search_path_and_custom_award_table(demo):
    run(demo, 'CREATE SCHEMA "Game Data"',
        'CREATE TABLE "Game Data".plays (id serial PRIMARY KEY, player int, score int)')
    badge = {"name": "High", "code": "high", "condition": "NEW.score > 100",
             "trigger_condition": "insert", "trigger_table": "Game Data.plays",
             "user_field": "player"}
    install_badges(demo, [badge], award_table="Game Data.awards", channel="game events")
    with psycopg.connect(demo, autocommit=True) as listener:
        listener.execute('LISTEN "game events"')
        run(demo, 'INSERT INTO "Game Data".plays (player, score) VALUES (1, 500), (2, 5)')
        payloads = [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    assert awards(demo, table='"Game Data".awards') == [(1, "high")]
    assert [p["table"] for p in payloads] == ["Game Data.plays"]


def test_condition_with_dollar_quote_and_comment_tricks(demo):
    tricky = demo_badge("star", condition="NEW.title <> '$badge$ -- */' /* c */ AND "
                                          "NEW.hit_views >= $$1000$$::int -- tail")
    install_badges(demo, [tricky])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a')",
        "UPDATE dummy_sketch SET hit_views = 1000")
    assert awards(demo) == [(1, "star")]


def test_legacy_django_pg_badges_trigger_is_replaced(demo):
    run(demo, """CREATE FUNCTION badge_Star() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RETURN NULL; END $$""",
        "CREATE TRIGGER badge_Star AFTER UPDATE ON dummy_sketch FOR EACH ROW "
        "EXECUTE FUNCTION badge_Star()",
        """CREATE FUNCTION badge_other() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN RETURN NULL; END $$""",
        "CREATE TRIGGER badge_other AFTER UPDATE ON auth_user FOR EACH ROW "
        "EXECUTE FUNCTION badge_other()")
    before = statuses(demo, [demo_badge("star")])
    assert before == {"star": ("legacy", "replace"), "badge_other": ("legacy", "keep")}
    install_badges(demo, [demo_badge("star")])
    with psycopg.connect(demo) as conn:
        names = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    assert names == {"bc__upd", "badge_other"}


def test_our_triggers_left_without_bookkeeping_are_replaced_not_an_error(demo):
    """E.g. a restore that brought the triggers back but not badge_console.installed."""
    install_badges(demo, [demo_badge("star")])
    run(demo, "DELETE FROM badge_console.installed")
    assert statuses(demo, [demo_badge("star")]) == {"star": ("missing", "replace")}
    install_badges(demo, [demo_badge("star")])
    with psycopg.connect(demo) as conn:
        names = [r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")]
    assert names == ["bc__upd"]
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (3, 'x', 0)",
        "UPDATE dummy_sketch SET hit_views = 1000")
    assert awards(demo) == [(3, "star")]


def test_trigger_disabled_in_the_database_is_its_own_status_and_install_re_enables_it(demo):
    """ALTER TABLE ... DISABLE TRIGGER leaves the trigger in place but it awards nobody."""
    install_badges(demo, [demo_badge("star"), demo_badge("pionner")])
    run(demo, "ALTER TABLE dummy_sketch DISABLE TRIGGER USER")
    assert statuses(demo, [demo_badge("star"), demo_badge("pionner")]) == {
        "star": ("disabled-in-db", "replace"), "pionner": ("installed", "unchanged")}
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (3, 'x', 0)",
        "UPDATE dummy_sketch SET hit_views = 1000")
    assert awards(demo) == []
    install_badges(demo, [demo_badge("star"), demo_badge("pionner")])
    run(demo, "UPDATE dummy_sketch SET hit_views = 1001")
    assert awards(demo) == [(3, "star")]
    assert statuses(demo, [demo_badge("star")])["star"] == ("installed", "unchanged")


def test_paused_badge_awards_nothing_until_resumed(demo):
    from badge_console.core.bookkeeping import set_paused

    install_badges(demo, [demo_badge("star")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (2, 'b')")
    with psycopg.connect(demo) as conn:
        set_paused(conn, "star", True)
    run(demo, "UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 1")
    assert awards(demo) == []
    with psycopg.connect(demo) as conn:
        set_paused(conn, "star", False)
        set_paused(conn, None, True)
    run(demo, "UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 2")
    assert awards(demo) == []
    with psycopg.connect(demo) as conn:
        set_paused(conn, None, False)
    run(demo, "UPDATE dummy_sketch SET hit_views = 1001")
    assert awards(demo) == [(1, "star"), (2, "star")]


def test_runtime_error_is_skipped_and_recorded(demo):
    install_badges(demo, [demo_badge("star", condition="NEW.hit_views / (NEW.id - NEW.id) > 0")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a')",
        "UPDATE dummy_sketch SET hit_views = 5")  # the application's write succeeds
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT hit_views FROM dummy_sketch").fetchone()[0] == 5
        row = conn.execute("SELECT code, sqlstate FROM badge_console.error_log").fetchone()
    assert row == ("star", "22012")


def test_on_error_raise_fails_the_write(demo):
    install_badges(demo, [demo_badge("star", condition="NEW.hit_views / 0 > 0",
                                     on_error="raise")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a')")
    with pytest.raises(psycopg.errors.DivisionByZero):
        run(demo, "UPDATE dummy_sketch SET hit_views = 5")


def test_one_subtransaction_per_statement_not_per_row(demo, cli, badge_file):
    """A failing condition over a 500-row statement records one error, not 500: the
    EXCEPTION block wraps the statement's set-based evaluation once."""
    install_badges(demo, [demo_badge("star", condition="NEW.hit_views / (NEW.id - NEW.id) > 0")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) "
              "SELECT 1 + g % 100, 'x' FROM generate_series(1, 500) g",
        "UPDATE dummy_sketch SET hit_views = 1")
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.error_log").fetchone()[0] == 1
    path = badge_file([demo_badge("star", condition="NEW.hit_views / (NEW.id - NEW.id) > 0")])
    code, out, _ = cli("plan", "--dsn", demo, "--json", "--badges", path)
    item = next(i for i in json.loads(out)["badges"] if i["code"] == "star")
    assert item["errors"][0]["sqlstate"] == "22012" and item["errors"][0]["count"] == 1


def test_long_codes_and_a_long_table_name_share_one_trigger_with_a_short_function(demo):
    """Two badges on one table and op: one trigger; the table's function name would exceed
    63 bytes, so it is shortened with a hash (and both badges still award)."""
    first, second = "c" * 49 + "1", "c" * 49 + "2"
    long_col = "u" * 63
    run(demo, f'CREATE TABLE "{"t" * 63}" (id serial PRIMARY KEY, "{long_col}" int)')
    badges = [{"name": n, "code": n, "condition": "true", "trigger_condition": "insert",
               "trigger_table": "t" * 63, "user_field": long_col} for n in (first, second)]
    install_badges(demo, badges)
    run(demo, f'INSERT INTO "{"t" * 63}" ("{long_col}") VALUES (1)')
    assert awards(demo) == [(1, first), (1, second)]
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'bc\\_%'"
                            ).fetchone()[0] == 1
        name = conn.execute("SELECT p.proname FROM pg_trigger t JOIN pg_proc p"
                            " ON p.oid = t.tgfoid WHERE t.tgname = 'bc__ins'").fetchone()[0]
    assert name.startswith("public.ttt") and name.endswith("__insert") and len(name) == 63


def test_plan_names_the_index_a_condition_needs(demo, cli, badge_file):
    path = badge_file([demo_badge("collector"), demo_badge("star")])
    code, out, _ = cli("plan", "--dsn", demo, "--json", "--badges", path)
    assert {i["code"]: i["advice"] for i in json.loads(out)["badges"]} == {
        "collector": [], "star": []}
    run(demo, "DROP INDEX dummy_sketch_user_id")
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path)
    assert code == 0
    assert 'badge collector: ' in out and 'CREATE INDEX ON "public"."dummy_sketch" ("user_id")' \
        in out.replace("\n", "")
