"""Health of what is installed: the application migrates, we say what broke and install repairs it.

Each case is a row of issue 15's table: the migration, then what validate, plan and
install show, and that the application's writes succeed.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from helpers import DEMO_BADGES, ROOT, awards, demo_badge, install_badges, run


def badges_by_code(out: str) -> dict:
    return {b["code"]: b for b in json.loads(out)["badges"]}


def our_triggers(dsn) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT tgrelid::regclass::text, tgname FROM pg_trigger"
            " WHERE tgname LIKE 'bc\\_%' ORDER BY 1, 2")]


def test_dropped_column_shows_broken_and_disabling_repairs(demo, cli, badge_file):
    path = badge_file({"badges": DEMO_BADGES})
    assert cli("install", "--dsn", demo, "--badges", path, "--yes")[0] == 0
    run(demo, "ALTER TABLE dummy_sketch DROP COLUMN hit_views")
    code, out, err = cli("validate", "--dsn", demo, "--badges", path)
    assert code == 1
    assert "star" in err and "broken" in err and "hit_views" in err
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    items = badges_by_code(out)
    assert items["star"]["status"] == "broken"
    assert "hit_views" in items["star"]["detail"] and "enabled" in items["star"]["detail"]
    # the migration that broke it, as the event trigger recorded it (superuser here)
    assert "after `ALTER TABLE dummy_sketch DROP COLUMN hit_views` at" in items["star"]["detail"]
    assert items["spring_cleaning"]["status"] == "broken"
    assert items["collector"]["status"] == "installed"
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path)
    assert "broken" in out
    # The operator disables the broken badges: install removes their triggers, although
    # they no longer resolve, and leaves the others as they are.
    fixed = [demo_badge("pionner"), demo_badge("collector"),
             demo_badge("star", enabled=False), demo_badge("spring_cleaning", enabled=False)]
    path = badge_file({"badges": fixed})
    code, out, err = cli("install", "--dsn", demo, "--badges", path, "--yes")
    assert code == 0, err
    assert our_triggers(demo) == [("auth_user", "bc__upd"), ("dummy_sketch", "bc__ins")]
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 1, 'x' FROM generate_series(1, 5)",
        "UPDATE dummy_sketch SET title = 'y'", "DELETE FROM dummy_sketch WHERE id = 1")
    assert awards(demo) == [(1, "collector")]
    code, _, err = cli("validate", "--dsn", demo, "--badges", path)
    assert code == 0 and "warning" in err and "hit_views" in err  # disabled: said, not blocking


def test_dropped_column_under_on_error_raise_pause_lets_writes_through(demo, cli):
    install_badges(demo, [demo_badge("star", on_error="raise"),
                          demo_badge("spring_cleaning", on_error="raise")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (2, 'b')")
    run(demo, "ALTER TABLE dummy_sketch DROP COLUMN hit_views")
    assert cli("pause", "--dsn", demo)[0] == 0
    run(demo, "UPDATE dummy_sketch SET title = 'c' WHERE id = 1",
        "DELETE FROM dummy_sketch WHERE id = 2")
    assert awards(demo) == []


def test_a_dropped_column_badge_paused_alone_lets_writes_through_and_records_nothing(
        demo, cli):
    """Star (on_error raise) shares the update trigger with a healthy badge; its column is
    dropped and only Star is paused: the application's write goes through, and nothing is
    logged for Star (SPEC §7, the kill switch)."""
    titled = {"name": "Titled", "code": "titled", "condition": "NEW.title = 'c'",
              "trigger_condition": "update", "trigger_table": "dummy_sketch",
              "user_field": "user_id"}
    install_badges(demo, [demo_badge("star", on_error="raise"), titled])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (2, 'b')")
    run(demo, "ALTER TABLE dummy_sketch DROP COLUMN hit_views")
    assert cli("pause", "star", "--dsn", demo)[0] == 0
    run(demo, "UPDATE dummy_sketch SET title = 'c' WHERE id = 1",
        "UPDATE dummy_sketch SET title = 'c' WHERE id = 2")
    with psycopg.connect(demo) as conn:
        logged = [r[0] for r in conn.execute("SELECT code FROM badge_console.error_log")]
    assert "star" not in logged


def test_badge_removed_from_file_is_uninstalled_though_it_no_longer_resolves(demo):
    install_badges(demo, DEMO_BADGES)
    run(demo, "ALTER TABLE dummy_sketch DROP COLUMN hit_views")
    install_badges(demo, [demo_badge("pionner"), demo_badge("collector")])
    assert our_triggers(demo) == [("auth_user", "bc__upd"), ("dummy_sketch", "bc__ins")]


def test_renamed_table_is_repaired_by_install(demo, cli, badge_file):
    install_badges(demo, DEMO_BADGES)
    run(demo, "ALTER TABLE dummy_sketch RENAME TO sketches")
    code, out, _ = cli("plan", "--dsn", demo, "--badges", ROOT / "badge.json", "--json")
    assert badges_by_code(out)["star"]["status"] == "broken"
    moved = [demo_badge("pionner")] + [
        demo_badge(b["code"], trigger_table="sketches",
                   condition=b["condition"].replace("dummy_sketch", "sketches"))
        for b in DEMO_BADGES[1:]]
    path = badge_file({"badges": moved})
    assert cli("validate", "--dsn", demo, "--badges", path)[0] == 1  # installed is broken
    code, out, err = cli("install", "--dsn", demo, "--badges", path, "--yes")
    assert code == 0, err
    assert our_triggers(demo) == [("auth_user", "bc__upd"), ("sketches", "bc__del"),
                                  ("sketches", "bc__ins"), ("sketches", "bc__upd")]
    run(demo, "INSERT INTO sketches (user_id, title) SELECT 4, 'x' FROM generate_series(1, 5)")
    assert awards(demo) == [(4, "collector")]
    code, out, _ = cli("validate", "--dsn", demo, "--badges", path)
    assert code == 0
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    assert {b["status"] for b in json.loads(out)["badges"]} == {"installed"}
    assert cli("uninstall", "--dsn", demo, "--yes")[0] == 0
    with psycopg.connect(demo) as conn:  # the migration recorder goes with schema badge_console
        assert conn.execute("SELECT count(*) FROM pg_event_trigger").fetchone()[0] == 0


def test_user_id_wider_than_the_award_table_is_refused(demo, cli):
    install_badges(demo, DEMO_BADGES)
    run(demo, "ALTER TABLE auth_user ALTER COLUMN id TYPE bigint",
        "ALTER TABLE dummy_sketch ALTER COLUMN user_id TYPE bigint")
    badges = ROOT / "badge.json"
    code, _, err = cli("validate", "--dsn", demo, "--badges", badges)
    assert code == 1
    assert "award table user_id is integer, public.auth_user.id is bigint" in err
    assert "ALTER TABLE" in err
    code, out, _ = cli("plan", "--dsn", demo, "--badges", badges, "--json")
    assert badges_by_code(out)["collector"]["status"] == "broken"
    run(demo, "ALTER TABLE badges_badge ALTER COLUMN user_id TYPE bigint")
    assert cli("validate", "--dsn", demo, "--badges", badges)[0] == 0


def test_two_badges_sharing_a_name_on_the_django_table_are_refused(demo, cli, badge_file):
    run(demo, "CREATE TABLE badges_badge (id serial PRIMARY KEY, name varchar(255) NOT NULL,"
              " code varchar(100) NOT NULL, user_id integer NOT NULL, UNIQUE (user_id, name))")
    path = badge_file({"badges": [demo_badge("star"),
                                  demo_badge("collector", name="Star")]})
    code, _, err = cli("validate", "--dsn", demo, "--badges", path)
    assert code == 1 and "star" in err and "collector" in err and "(user_id, name)" in err
    assert cli("install", "--dsn", demo, "--badges", path, "--yes")[0] == 1
    # once installed with distinct names, renaming one in the file breaks nothing installed
    install_badges(demo, [demo_badge("star"), demo_badge("collector")])
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    assert {b["code"]: b["status"] for b in json.loads(out)["badges"]} == {
        "star": "installed", "collector": "invalid"}


def test_control_characters_in_a_condition_are_refused(cli, badge_file):
    path = badge_file({"badges": [demo_badge("star", condition="NEW.hit_views > 1\u0000; drop")]})
    code, _, err = cli("validate", "--offline", "--badges", path)
    assert code == 1 and "control character" in err


def test_format_errors_quote_the_bad_value(cli, badge_file):
    path = badge_file({"badges": [demo_badge("star") | {"code": "star-hyphen"},
                                  demo_badge("collector", on_error="ignore") | {"code": "Bad Code!"}]})
    code, _, err = cli("validate", "--offline", "--badges", path)
    assert code == 1
    assert "'star-hyphen'" in err and "'Bad Code!'" in err and "'ignore'" in err


@pytest.mark.parametrize("bulk", [False, True], ids=["one-row", "bulk"])
def test_a_dropped_column_breaks_only_its_own_badge_not_a_sibling(demo, bulk):
    """Star's column is dropped; Titled, a plain badge of the same trigger, keeps
    awarding and records nothing: the error is Star's alone (SPEC §7, isolation per
    badge), until the operator installs again."""
    titled = {"name": "Titled", "code": "titled", "condition": "NEW.title = 'c'",
              "trigger_condition": "update", "trigger_table": "dummy_sketch",
              "user_field": "user_id"}
    install_badges(demo, [demo_badge("star"), titled])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (2, 'b')")
    run(demo, "ALTER TABLE dummy_sketch DROP COLUMN hit_views")
    if bulk:
        run(demo, "UPDATE dummy_sketch SET title = 'c'")
    else:
        run(demo, "UPDATE dummy_sketch SET title = 'c' WHERE id = 1",
            "UPDATE dummy_sketch SET title = 'c' WHERE id = 2")
    assert awards(demo) == [(1, "titled"), (2, "titled")]
    with psycopg.connect(demo) as conn:
        logged = {r[0] for r in conn.execute("SELECT code FROM badge_console.error_log")}
    assert logged == {"star"}
