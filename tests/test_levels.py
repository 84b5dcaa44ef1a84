"""Series of levels (`value` + `levels`, SPEC §2): the file keeps the series, the engine
sees one badge per level, and validate, plan, install, backfill and dry run handle them."""

from __future__ import annotations

import json

import psycopg
import pytest

from badge_console.core.backfill import run_backfill
from badge_console.core.definitions import check_definitions, parse_badge_file
from badge_console.core.dryrun import dry_run
from badge_console.core.install import plan_install
from badge_console.core.model import valid_badges
from badge_console.core.sample_rows import Sample

from conftest import make_demo
from helpers import awards, demo_badge, install_badges, run

VALUE = "count(id) from dummy_sketch where user_id = NEW.user_id"
SERIES = {
    "name": "Collector", "code": "collector", "value": VALUE,
    "levels": [{"code": "bronze", "name": "Collector (bronze)", "at": 5},
               {"code": "silver", "name": "Collector (silver)", "at": 50},
               {"code": "gold", "name": "Collector (gold)", "at": 500}],
    "trigger_condition": "insert", "trigger_table": "dummy_sketch", "user_field": "user_id",
    "description": "Owns 5, 50, 500 sketches.",
}
SMALL = dict(SERIES, levels=[{"code": "bronze", "name": "Collector (bronze)", "at": 2},
                             {"code": "silver", "name": "Collector (silver)", "at": 3},
                             {"code": "gold", "name": "Collector (gold)", "at": 5}])


def series(**changes) -> dict:
    return {k: v for k, v in (SERIES | changes).items() if v is not None}


def problems(*badges) -> list[tuple]:
    bf = parse_badge_file(json.dumps({"badges": list(badges)}))
    return [(p.index, p.key, p.kind) for p in check_definitions(bf)]


def test_a_series_is_one_valid_badge_per_level_with_a_pglast_condition():
    bf = parse_badge_file(json.dumps({"badges": [demo_badge("star"), SERIES]}))
    assert check_definitions(bf) == []
    found = valid_badges(bf, [])
    assert [(b.index, b.code, b.name, b.series, b.level, b.at) for b in found] == [
        (0, "star", "Star", None, None, None),
        (1, "bronze", "Collector (bronze)", "collector", 0, 5),
        (1, "silver", "Collector (silver)", "collector", 1, 50),
        (1, "gold", "Collector (gold)", "collector", 2, 500)]
    assert [b.condition for b in found[1:]] == [
        f"count(id) >= {at} FROM dummy_sketch WHERE user_id = new.user_id"
        for at in (5, 50, 500)]
    gold = found[3]
    assert (gold.operations, gold.trigger_table, gold.user_field, gold.enabled,
            gold.on_error, gold.entry["description"]) == (
        ("insert",), "dummy_sketch", "user_id", True, "skip", "Owns 5, 50, 500 sketches.")
    assert "value" not in gold.entry and gold.entry["condition"] == gold.condition


def test_the_value_is_parsed_not_pasted():
    bf = parse_badge_file(json.dumps({"badges": [series(
        value="NEW.hit_views OR NEW.id -- >= 1", levels=[
            {"code": "a", "name": "A", "at": 2.5}, {"code": "b", "name": "B", "at": 3_000_000_000}])]}))
    assert [b.condition for b in valid_badges(bf, [])] == [
        "(new.hit_views OR new.id) >= 2.5", "(new.hit_views OR new.id) >= 3000000000"]


def test_an_untouched_series_file_saves_byte_identical():
    text = json.dumps({"award_table": "badges_badge", "channel": "badge_awarded",
                       "badges": [demo_badge("star"), SERIES]}, indent=2) + "\n"
    assert parse_badge_file(text).to_json() == text


@pytest.mark.parametrize("entry, expected", [
    (series(condition="true"), (0, "value", "value-and-condition")),
    (series(value=None), (0, "value", "missing-key")),
    (series(levels=None), (0, "levels", "missing-key")),
    (series(levels=[]), (0, "levels", "levels-empty")),
    (series(levels={"code": "a"}), (0, "levels", "levels-empty")),
    (series(levels=[{"code": "a", "name": "A"}]), (0, "levels", "level-keys")),
    (series(levels=[{"code": "a", "name": "A", "at": 1, "colour": "red"}]),
     (0, "levels", "level-keys")),
    (series(levels=["bronze"]), (0, "levels", "level-object")),
    (series(levels=[{"code": "Bad", "name": "A", "at": 1}]), (0, "levels", "level-code")),
    (series(levels=[{"code": "a", "name": "", "at": 1}]), (0, "levels", "level-name")),
    (series(levels=[{"code": "a", "name": "A", "at": "5"}]), (0, "levels", "level-at")),
    (series(levels=[{"code": "a", "name": "A", "at": True}]), (0, "levels", "level-at")),
    (series(levels=[{"code": "a", "name": "A", "at": 5}, {"code": "b", "name": "B", "at": 5}]),
     (0, "levels", "level-order")),
    (series(levels=[{"code": "a", "name": "A", "at": 5}, {"code": "a", "name": "B", "at": 6}]),
     (0, "levels", "duplicate")),
    (series(value="count(id), 2 from dummy_sketch"), (0, "value", "values")),
    (series(value="1; select 2"), (0, "value", "statements")),
    (series(value="count(* from t"), (0, "value", "parse")),
    (series(value=""), (0, "value", "type")),
    (series(value="OLD.hit_views"), (0, "value", "old-in-insert")),
])
def test_each_series_rule(entry, expected):
    assert expected in problems(entry)


def test_level_codes_are_unique_across_the_file():
    assert (1, "levels", "duplicate") in problems(demo_badge("star") | {"code": "silver"}, SERIES)
    assert (1, "code", "duplicate") in problems(SERIES, demo_badge("star") | {"code": "gold"})


def test_a_valid_series_has_no_problem_and_a_plain_badge_still_needs_a_condition():
    assert problems(SERIES) == []
    plain = {k: v for k, v in demo_badge("star").items() if k != "condition"}
    assert (0, "condition", "missing-key") in problems(plain)


def test_level_names_share_one_award_on_a_name_unique_table(demo):
    run(demo, "CREATE TABLE awards (id bigserial PRIMARY KEY, user_id bigint NOT NULL, "
              "name text NOT NULL, code text NOT NULL, UNIQUE (user_id, name))")
    same = series(levels=[{"code": "a", "name": "Collector", "at": 1},
                          {"code": "b", "name": "Collector", "at": 2}])
    with psycopg.connect(demo) as conn:
        plan = plan_install(conn, parse_badge_file(json.dumps(
            {"award_table": "awards", "badges": [same]})))
    assert [(p.index, p.key, p.kind) for p in plan.problems] == [(0, "name", "shared-award")]


def plan_of(dsn, *badges):
    with psycopg.connect(dsn) as conn:
        plan = plan_install(conn, parse_badge_file(json.dumps({"badges": list(badges)})))
    return {i.code: (i.status, i.action) for i in plan.items}


def test_plan_lists_each_level_and_install_awards_them_on_writes(demo):
    assert plan_of(demo, SMALL) == {c: ("missing", "create") for c in ("bronze", "silver",
                                                                        "gold")}
    install_badges(demo, [SMALL])
    assert plan_of(demo, SMALL) == {c: ("installed", "unchanged")
                                    for c in ("bronze", "silver", "gold")}
    for n in range(4):
        run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, %s)", params=(str(n),))
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (2, 'x'), (2, 'y')")
    assert awards(demo) == [(1, "bronze"), (1, "silver"), (2, "bronze")]
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'last')")
    assert awards(demo, "gold") == [(1, "gold")]
    edited = dict(SMALL, levels=SMALL["levels"][:2])
    assert plan_of(demo, edited)["gold"] == ("orphaned", "drop")


def test_backfill_awards_the_levels_reached(dsn):
    make_demo(dsn, users=100, sketches=410)  # users own 4 or 5 sketches
    with psycopg.connect(dsn) as conn:
        counts = dict(conn.execute(
            "SELECT user_id, count(*) FROM dummy_sketch GROUP BY 1").fetchall())
    install_badges(dsn, [SMALL])
    with psycopg.connect(dsn) as conn:
        run_backfill(conn, parse_badge_file(json.dumps({"badges": [SMALL]})))
    expected = sorted((u, code) for u, n in counts.items()
                      for code, at in (("bronze", 2), ("silver", 3), ("gold", 5)) if n >= at)
    assert awards(dsn) == expected and any(code == "gold" for _, code in expected)


def test_dry_run_of_a_series_shows_the_value_and_the_levels_reached(dsn):
    make_demo(dsn, users=100, sketches=410)
    bf = parse_badge_file(json.dumps({"badges": [SMALL]}))
    with psycopg.connect(dsn, autocommit=True) as conn:
        owner, n = conn.execute("SELECT user_id, count(*) FROM dummy_sketch GROUP BY 1 "
                                "HAVING count(*) = 4 ORDER BY 1 LIMIT 1").fetchone()
        result = dry_run(conn, bf, "collector", Sample(where=f"user_id = {owner}", limit=1))
    row = result.rows[0]
    assert (result.code, row.user, row.amount) == ("collector", str(owner), 4)
    assert row.levels == [("bronze", True), ("silver", True), ("gold", False)]
    assert row.reached() == "value 4 → bronze ✓ silver ✓ gold ✗"
    assert row.would_award and result.series == ["bronze", "silver", "gold"]


def test_cli_validate_and_plan_show_levels_under_their_series(cli, demo, badge_file):
    path = badge_file({"badges": [demo_badge("star"), SERIES]})
    code, out, _ = cli("validate", "--offline", "--badges", path)
    assert code == 0 and "4 badge(s) valid" in out
    assert "series collector (Collector): value " + VALUE in out
    assert "\n  gold (Collector (gold)): value >= 500" in out
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path)
    rows = [line.split("│")[1].rstrip() for line in out.splitlines() if line.count("│") > 4]
    assert [r[:5] for r in rows] == [" star", " coll", "   br", "   si", "   go"]
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path, "--json")
    assert json.loads(out)["series"] == {"collector": ["bronze", "silver", "gold"]}


def test_reconcile_awards_the_levels_of_a_time_based_series(demo):
    days = {"name": "Member", "code": "member",
            "value": "extract(day from now() - NEW.date_joined)",
            "levels": [{"code": "member_day", "name": "Member (a day)", "at": 1},
                       {"code": "member_year", "name": "Member (a year)", "at": 365}],
            "trigger_condition": "update", "trigger_table": "auth_user", "user_field": "id"}
    install_badges(demo, [days])
    assert awards(demo) == []
    with psycopg.connect(demo, autocommit=True) as conn:  # reconcile commits per batch
        conn.execute("CALL badge_console.reconcile()")
        users = [r[0] for r in conn.execute("SELECT id FROM auth_user ORDER BY 1")]
    assert awards(demo) == [(u, "member_day") for u in users]


def test_a_level_problem_carries_its_facts_for_each_front_end():
    bf = parse_badge_file(json.dumps({"badges": [series(levels=[
        {"code": "a", "name": "A", "at": 5}, {"code": "b", "name": "B", "at": 4}])]}))
    (problem,) = check_definitions(bf)
    assert (problem.level, problem.level_code, problem.at, problem.previous) == (
        1, "b", "4", "5")
    assert str(problem) == ("badge #0 (collector), key 'levels': level #1 (b): at 4 is not "
                            "above the previous level's 5; list levels by strictly ascending at")
    assert problem.worded({"level-order": "line {line}: {at} <= {previous}"}) == "line 2: 4 <= 5"
    assert problem.as_dict()["level"] == 1


def test_cli_dry_run_of_a_series_shows_the_levels_and_fire_asks_for_one(cli, dsn, badge_file,
                                                                       monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # the table on one line per row
    make_demo(dsn, users=100, sketches=410)
    path = badge_file({"badges": [SMALL]})
    code, out, _ = cli("dry-run", "collector", "--dsn", dsn, "--badges", path, "--where",
                       "user_id = 8", "--limit", "1")
    assert code == 0 and "value 5 → bronze ✓ silver ✓ gold ✓" in out
    code, _, err = cli("dry-run", "collector", "--mode", "fire", "--dsn", dsn, "--badges",
                       path)
    assert code == 1 and "pick a level of collector (bronze, silver, gold)" in err


def test_a_level_code_dry_runs_and_fires_as_a_badge_of_its_own(dsn):
    make_demo(dsn, users=100, sketches=410)
    bf = parse_badge_file(json.dumps({"badges": [SMALL]}))
    with psycopg.connect(dsn) as conn:
        result = dry_run(conn, bf, "gold", Sample(where="user_id = 8", limit=1), mode="fire")
    assert (result.code, result.series, result.rows[0].value) == ("gold", [], True)
    assert result.fire is not None and result.fire.error is None
