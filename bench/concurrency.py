"""Sixteen writers at once: throughput and whether every award is made.

Three databases on one server, built as bench/trigger_overhead.py builds its
configurations (its fill_database, not a copy): (a) no triggers, (b) today's design (the
seed's FOR EACH ROW trigger), (c) ours as install creates it (the (badge, user) lock, the
queue, reconcile). Two workloads, each user earning Collector with exactly 5 sketches,
every insert its own transaction (autocommit), 16 connections started together:
  distinct  each writer inserts for users of its own (no two writers share a user);
  same      the writers walk the same users in the same order, so several insert for one
            user at the same moment (the race that loses awards under READ COMMITTED).
Configurations are interleaved (the order rotates per repetition); medians are reported.
After each run of (c) one reconcile pass follows, and the awards made at commit (by the
triggers) and by that pass are counted; for (b) the awards it made at all.

    python bench/concurrency.py --dsn postgresql://postgres@127.0.0.1:5432/postgres
    python bench/concurrency.py --quick
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from badge_console.core.demo import scratch_database, scratch_server  # noqa: E402
from badge_console.core.reconcile import run_pass  # noqa: E402
from trigger_overhead import Sizes, fill_database, reset  # noqa: E402

CONFIGS = ("none", "seed", "ours")
LABELS = {"none": "(a) none", "seed": "(b) seed", "ours": "(c) ours"}
WORKLOADS = ("distinct", "same")
WRITERS = 16
PER_USER = 5


def plan(workload: str, users: int) -> list[list[int]]:
    """The user ids each writer inserts for, in order."""
    mine: list[list[int]] = [[] for _ in range(WRITERS)]
    for user in range(1, users + 1):
        for k in range(PER_USER):
            writer = user % WRITERS if workload == "distinct" else (user * PER_USER + k) % WRITERS
            mine[writer].append(user)
    return mine


def run_writers(dsn: str, work: list[list[int]]) -> float:
    """Seconds from the start signal until the last writer is done."""
    conns = [psycopg.connect(dsn, autocommit=True) for _ in work]
    start, failures = threading.Barrier(len(work) + 1), []

    def write(conn, users) -> None:
        try:
            start.wait()
            for user in users:
                conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (%s, 'c')",
                             (user,))
        except Exception as exc:  # noqa: BLE001 - a failed write fails the benchmark
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(c, u)) for c, u in zip(conns, work)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    for c in conns:
        c.close()
    if failures:
        raise SystemExit(f"a writer failed: {failures[0]}")
    return elapsed


def blocked_latency(dsn: str, writes: int = 20) -> tuple[list[float], list[float]]:
    """Milliseconds per one-row insert for a user whose (badge, user) lock a long
    transaction holds, and for a free user, in (c): the wait bound as the application
    sees it (sqlgen_locks.LOCK_WAIT, then the row is queued)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        reset(conn, "W1", Sizes(users=2))
        conn.execute("TRUNCATE badge_console.queue")
    holder = psycopg.connect(dsn)
    holder.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'held')")
    times: dict[int, list[float]] = {1: [], 2: []}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(writes):
            for user in (1, 2):
                began = time.perf_counter()
                conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (%s, 'w')",
                             (user,))
                times[user].append((time.perf_counter() - began) * 1000)
    holder.rollback()
    holder.close()
    return times[1], times[2]


def collectors(conn) -> int:
    return conn.execute("SELECT count(*) FROM badges_badge WHERE code = 'collector'").fetchone()[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="admin DSN of a server (default: a temporary embedded PG16)")
    ap.add_argument("--quick", action="store_true", help="fewer users and repetitions")
    ap.add_argument("--users", type=int, default=None, help="users per run (default 400)")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions (default 3)")
    args = ap.parse_args(argv)
    users = args.users or (96 if args.quick else 400)
    repeat = args.repeat or (1 if args.quick else 3)
    sizes = Sizes(users=users)
    badges = ROOT / "badge.json"

    with scratch_server(args.dsn, "bc_conc_") as admin, ExitStack() as stack:
        with psycopg.connect(admin) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
        dbs = {}
        for cfg in CONFIGS:
            dbs[cfg] = stack.enter_context(scratch_database(admin, f"bc_conc_{cfg}"))
            fill_database(dbs[cfg], cfg, sizes, badges)
        seconds = {(w, c): [] for w in WORKLOADS for c in CONFIGS}
        at_commit = {w: {c: [] for c in CONFIGS} for w in WORKLOADS}
        by_reconcile = {w: [] for w in WORKLOADS}
        queued = {w: [] for w in WORKLOADS}
        for rep in range(repeat):
            order = CONFIGS[rep % 3:] + CONFIGS[:rep % 3]
            for w in WORKLOADS:
                for cfg in order:
                    with psycopg.connect(dbs[cfg], autocommit=True) as conn:
                        reset(conn, "W1", sizes)  # no sketches, no awards, ANALYZEd empty
                        if cfg == "ours":
                            conn.execute("TRUNCATE badge_console.queue")
                    seconds[(w, cfg)].append(run_writers(dbs[cfg], plan(w, users)))
                    with psycopg.connect(dbs[cfg], autocommit=True) as conn:
                        at_commit[w][cfg].append(collectors(conn))
                        if cfg == "ours":
                            queued[w].append(conn.execute(
                                "SELECT count(*) FROM badge_console.queue").fetchone()[0])
                            by_reconcile[w].append(run_pass(conn).awarded_from_queue)
                            if collectors(conn) != users:
                                print(f"LOST AWARDS in ours/{w}: {collectors(conn)} of {users}",
                                      file=sys.stderr)
                                return 1
        blocked, free = blocked_latency(dbs["ours"])

    inserts = users * PER_USER
    print(f"# concurrency — PostgreSQL {version}, {WRITERS} writers, {users} users x "
          f"{PER_USER} one-row inserts ({inserts:,} transactions), median of {repeat}")
    print(f"{'workload':<10} {'config':<10} {'inserts/s':>10} {'x none':>7} {'x seed':>7}"
          f" {'awarded at commit':>18} {'by reconcile':>13} {'queued rows':>12}")
    for w in WORKLOADS:
        med = {c: statistics.median(seconds[(w, c)]) for c in CONFIGS}
        for cfg in CONFIGS:
            rate = inserts / med[cfg]
            awarded = statistics.median(at_commit[w][cfg])
            commit = "-" if cfg == "none" else f"{awarded:.0f}/{users} ({awarded / users:.0%})"
            later = f"{statistics.median(by_reconcile[w]):.0f}" if cfg == "ours" else "-"
            rows = f"{statistics.median(queued[w]):.0f}" if cfg == "ours" else "-"
            print(f"{w:<10} {LABELS[cfg]:<10} {rate:>10.0f} {med['none'] / med[cfg]:>7.2f}"
                  f" {med['seed'] / med[cfg]:>7.2f} {commit:>18} {later:>13} {rows:>12}")
    print("x none / x seed: throughput relative to (a) / (b) in the same run (higher is "
          "better); ours held every award after one reconcile pass in every run")
    print(f"(c) one-row insert while a long transaction holds that user's lock: median "
          f"{statistics.median(blocked):.1f} ms, max {max(blocked):.1f} ms over {len(blocked)}"
          f" (the row is queued); a free user's: median {statistics.median(free):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
