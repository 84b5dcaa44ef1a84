"""What `backfill` of Collector costs against the floor: one plain INSERT … SELECT.

One database on one server: `dummy_sketch` with N sketches (default 5,000,000) spread
over N/50 users (user i's sketches interleaved over the whole table, as the demo writes
them), the index on dummy_sketch(user_id), VACUUM ANALYZEd like a table that has been
there a while, and Collector (`count(id) >= 5 from dummy_sketch where user_id =
NEW.user_id`) installed. Every user qualifies. Interleaved, the order rotating per
repetition, the award and events tables truncated before each:

  floor  one `INSERT INTO badges_badge … SELECT user_id … GROUP BY user_id HAVING
         count(id) >= 5 ON CONFLICT DO NOTHING`: the same awards, no event, no notify,
         one transaction;
  main   the `backfill` command of another checkout (--main, default /work/main);
  ours   the `backfill` command of this checkout.
Each command runs in a fresh interpreter (preview, then the committed batches); its
peak RSS is read from os.wait4. Every run must leave the floor's users awarded.

Then the ladder of ours: the statements one batch runs, summed over all batches,
each rung adding one part (walk the users; + the condition, grouped; + the holders
anti-join; + the award insert; + the events rows; + the notify = what backfill runs).

    python bench/backfill_cost.py --dsn postgresql://postgres@127.0.0.1/postgres
    python bench/backfill_cost.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from badge_console.core.backfill_batches import grouped_for  # noqa: E402
from badge_console.core.batch_sizes import BACKFILL_USERS  # noqa: E402
from badge_console.core.definitions import parse_badge_file  # noqa: E402
from badge_console.core.demo import (DEMO_BADGES, create_demo_schema,  # noqa: E402
                                      scratch_database, scratch_server)
from badge_console.core.install import install  # noqa: E402
from badge_console.core.resolve import resolve  # noqa: E402
from badge_console.core.sqlgen_events import grant_query  # noqa: E402
from badge_console.core.sqlgen_grouped import grouped_winners, next_users  # noqa: E402

FLOOR = """INSERT INTO badges_badge (user_id, name, code)
SELECT user_id, 'Collector', 'collector' FROM dummy_sketch
GROUP BY user_id HAVING count(id) >= 5 ON CONFLICT DO NOTHING"""
AWARDED = "SELECT count(*), coalesce(sum(user_id), 0) FROM badges_badge"


def collector_file(path: Path) -> Path:
    import json

    doc = json.loads(DEMO_BADGES.read_text())
    doc["badges"] = [b for b in doc["badges"] if b["code"] == "collector"]
    path.write_text(json.dumps(doc))
    return path


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE badges_badge, badge_console.events")


def run_floor(dsn: str) -> float:
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        conn.execute(FLOOR)
        conn.commit()
        return time.perf_counter() - start


def run_command(root: Path, dsn: str, badges: Path) -> tuple[float, int]:
    """(seconds, peak RSS in MiB) of `backfill` run from checkout `root`."""
    env = dict(os.environ, PYTHONPATH=str(root))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "badge_console.cli", "backfill", "--dsn",
                             dsn, "--badges", str(badges), "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"backfill from {root} failed: {proc.stderr.read().decode()}")
    return took, usage.ru_maxrss // 1024


def ladder(dsn: str, badges: Path, users: int, repeat: int) -> list[tuple[str, float]]:
    """Seconds of each rung, summed over the batches (each batch its own transaction,
    rolled back: every rung starts from no awards); the median of `repeat` passes over
    the rungs in turn."""
    bf = parse_badge_file(badges.read_text())
    with psycopg.connect(dsn) as conn:
        res = resolve(conn, bf)
        target = res.targets[0]
        grouped = grouped_for(conn, target, "insert")
        conn.rollback()
    if grouped is None:
        raise SystemExit("Collector is not asked grouped in this checkout")
    award, channel = res.award, bf.settings.channel

    conn = psycopg.connect(dsn)

    def grant(winners, notify=True):
        query = grant_query(award, channel, winners, code="collector", name="Collector",
                            table=target.table.display, op="backfill")
        if notify:
            return query
        # the same awards, events and payload text, counted instead of notified
        text = query.as_string(conn).replace("count(pg_notify(", "count((").replace(
            sql.Literal(channel).as_string(conn) + ", ", "")
        return sql.SQL(text)

    rungs = [
        ("walk the users (next_users)", None),
        ("+ condition, grouped", lambda lo, hi: sql.SQL("SELECT count(*) FROM ({}) AS w").format(
            grouped_winners(target, grouped, None, lo, hi))),
        ("+ holders anti-join", lambda lo, hi: sql.SQL("SELECT count(*) FROM ({}) AS w").format(
            grouped_winners(target, grouped, award, lo, hi))),
        ("+ award insert", lambda lo, hi: sql.SQL(
            "WITH g AS (INSERT INTO {a} (user_id, name, code) SELECT user_id, 'Collector',"
            " 'collector' FROM ({w}) AS w ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT count(*) FROM g").format(
            a=award.ident, w=grouped_winners(target, grouped, award, lo, hi))),
        ("+ events rows", lambda lo, hi: grant(grouped_winners(target, grouped, award, lo, hi),
                                                notify=False)),
        ("+ notify (= backfill's batch)", lambda lo, hi: grant(
            grouped_winners(target, grouped, award, lo, hi))),
    ]
    def walk(build) -> float:
        lo, total = None, 0.0
        while True:
            start = time.perf_counter()
            batch = conn.execute(next_users(target, lo, users)).fetchone()
            last = batch[0] if batch is not None and batch[1] > users else None
            if build is not None:
                conn.execute(build(lo, last)).fetchone()
            total += time.perf_counter() - start
            conn.rollback()
            if last is None:
                return total
            lo = last

    times = {label: [] for label, _ in rungs}
    with conn:
        for _ in range(repeat):
            for label, build in rungs:
                times[label].append(walk(build))
    return [(label, statistics.median(t)) for label, t in times.items()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="admin DSN of a server (default: an embedded one)")
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--users", type=int, help="default rows / 50")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--main", type=Path, default=Path("/work/main"),
                    help="checkout whose backfill is compared (default /work/main)")
    args = ap.parse_args()
    users = args.users or max(1, args.rows // 50)
    with scratch_server(args.dsn, "bc-bench-") as admin, \
            scratch_database(admin, "bc_bench_backfill") as dsn:
        start = time.perf_counter()
        with psycopg.connect(dsn) as conn:
            create_demo_schema(conn, users=users, sketches=args.rows)
            conn.commit()
        badges = collector_file(Path(os.environ.get("TMPDIR", "/tmp")) /
                                f"bc-bench-collector-{os.getpid()}.json")
        with psycopg.connect(dsn) as conn:
            install(conn, parse_badge_file(badges.read_text()))
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        print(f"# backfill cost — PostgreSQL {version}, {args.rows:,} sketches, {users:,} users"
              f" (all qualify), median of {args.repeat}; built in "
              f"{time.perf_counter() - start:.0f}s")
        runners = {"floor": lambda: (run_floor(dsn), 0),
                   "main": lambda: run_command(args.main, dsn, badges),
                   "ours": lambda: run_command(ROOT, dsn, badges)}
        times = {k: [] for k in runners}
        rss = {k: [] for k in runners}
        expected = None
        order = list(runners)
        for rep in range(args.repeat):
            for name in order[rep % 3:] + order[:rep % 3]:
                reset(dsn)
                took, peak = runners[name]()
                times[name].append(took)
                rss[name].append(peak)
                with psycopg.connect(dsn) as conn:
                    got = conn.execute(AWARDED).fetchone()
                expected = expected or got
                if got != expected or got[0] != users:
                    raise SystemExit(f"{name} awarded {got}, expected {expected}")
        floor = statistics.median(times["floor"])
        print(f"{'run':<8}{'median':>10}{'x floor':>9}{'peak RSS':>10}   all runs")
        for name in runners:
            med = statistics.median(times[name])
            peak = f"{max(rss[name])} MiB" if name != "floor" else "-"
            runs = " ".join(f"{t:.2f}" for t in times[name])
            print(f"{name:<8}{med:>9.2f}s{med / floor:>9.2f}{peak:>10}   {runs}")
        ours, main_ = statistics.median(times["ours"]), statistics.median(times["main"])
        print(f"ours / main: {ours / main_:.3f}; target ours <= 3x floor: "
              f"{'met' if ours <= 3 * floor else 'MISSED'}")
        reset(dsn)
        print(f"ladder of ours ({BACKFILL_USERS:,} users per batch), summed over the batches,"
              f" median of {args.repeat}:")
        for label, took in ladder(dsn, badges, BACKFILL_USERS, args.repeat):
            print(f"  {label:<34}{took:>8.2f}s {took / floor:>6.2f}x floor")
        badges.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
