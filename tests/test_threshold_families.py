"""Badges differing only in a number threshold (`value >= T`: levels, or thresholds written
by hand) are decided by one width_bucket over their sorted thresholds (sqlgen_thresholds);
every other comparison stays a test of its own. What a user sees must not change: the same
awards on the one-row and the set-based path, pauses and the per-badge redo kept."""

from __future__ import annotations

import psycopg
import pytest

from helpers import awards, insert_sketches, install_badges, run

PATHS = pytest.mark.parametrize("one_at_a_time", [True, False], ids=["one-row", "bulk"])


def _badge(code: str, condition: str) -> dict:
    return {"name": code.title(), "code": code, "condition": condition,
            "trigger_condition": "insert", "trigger_table": "dummy_sketch",
            "user_field": "user_id"}


# value -> (code, test): `>=` with numbers folds (ten and ten_again share a threshold);
# `>`, `<=`, `=` and a non-number constant are tested one by one, beside the family.
VIEWS = {"ten": lambda v: v >= 10, "ten_again": lambda v: v >= 10,
         "quarter": lambda v: v >= 25.5, "hundred": lambda v: v >= 100,
         "over_forty": lambda v: v > 40, "few": lambda v: v <= 3, "seven": lambda v: v == 7}
VIEW_SQL = {"ten": "NEW.hit_views >= 10", "ten_again": "NEW.hit_views >= 10",
            "quarter": "NEW.hit_views >= 25.5", "hundred": "NEW.hit_views >= 100",
            "over_forty": "NEW.hit_views > 40", "few": "NEW.hit_views <= 3",
            "seven": "NEW.hit_views = 7"}
COUNTS = {"two": lambda n: n >= 2, "three": lambda n: n >= 3, "more_than_three": lambda n: n > 3}
COUNT_SQL = {c: f"count(id) {op} from dummy_sketch where user_id = NEW.user_id"
             for c, op in (("two", ">= 2"), ("three", ">= 3"), ("more_than_three", "> 3"))}
BADGES = [_badge(c, s) for c, s in {**VIEW_SQL, **COUNT_SQL}.items()]
ROWS = [(1, 7), (1, 26), (2, 0), (2, 100), (2, 41), (3, 10), (3, 10), (3, 10), (3, 10)]


def _expected(rows, skip=()) -> list[tuple[int, str]]:
    got = set()
    for user in {u for u, _ in rows}:
        mine = [v for u, v in rows if u == user]
        got |= {(user, c) for c, ok in VIEWS.items() if any(ok(v) for v in mine)}
        got |= {(user, c) for c, ok in COUNTS.items() if ok(len(mine))}
    return sorted(a for a in got if a[1] not in skip)


@PATHS
def test_folded_and_unfolded_thresholds_award_exactly_what_each_condition_says(
        demo, one_at_a_time):
    install_badges(demo, BADGES)
    insert_sketches(demo, ROWS, one_at_a_time)
    assert sorted(awards(demo)) == _expected(ROWS)


@PATHS
def test_a_paused_level_records_nothing_and_the_other_levels_award(demo, one_at_a_time, cli):
    install_badges(demo, BADGES)
    assert cli("pause", "ten", "--dsn", demo)[0] == 0
    assert cli("pause", "three", "--dsn", demo)[0] == 0
    insert_sketches(demo, ROWS, one_at_a_time)
    assert sorted(awards(demo)) == _expected(ROWS, skip={"ten", "three"})


@PATHS
def test_a_failing_family_logs_each_of_its_badges_and_the_others_award(demo, one_at_a_time):
    failing = [_badge(f"broken_{i}", f"1 / (NEW.hit_views - NEW.hit_views) >= {i}")
               for i in (1, 2)]
    install_badges(demo, [*BADGES, *failing])
    insert_sketches(demo, ROWS, one_at_a_time)
    assert sorted(awards(demo)) == _expected(ROWS)
    with psycopg.connect(demo) as conn:
        logged = {r[0] for r in conn.execute("SELECT DISTINCT code FROM badge_console.error_log")}
    assert logged == {"broken_1", "broken_2"}


def test_one_width_bucket_decides_a_family_in_the_one_row_path(demo):
    """Forty `>=` thresholds on one value are one expression, not forty tests."""
    install_badges(demo, [_badge(f"v{i}", f"NEW.hit_views >= {i}") for i in range(40)])
    with psycopg.connect(demo) as conn:
        src = conn.execute("SELECT prosrc FROM pg_proc WHERE proname = %s",
                           ("public.dummy_sketch__insert",)).fetchone()[0]
    fast = src.split("ELSE")[0]
    assert fast.count("width_bucket(") == 1 and "hit_views >= " not in fast
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (4, 'x', 5)")
    assert sorted(awards(demo)) == sorted((4, f"v{i}") for i in range(6))


# Only families (no other plain test): the set-based path reduces the changed rows to one
# per user, its highest value, before the thresholds are looked at.
DOUBLED = {"double_fifty": lambda v: 2 * v >= 50, "double_two_hundred": lambda v: 2 * v >= 200}
ONLY_FAMILIES = ["ten", "ten_again", "quarter", "hundred"]


def _families_only(rows, extra=()):
    badges = [_badge(c, VIEW_SQL[c]) for c in ONLY_FAMILIES] + [
        _badge(c, f"NEW.hit_views * 2 >= {t}") for c, t in
        (("double_fifty", 50), ("double_two_hundred", 200))] + list(extra)
    tests = {c: VIEWS[c] for c in ONLY_FAMILIES} | DOUBLED
    want = sorted({(u, c) for u, v in rows for c, ok in tests.items() if ok(v)})
    return badges, want


@PATHS
def test_families_alone_award_what_each_threshold_says_and_a_failing_one_logs_alone(
        demo, one_at_a_time):
    failing = [_badge(f"broken_{i}", f"1 / (NEW.hit_views - NEW.hit_views) >= {i}")
               for i in (1, 2)]
    badges, want = _families_only(ROWS, failing)
    install_badges(demo, badges)
    insert_sketches(demo, ROWS, one_at_a_time)
    assert sorted(awards(demo)) == want
    with psycopg.connect(demo) as conn:
        logged = {r[0] for r in conn.execute("SELECT DISTINCT code FROM badge_console.error_log")}
    assert logged == {"broken_1", "broken_2"}


def test_families_alone_skip_a_paused_threshold_and_users_without_a_value(demo, cli):
    badges, _ = _families_only(ROWS)
    install_badges(demo, badges)
    assert cli("pause", "quarter", "--dsn", demo)[0] == 0
    run(demo, "ALTER TABLE dummy_sketch ALTER hit_views DROP NOT NULL")
    rows = ROWS + [(4, None), (4, None), (5, None), (5, 12)]
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
              " SELECT u, 'x', v FROM unnest(%s::int[], %s::int[]) AS r(u, v)",
        params=([u for u, _ in rows], [v for _, v in rows]))
    _, want = _families_only([r for r in rows if r[1] is not None])
    assert sorted(awards(demo)) == [a for a in want if a[1] != "quarter"]
