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
