"""The badge files bench/badges_per_table.py measures, built in memory.

They go through the project's own loader (parse_badge_file) and install, so a run
measures whatever generator the branch it runs on has. Thresholds are distinct per badge
(no two badges share a trigger body) and chosen so that awards stay rare in the one-row
workloads, as they are in an application's life: the Star-like badges (`NEW.hit_views >=
T`, T = 950, 951, ...) award on the one-row inserts that carry 999 views (one in 97) and,
in the bulk insert, every user with a row past T; the Collector-like ones (`count(id) >=
K`, K = 11, 21, ...) never within the one-row workloads' 10 inserts per user, and in the
bulk insert (250 rows per user) every user for each K up to 250.
"""

from __future__ import annotations

import json

from badge_console.core.definitions import BadgeFile, check_definitions, parse_badge_file

TABLE = "dummy_sketch"
VALUE = "count(id) from dummy_sketch where user_id = NEW.user_id"
LEVELS = (("bronze", 5), ("silver", 50), ("gold", 500))


def _count_at_least(k: int) -> str:
    return f"count(id) >= {k} from {TABLE} where user_id = NEW.user_id"


def _badge(code: str, name: str, condition: str) -> dict:
    return {"name": name, "code": code, "condition": condition, "trigger_condition": "insert",
            "trigger_table": TABLE, "user_field": "user_id"}


def mixed_badges(n: int) -> list[dict]:
    """n insert badges on dummy_sketch, alternately a plain expression of NEW and a count
    of the user's other rows, each with a threshold of its own."""
    out = []
    for i in range(n):
        j = i // 2
        if i % 2 == 0:
            out.append(_badge(f"views_{j:04d}", f"Views {950 + j}", f"NEW.hit_views >= {950 + j}"))
        else:
            out.append(_badge(f"sketches_{j:04d}", f"Sketches {11 + 10 * j}",
                              _count_at_least(11 + 10 * j)))
    return out


def badge_file(badges: list[dict]) -> BadgeFile:
    """The badges as the loader reads them from a file (object form, default settings)."""
    return parse_badge_file(json.dumps({"badges": badges}), "<bench>")


def collector_levels_as_badges() -> list[dict]:
    """Collector bronze/silver/gold as three plain badges: three count queries per write."""
    return [_badge(f"collector_{level}", f"Collector {level}",
                   _count_at_least(at))
            for level, at in LEVELS]


def collector_one_badge(at: int = 5) -> list[dict]:
    return [_badge("collector", "Collector", _count_at_least(at))]


def _series_shapes() -> list[dict]:
    """The series as SPEC §2 describes it (`value` + `levels` instead of `condition`), with
    and without a name and code of its own (the SPEC does not say; the first shape this
    build's loader accepts is the one measured)."""
    levels = [{"code": f"collector_{level}", "name": f"Collector {level}", "at": at}
              for level, at in LEVELS]
    common = {"value": VALUE, "levels": levels, "trigger_condition": "insert",
              "trigger_table": TABLE, "user_field": "user_id"}
    return [{"name": "Collector", "code": "collector", **common}, common]


def collector_series() -> tuple[list[dict] | None, str]:
    """The series badge list when this build's loader accepts it, else None and the
    loader's first objection (a real check: the file goes through check_definitions)."""
    objection = ""
    for shape in _series_shapes():
        problems = check_definitions(badge_file([shape]))
        if not problems:
            return [shape], ""
        objection = objection or str(problems[0])
    return None, objection
