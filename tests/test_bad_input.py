"""Broken badge.json files: a clear problem each, only our error type, never a traceback."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badge_console.core.definitions import (REQUIRED, check_definitions, load_badge_file,
                                            parse_badge_file)
from badge_console.core.errors import DefinitionError

from helpers import demo_badge

CORPUS = sorted((Path(__file__).parent / "bad_badges").glob("*.json"))


def problems_of(data) -> list:
    """Every problem found, whether the file as a whole is unusable or not."""
    try:
        bf = parse_badge_file(data)
    except DefinitionError as exc:
        return exc.problems
    return check_definitions(bf)


def problem_kinds(data) -> set[str]:
    return {p.kind for p in problems_of(data)}


def test_one_file_holding_every_broken_badge_reports_each_problem_at_its_badge():
    """SPEC: every problem at once, each naming its badge, not only the first one found."""
    merged, expected = [], []  # (kind, indexes of that file's badges in the merged file)
    for path in CORPUS:
        if any(p.index is None for p in problems_of(path.read_bytes())):
            continue  # a file-level problem (JSON syntax, shape): nothing to merge
        doc = json.loads(path.read_bytes())
        badges = doc if isinstance(doc, list) else doc["badges"]
        expected.append((path.stem.split("__")[0], range(len(merged), len(merged) + len(badges))))
        merged += badges
    assert len({kind for kind, _ in expected}) >= 12  # per-badge problems of many kinds
    found = {(p.kind, p.index) for p in problems_of(json.dumps(merged))}
    assert [kind for kind, indexes in expected
            if not any((kind, i) in found for i in indexes)] == []


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_each_broken_file_reports_its_problem(path):
    expected = path.stem.split("__")[0]
    assert problem_kinds(path.read_bytes()) == {expected}


@pytest.mark.parametrize("path", CORPUS[::4], ids=lambda p: p.stem)
def test_cli_reports_broken_file_in_one_sentence(cli, path):
    code, out, err = cli("validate", "--offline", "--badges", path)
    assert code == 1
    assert "Traceback" not in out + err
    assert str(path) in err


def test_ten_thousand_badges_validate_quickly():
    doc = [{**demo_badge("star"), "code": f"star_{i}", "name": f"Star {i}"} for i in range(10_000)]
    started = time.monotonic()
    problems = check_definitions(parse_badge_file(json.dumps(doc)))
    assert problems == []
    assert time.monotonic() - started < 60  # a sanity bound for a hang, not a benchmark


@pytest.mark.parametrize("condition", [
    "NEW.title <> '" + "x" * 5_000_000 + "'",
    " OR ".join(["NEW.hit_views = 1"] * 250_000),
    "(" * 1_000_000 + "true" + ")" * 1_000_000,
], ids=["5MB-literal", "5MB-or-chain", "2MB-parentheses"])
def test_five_megabyte_conditions_are_refused_quickly(condition):
    started = time.monotonic()
    assert problem_kinds(json.dumps([demo_badge("star", condition=condition)])) == {"too-long"}
    assert time.monotonic() - started < 10  # a hang guard, not a benchmark


def test_deep_nesting_under_the_size_limit_is_a_problem_not_a_crash():
    condition = "(" * 30_000 + "true" + ")" * 30_000
    problems = problems_of(json.dumps([demo_badge("star", condition=condition)]))
    assert [(p.index, p.key, p.kind) for p in problems] == [(0, "condition", "parse")]
    assert "\n" not in str(problems[0])
    shallow = "(" * 1_000 + "true" + ")" * 1_000
    assert problems_of(json.dumps([demo_badge("star", condition=shallow)])) == []


def test_loading_a_missing_file(tmp_path):
    with pytest.raises(DefinitionError) as err:
        load_badge_file(tmp_path / "nope.json")
    assert "not found" in str(err.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)
field_text = st.text(max_size=60) | st.sampled_from([
    "x'); drop table auth_user; --", '"; DROP SCHEMA public CASCADE; --', "$badge$", "$$",
    "*/", "/*", "NEW.x > 1; select 1", "\x00", "ü" * 70, "a" * 64])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_raise_only_our_error(data):
    try:
        check_definitions(parse_badge_file(data))
    except DefinitionError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({key: field_text | json_values for key in REQUIRED},
                             optional={"enabled": json_values, "on_error": field_text,
                                       "description": json_values}))
def test_injection_in_every_field_is_reported_not_raised(badge):
    try:
        check_definitions(parse_badge_file(json.dumps([badge])))
    except DefinitionError:
        pass
