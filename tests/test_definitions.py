"""badge.json loading and validation: every problem at once, each naming badge, key, fix."""

from __future__ import annotations

import json
import os
import stat

import psycopg
import pytest

from badge_console.core.definitions import (check_definitions, load_badge_file,
                                            parse_badge_file, save_badge_file)
from badge_console.core.errors import DefinitionError
from badge_console.core.resolve import validate_against_database

from helpers import DEMO_BADGES, demo_badge

SEED_README_EXAMPLE = """[
    {
        "name": "Pionner",
        "code": "pionner",
        "condition": "NEW.date_joined < now() - interval '1 year'",
        "trigger_condition": "update",
        "trigger_table": "auth_user",
        "user_field": "id"
    }
    {
        "name": "Collector",
        "code": "collector",
        "condition": "count(id) >= 5 from dummy_sketch where user_id = NEW.user_id",
        "trigger_condition": "insert",
        "trigger_table": "dummy_sketch",
        "user_field": "user_id"
    }
]"""


def kinds(doc) -> list[tuple]:
    bf = parse_badge_file(json.dumps(doc))
    return [(p.index, p.key, p.kind) for p in check_definitions(bf)]


def test_seed_readme_example_gives_line_and_column():
    with pytest.raises(DefinitionError) as err:
        parse_badge_file(SEED_README_EXAMPLE)
    assert "line 10, column 5" in str(err.value)  # the "{" after the missing comma
    assert "JSON syntax error" in str(err.value)


def test_both_forms_load():
    listed = parse_badge_file(json.dumps(DEMO_BADGES))
    wrapped = parse_badge_file(json.dumps({"award_table": "app.awards", "channel": "c",
                                           "badges": DEMO_BADGES}))
    assert [b.code for b in listed.badges] == [b.code for b in wrapped.badges]
    assert (listed.form, wrapped.form, wrapped.award_table) == ("list", "object", "app.awards")
    assert check_definitions(listed) == [] and check_definitions(wrapped) == []


def test_every_problem_reported_at_once():
    doc = [
        {"name": "A", "code": "Bad Code", "condition": "true", "trigger_condition": "insert",
         "trigger_table": "t", "user_field": "u", "colour": "red"},
        {"name": "B", "code": "b", "condition": "NEW.x > 1; DROP TABLE t",
         "trigger_condition": "upsert", "trigger_table": "t"},
        {"name": "C", "code": "b", "condition": "OLD.x > 1", "trigger_condition": "insert",
         "trigger_table": "t", "user_field": "u"},
        {"name": "D", "code": "d", "condition": "NEW.x > 1", "trigger_condition": "delete",
         "trigger_table": "t", "user_field": "u"},
        {"name": "E", "code": "e", "condition": "hit_views >= 1000",
         "trigger_condition": "update", "trigger_table": "t", "user_field": "u"},
        {"name": "F", "code": "f", "condition": "1, 2", "trigger_condition": "update",
         "trigger_table": "t", "user_field": "u", "enabled": "yes", "on_error": "ignore"},
        {"name": "G", "code": "g", "condition": "count(* from t",
         "trigger_condition": "insert", "trigger_table": "t", "user_field": "u"},
    ]
    found = kinds(doc)
    for expected in [(0, "code", "code"), (0, "colour", "unknown-key"),
                     (1, "user_field", "missing-key"), (1, "trigger_condition", "operation"),
                     (2, "code", "duplicate"), (2, "condition", "old-in-insert"),
                     (3, "condition", "new-in-delete"), (4, "condition", "unqualified"),
                     (5, "condition", "values"), (5, "enabled", "type"),
                     (5, "on_error", "on-error"), (6, "condition", "parse")]:
        assert expected in found, expected


def test_two_statements_detected_even_with_valid_operation():
    assert (0, "condition", "statements") in kinds(
        [demo_badge("star", condition="NEW.hit_views > 1; DROP TABLE auth_user")])


def test_problem_text_names_badge_key_and_fix():
    bf = parse_badge_file(json.dumps([demo_badge("star", condition="hit_views >= 1000")]))
    text = str(check_definitions(bf)[0])
    assert text.startswith("badge #0 (star), key 'condition':")
    assert "NEW.hit_views" in text


def test_database_checks(demo):
    doc = {"badges": [
        demo_badge("star", trigger_table="no_such_table"),
        demo_badge("collector", user_field="owner"),
        demo_badge("pionner", condition="NEW.joined < now()"),
        {**demo_badge("star"), "code": "typo", "condition": "NEW.hit_views > 'many'"},
        {**demo_badge("star"), "code": "notbool", "condition": "NEW.hit_views + 1"},
    ]}
    bf = parse_badge_file(json.dumps(doc))
    with psycopg.connect(demo) as conn:
        problems = validate_against_database(conn, bf).problems
    got = {(p.index, p.key, p.kind) for p in problems}
    assert got == {(0, "trigger_table", "unknown-table"), (1, "user_field", "unknown-column"),
                   (2, "condition", "unknown-column"), (3, "condition", "plan"),
                   (4, "condition", "plan")}
    plan_messages = [p.message for p in problems if p.kind == "plan"]
    assert any("invalid input syntax for type integer" in m for m in plan_messages)
    assert any("boolean" in m for m in plan_messages)


def test_validation_leaves_nothing_behind(demo):
    bf = parse_badge_file(json.dumps(DEMO_BADGES))
    with psycopg.connect(demo) as conn:
        assert validate_against_database(conn, bf).problems == []
        assert conn.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None
        assert conn.execute("SELECT to_regclass('badges_badge')").fetchone()[0] is None


@pytest.mark.parametrize("data", [b"\xff\xfe[]", b"", b"{", b"42", b'{"badges": 3}',
                                  b'[1, "x"]', b'{"badges": [], "x": 1}', b"[NaN]",
                                  b'[{"a": 1, "a": 2}]', b"[" * 100000])
def test_broken_files_raise_only_definition_error(data):
    try:
        bf = parse_badge_file(data)
    except DefinitionError as exc:
        assert str(exc).endswith(".")
        return
    assert check_definitions(bf)  # loaded, but problems are reported


def test_save_is_atomic_and_keeps_mode(tmp_path):
    path = tmp_path / "badge.json"
    path.write_text(json.dumps(DEMO_BADGES))
    os.chmod(path, 0o640)
    bf = load_badge_file(path)
    bf.badges[0].name = "Pioneer ✓ \"quoted\""
    save_badge_file(bf)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    again = load_badge_file(path)
    assert again.badges[0].name == "Pioneer ✓ \"quoted\""
    assert again.form == "list" and not bf.changed_on_disk()
    assert [p.name for p in tmp_path.iterdir()] == ["badge.json"]  # no temp file left
    path.write_text("[]")
    assert bf.changed_on_disk()


def test_unknown_keys_survive_a_save(tmp_path):
    path = tmp_path / "badge.json"
    path.write_text(json.dumps([{**DEMO_BADGES[0], "colour": "red"}]))
    bf = load_badge_file(path)
    save_badge_file(bf)
    assert json.loads(path.read_text())[0]["colour"] == "red"
