"""Generator 8 (one trigger per table and operation): what N badges on one table cost a
write, and what install costs concurrent writers.

N badges on dummy_sketch, all on insert: half `NEW.hit_views >= T` (plain expressions),
half `count(id) >= K from dummy_sketch where user_id = NEW.user_id` (one shared value,
several thresholds: what levels expand to). 200 users. Per configuration (a database each,
interleaved rounds, medians):
  one-row  2,000 autocommit one-row inserts: extra us per insert over no trigger
  bulk     one 50,000-row INSERT ... SELECT: ratio to no trigger
Configurations: none, N=1 (one count badge), N=1 (one views badge), N=40, N=500; and
N=40 with distinct values (each count badge its own `hit_views > i` filter: 20 queries).
Install: 500 badges on one table installed (trigger created) and then re-installed with
every threshold changed (function replaced only), each while a writer connection runs
one-row inserts in a loop; the install's wall time and the writer's longest insert.

    python bench/table_trigger.py --dsn postgresql://postgres@127.0.0.1/postgres [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from badge_console.core.definitions import parse_badge_file  # noqa: E402
from badge_console.core.demo import (create_demo_schema, scratch_database,  # noqa: E402
                                      scratch_server)
from badge_console.core.install import install  # noqa: E402
from badge_console.core.sqlgen import AwardTable  # noqa: E402
from badge_console.core.sqlgen_setup import award_table_ddl  # noqa: E402

USERS = 200


def badges(n: int, kind: str = "mixed", shift: int = 0) -> list[dict]:
    def views(i):
        return {"name": f"V{i}", "code": f"v{i}", "trigger_condition": "insert",
                "trigger_table": "dummy_sketch", "user_field": "user_id",
                "condition": f"NEW.hit_views >= {100 + i * 7 + shift}"}

    def count(i, distinct=False):
        where = f" and hit_views > {i}" if distinct else ""
        return {"name": f"C{i}", "code": f"c{i}", "trigger_condition": "insert",
                "trigger_table": "dummy_sketch", "user_field": "user_id",
                "condition": f"count(id) >= {5 + i * 3 + shift} from dummy_sketch"
                             f" where user_id = NEW.user_id{where}"}
    if kind == "views":
        return [views(i) for i in range(n)]
    if kind == "count":
        return [count(i) for i in range(n)]
    half = n // 2
    return [views(i) for i in range(n - half)] + [count(i, kind == "distinct")
                                                   for i in range(half)]


CONFIGS = {"none": [], "N=1 count": badges(1, "count"), "N=1 views": badges(1, "views"),
           "N=40": badges(40), "N=40 distinct": badges(40, "distinct"), "N=500": badges(500)}


def setup(dsn: str, bs: list[dict]) -> None:
    with psycopg.connect(dsn) as conn:
        create_demo_schema(conn, users=USERS, sketches=0)
        conn.execute(award_table_ddl(AwardTable("public", "badges_badge"), "integer"))
        conn.commit()
        if bs:
            install(conn, parse_badge_file(json.dumps({"badges": bs})))


def reset(conn) -> None:
    conn.execute("TRUNCATE dummy_sketch, badges_badge RESTART IDENTITY")
    conn.execute("ANALYZE dummy_sketch")
    conn.execute("ANALYZE badges_badge")


def one_row(dsn: str, n: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        reset(conn)
        q = "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (%s, 'x', %s)"
        for i in range(20):  # warm: the session compiles the trigger function once
            conn.execute(q, (1 + i % USERS, 0), prepare=True)
        started = time.perf_counter()
        for i in range(n):
            conn.execute(q, (1 + i % USERS, (i * 131) % 997), prepare=True)
        return (time.perf_counter() - started) / n


def bulk(dsn: str, n: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        reset(conn)
        started = time.perf_counter()
        try:
            conn.execute("INSERT INTO dummy_sketch (user_id, title, hit_views)"
                         " SELECT 1 + i %% %s, 'x', (i * 131) %% 997"
                         " FROM generate_series(0, %s - 1) i",
                         (USERS, n))
        except psycopg.Error as exc:  # e.g. generator 7's 50,000 locks: out of shared memory
            print(f"bulk failed: {exc.diag.message_primary}")
            return float("nan")
        return time.perf_counter() - started


def writer_stall(dsn: str, bs: list[dict]) -> tuple[float, float]:
    """(install seconds, the writer's longest insert in seconds) while installing `bs`."""
    stop, worst = threading.Event(), [0.0]

    def write():
        with psycopg.connect(dsn, autocommit=True) as c:
            while not stop.is_set():
                t = time.perf_counter()
                c.execute("INSERT INTO dummy_sketch (user_id, title, hit_views)"
                          " VALUES (1 + (random() * 199)::int, 'w', 0)")
                worst[0] = max(worst[0], time.perf_counter() - t)
    th = threading.Thread(target=write)
    th.start()
    time.sleep(0.3)
    worst[0] = 0.0
    try:
        with psycopg.connect(dsn) as conn:
            started = time.perf_counter()
            install(conn, parse_badge_file(json.dumps({"badges": bs})))
            took = time.perf_counter() - started
        time.sleep(0.2)
    finally:
        stop.set()
        th.join()
    return took, worst[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip", action="append", default=[], help="a configuration to leave out")
    args = ap.parse_args()
    for name in args.skip:
        CONFIGS.pop(name)
    rows, bulk_rows = (500, 10_000) if args.quick else (2000, 50_000)
    with scratch_server(args.dsn, "bc_tt_") as admin, ExitStack() as stack:
        dbs = {c: stack.enter_context(scratch_database(admin, "bc_tt")) for c in CONFIGS}
        for c, bs in CONFIGS.items():
            setup(dbs[c], bs)
        one: dict[str, list[float]] = {c: [] for c in CONFIGS}
        big: dict[str, list[float]] = {c: [] for c in CONFIGS}
        names = list(CONFIGS)
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for c in order:
                one[c].append(one_row(dbs[c], rows))
                big[c].append(bulk(dbs[c], bulk_rows))
        base1, baseb = statistics.median(one["none"]), statistics.median(big["none"])
        print(f"{'config':<16} {'one-row us':>11} {'extra us':>9} {'bulk ms':>9} {'bulk x':>7}")
        extra = {}
        for c in names:
            m1, mb = statistics.median(one[c]), statistics.median(big[c])
            extra[c] = (m1 - base1) * 1e6
            print(f"{c:<16} {m1 * 1e6:>11.0f} {extra[c]:>9.0f} {mb * 1e3:>9.0f} {mb / baseb:>7.2f}")
        print(f"N=40 extra / N=1 count extra: {extra['N=40'] / extra['N=1 count']:.2f}"
              f" (target <= 4); / N=1 views extra: {extra['N=40'] / extra['N=1 views']:.2f}")
        if "N=500" in one:
            print(f"N=500 one-row insert: {statistics.median(one['N=500']) * 1e3:.2f} ms"
                  " (target <= 3 ms)")
        fresh = stack.enter_context(scratch_database(admin, "bc_tt_install"))
        setup(fresh, [])
        took, worst = writer_stall(fresh, badges(500))
        print(f"install 500 badges (creates the trigger): {took:.2f} s, writer's longest"
              f" insert {worst * 1e3:.0f} ms")
        took, worst = writer_stall(fresh, badges(500, shift=1))
        print(f"re-install 500 badges, all changed (function only): {took:.2f} s, writer's"
              f" longest insert {worst * 1e3:.0f} ms (targets <= 2 s, <= 100 ms)")


if __name__ == "__main__":
    main()
