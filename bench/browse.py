"""Paging cost on a 1,000,000-row table against a 1,000-row table, measured in one run.

    python bench/browse.py [--dsn ADMIN_DSN]

Prints time to the first, next and last page of each table (median of 21, alternating tables), their ratios
(target: the big table within 1.5x of the small one), and the process's RSS growth after
paging through 200 pages of the big table (target: under 30 MB). Without --dsn an
embedded PostgreSQL is started in a temporary folder. Creates and drops its own database.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from badge_console.core import browse  # noqa: E402

REPEAT = 21
TABLES = {"big": 1_000_000, "small": 1_000}


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def fill(conn) -> None:
    for name, rows in TABLES.items():
        conn.execute(sql.SQL(
            "CREATE TABLE {} (id bigserial PRIMARY KEY, user_id int NOT NULL, "
            "title text NOT NULL, hit_views int NOT NULL, created_at timestamptz NOT NULL)"
        ).format(sql.Identifier(name)))
        conn.execute(sql.SQL(
            "INSERT INTO {} (user_id, title, hit_views, created_at) "
            "SELECT i %% 5000, 'Sketch ' || i, (i * 131) %% 997, "
            "timestamptz '2026-01-01' - make_interval(secs => i) "
            "FROM generate_series(1, %s) i").format(sql.Identifier(name)), (rows,))
    conn.execute("VACUUM ANALYZE")
    conn.execute("CHECKPOINT")


def side_by_side(conn) -> dict[str, dict[str, float]]:
    """Median ms per step and table; the tables alternate so load hits both alike."""
    browsers = {name: browse.Browser(browse.describe(conn, "public", name)) for name in TABLES}
    firsts = {name: b.first(conn) for name, b in browsers.items()}  # also warms the cache
    steps = {"first": lambda b, f: b.first(conn), "next": lambda b, f: b.next(conn, f),
             "last": lambda b, f: b.last(conn)}
    times: dict[str, dict[str, list[float]]] = {n: {s: [] for s in steps} for n in TABLES}
    for _ in range(REPEAT):
        for step, fn in steps.items():
            for name, browser in browsers.items():
                start = time.perf_counter()
                fn(browser, firsts[name])
                times[name][step].append((time.perf_counter() - start) * 1000)
    return {n: {s: statistics.median(v) for s, v in t.items()} for n, t in times.items()}


def page_through(conn, pages: int) -> tuple[float, int]:
    browser = browse.Browser(browse.describe(conn, "public", "big"))
    gc.collect()
    before = rss_mb()
    page = browser.first(conn)
    for _ in range(pages - 1):
        page = browser.next(conn, page)
    gc.collect()
    return rss_mb() - before, int(page.rows[-1][0])


def main(admin_dsn: str | None) -> None:
    from badge_console.core.demo import scratch_database, scratch_server

    with scratch_server(admin_dsn, "bc-bench-") as admin, \
            scratch_database(admin, "bc_bench") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn:
        started = time.perf_counter()
        fill(conn)
        print(f"filled big ({TABLES['big']:,} rows) and small ({TABLES['small']:,} rows) "
              f"in {time.perf_counter() - started:.1f}s; page size {browse.PAGE_SIZE}, "
              f"median of {REPEAT}")
        results = side_by_side(conn)
        print(f"{'page':<6} {'1k rows ms':>11} {'1M rows ms':>11} {'ratio':>7}  target <= 1.5")
        worst = 0.0
        for step in ("first", "next", "last"):
            small, big = results["small"][step], results["big"][step]
            ratio = big / small
            worst = max(worst, ratio)
            print(f"{step:<6} {small:>11.2f} {big:>11.2f} {ratio:>7.2f}  "
                  f"{'ok' if ratio <= 1.5 else 'OVER'}")
        growth, last_id = page_through(conn, 200)
        print(f"RSS growth after 200 pages of big (to id {last_id:,}): {growth:.1f} MB  "
              f"target < 30 MB  {'ok' if growth < 30 else 'OVER'}")
        print(f"worst ratio {worst:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="admin DSN (default: an embedded server in a temp dir)")
    main(parser.parse_args().dsn)
