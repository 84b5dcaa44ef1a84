"""What `badge-console validate` costs against the database for a large badge file, the
lead's main checkout (the baseline) next to this tree, in one interleaved run.

A file of N badges (default 2,000) on three tables of the demo schema (auth_user,
dummy_sketch and a comment table) where the demo badges are installed (so the award
table exists and validate plans the award queries install would run), varied as operators write them: plain expressions
of NEW/OLD, sub-selects that count other rows, time-based ones, and some broken ones
(unknown column, syntax error, type error caught only when PostgreSQL plans it).
Each CLI runs as its own process, the two alternate, the median of --runs is reported;
both must print exactly the same output (same problems, same order, same JSON).

    python bench/validate_cost.py [--badges 2000] [--runs 3] [--dsn DSN]
           [--baseline /work/venv/bin/badge-console]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from badge_console.core.definitions import load_badge_file  # noqa: E402
from badge_console.core.demo import (create_demo_schema, scratch_database,  # noqa: E402
                                      scratch_server)
from badge_console.core.install import install  # noqa: E402

TARGET_SECONDS = 2.0
COMMENTS = """
CREATE TABLE dummy_comment (
    id bigserial PRIMARY KEY,
    author_id integer NOT NULL REFERENCES auth_user (id),
    sketch_id integer NOT NULL REFERENCES dummy_sketch (id),
    body text NOT NULL DEFAULT '',
    likes integer NOT NULL DEFAULT 0
)
"""


def _condition(i: int) -> tuple[str, str, str, str]:
    """(condition, operation, table, user field) of the i-th generated badge."""
    kind = i % 10
    if kind == 0:
        return f"count(id) >= {i} from dummy_sketch where user_id = NEW.user_id", \
            "insert", "dummy_sketch", "user_id"
    if kind == 1:
        return f"NEW.hit_views >= {i}", "update", "dummy_sketch", "user_id"
    if kind == 2:
        return f"OLD.hit_views = {i}", "delete", "dummy_sketch", "user_id"
    if kind == 3:
        return f"NEW.is_active and NEW.id % {i + 2} = 0", "update", "auth_user", "id"
    if kind == 4:
        return f"NEW.date_joined < now() - interval '{i} days'", "update", \
            "auth_user", "id"
    if kind == 5:
        return f"length(NEW.body) > {i} and NEW.likes >= {i % 9}", "insert", \
            "dummy_comment", "author_id"
    if kind == 6:
        return f"(select sum(likes) from dummy_comment c where c.author_id = NEW.author_id)" \
               f" >= {i}", "insert", "dummy_comment", "author_id"
    if kind == 7:
        return [f"NEW.no_such_column > {i}", f"NEW.hit_views >>> {i}",
                f"NEW.title > {i} + now()", f"NEW.hit_views >= AND {i}"][i // 10 % 4], "update", "dummy_sketch", "user_id"
    if kind == 8:
        return f"exists (select 1 from dummy_sketch s where s.user_id = NEW.id and " \
               f"s.hit_views > {i})", "update", "auth_user", "id"
    return f"NEW.likes between {i} and {i + 5}", "update", "dummy_comment", \
        "author_id"


def badge_file(count: int) -> dict:
    badges = []
    for i in range(count):
        condition, op, table, user = _condition(i)
        badges.append({"name": f"Badge {i}", "code": f"b{i:05d}", "condition": condition,
                       "trigger_condition": op, "trigger_table": table, "user_field": user})
    return {"badges": badges}


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return elapsed, done.stdout + done.stderr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--badges", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dsn", help="admin DSN (default: a temporary embedded PostgreSQL)")
    ap.add_argument("--baseline", default="/work/venv/bin/badge-console",
                    help="the CLI measured against (main's installed one)")
    args = ap.parse_args(argv)
    ours = str(Path(sys.executable).with_name("badge-console"))
    if not Path(args.baseline).exists():
        raise SystemExit(f"no baseline CLI at {args.baseline}: install the commit to compare "
                         "with in a venv of its own and pass --baseline")
    with scratch_server(args.dsn, "bc_validate_") as admin, \
            scratch_database(admin, "bc_validate") as dsn, \
            tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(dsn) as conn:
            create_demo_schema(conn)
            conn.execute(COMMENTS)
        with psycopg.connect(dsn) as conn:  # an installed database: the award table exists
            install(conn, load_badge_file(ROOT / "badge.json"))
        path = Path(tmp) / "badge.json"
        path.write_text(json.dumps(badge_file(args.badges)))
        cases = {f"{who}{flag}": [cli, "validate", "--dsn", dsn, "--badges", str(path),
                                  *flag.split()]
                 for who, cli in (("main", args.baseline), ("ours", ours))
                 for flag in ("", " --json")}
        times: dict[str, list[float]] = {k: [] for k in cases}
        outputs: dict[str, set[str]] = {k: set() for k in cases}
        for _ in range(args.runs):
            for name, cmd in cases.items():
                elapsed, out = timed(cmd)
                times[name].append(elapsed)
                outputs[name].add(out)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"# validate against the database — {args.badges} badges on 3 tables, "
          f"median of {args.runs}, wall time of the CLI process")
    for flag in ("", " --json"):
        old, new = f"main{flag}", f"ours{flag}"
        same = outputs[old] == outputs[new] and len(outputs[new]) == 1
        print(f"{'json' if flag else 'text':<5} main {med[old]:6.2f}s  ours {med[new]:6.2f}s"
              f"  ours/main {med[new] / med[old]:.2f}  output identical: {same}  "
              f"(target <= {TARGET_SECONDS:.0f}s: "
              f"{'met' if med[new] <= TARGET_SECONDS else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
