"""The operator's commands on many badges, timed for bench/badges_per_table.py: install
(and the stall it causes the application's writers), validate, backfill.

Each runs on a scratch database of its own (badge_databases.prepared), dropped after.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import psycopg

from badge_console.core.backfill import run_backfill
from badge_console.core.install import install, uninstall
from badge_databases import empty, prepared
from badge_sets import badge_file, collector_one_badge, mixed_badges
from trigger_overhead import awards

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ("INSERT INTO badges_badge (user_id, name, code)"
         " SELECT user_id, 'Collector', 'collector' FROM dummy_sketch"
         " GROUP BY user_id HAVING count(id) >= 5")
SKETCHES = ("INSERT INTO dummy_sketch (user_id, title, hit_views)"
            " SELECT 1 + (i %% %s), 'Sketch ' || i, (i * 131) %% 997"
            " FROM generate_series(0, %s - 1) AS i")


def verdict(ok: bool) -> str:
    """What is printed next to a figure and its target."""
    return "met" if ok else "MISSED"


class Writer(threading.Thread):
    """The application meanwhile: one-row autocommit inserts in a loop, each timed."""

    def __init__(self, dsn: str, users: int):
        super().__init__(daemon=True)
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.users, self.stop, self.latencies = users, threading.Event(), []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            began = time.perf_counter()
            self.conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (%s, 'w')",
                              (1 + i % self.users,))
            self.latencies.append((began, time.perf_counter() - began))
            i += 1

    def during(self, start: float, end: float) -> list[float]:
        """Latencies of the inserts that began while [start, end) was going on."""
        return [s for began, s in self.latencies if start <= began < end]


def _rss() -> int | None:
    """Resident bytes of this process (Linux /proc), None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


class RssGrowth(threading.Thread):
    """How much this process's resident memory grows while a command runs, sampled every
    50 ms (a backfill must stay flat whatever the number of rows; the peak RSS of
    getrusage would hide that behind whatever an earlier part of the bench used)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.first = threading.Event(), _rss()
        self.peak = self.first

    def run(self) -> None:
        while self.first is not None and not self.stop.wait(0.05):
            self.peak = max(self.peak, _rss())

    def words(self) -> str:
        self.stop.set()
        self.join()
        if self.first is None:
            return "not measured (no /proc)"
        return f"{(self.peak - self.first) / 2**20:.0f} MB"


def measure_install(admin_dsn: str, sizes, rounds: int) -> None:
    """Install of `sizes.many` badges from nothing installed, a writer looping meanwhile;
    uninstall between rounds (not timed)."""
    bf = badge_file(mixed_badges(sizes.many))
    walls, stalls, before = [], [], []
    with ExitStack() as stack:
        dsn = prepared(stack, admin_dsn, "install", sizes.users)
        for _ in range(rounds):
            writer = Writer(dsn, sizes.users)
            writer.start()
            time.sleep(0.3)  # the writer's pace before install: its latencies for reference
            with psycopg.connect(dsn) as conn:
                start = time.perf_counter()
                install(conn, bf)
                end = time.perf_counter()
            time.sleep(0.1)
            writer.stop.set()
            writer.join()
            writer.conn.close()
            walls.append(end - start)
            stalls.append(max(writer.during(start, end), default=0.0))
            before.append(statistics.median(writer.during(0, start)))
            with psycopg.connect(dsn) as conn:
                uninstall(conn)
            with psycopg.connect(dsn, autocommit=True) as conn:
                empty(conn)
    wall, stall = statistics.median(walls), statistics.median(stalls) * 1000
    print(f"## install of {sizes.many} badges, a writer inserting one row at a time meanwhile "
          f"(median of {rounds})")
    print(f"install: {wall:.2f} s (target <= 2 s) {verdict(wall <= 2)}; longest insert "
          f"during install: {stall:.0f} ms (target <= 100 ms) {verdict(stall <= 100)}; "
          f"median insert before: {statistics.median(before) * 1000:.2f} ms")


def _validate(dsn: str, path: Path, *extra: str) -> float:
    """Wall seconds of one `badge-console validate` in a fresh interpreter; it must pass."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "badge_console.cli", "validate",
                           "--dsn", dsn, "--badges", str(path), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"validate failed (exit {done.returncode}):\n"
                         f"{(done.stdout + done.stderr)[-2000:]}")
    return took


def measure_validate(admin_dsn: str, sizes, rounds: int) -> None:
    """`validate` of `sizes.validate` badges (nothing installed) against the database,
    and offline for reference, each in a subprocess as an operator runs it."""
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bc_bpt_") as folder:
        dsn = prepared(stack, admin_dsn, "validate", sizes.users)
        path = Path(folder) / "badge.json"
        path.write_text(json.dumps({"badges": mixed_badges(sizes.validate)}), encoding="utf-8")
        online, offline = [], []
        for _ in range(rounds):
            online.append(_validate(dsn, path))
            offline.append(_validate(dsn, path, "--offline"))
    wall = statistics.median(online)
    print(f"## validate of {sizes.validate:,} badges (subprocess, median of {rounds})")
    print(f"against the database: {wall:.2f} s (target <= 2 s) {verdict(wall <= 2)}; "
          f"offline: {statistics.median(offline):.2f} s")


def measure_backfill(admin_dsn: str, sizes) -> None:
    """`backfill` of Collector (installed) over `sizes.rows` sketches, between two runs of
    the floor: one INSERT ... SELECT that awards the same users, without anything a
    backfill guarantees (batches, holders skipped, notifications)."""
    with ExitStack() as stack:
        dsn = prepared(stack, admin_dsn, "backfill", sizes.backfill_users)
        bf = badge_file(collector_one_badge())
        with psycopg.connect(dsn) as conn:
            began = time.perf_counter()
            conn.execute(SKETCHES, (sizes.backfill_users, sizes.rows))
        loaded = time.perf_counter() - began
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE dummy_sketch")
        with psycopg.connect(dsn) as conn:
            install(conn, bf)
        with psycopg.connect(dsn, autocommit=True) as conn:
            floors, got = [], {}
            for run in ("floor", "backfill", "floor"):
                conn.execute("TRUNCATE badges_badge")
                conn.execute("ANALYZE badges_badge")
                began = time.perf_counter()
                if run == "floor":
                    conn.execute(FLOOR)
                    floors.append(time.perf_counter() - began)
                else:
                    rss = RssGrowth()
                    rss.start()
                    run_backfill(conn, bf)
                    took = time.perf_counter() - began
                    grew = rss.words()
                got[run] = awards(conn)
    if got["floor"] != got["backfill"]:
        raise SystemExit(f"MISMATCH in backfill: {len(got['backfill'])} awards, "
                         f"the floor {len(got['floor'])}")
    floor = statistics.median(floors)
    print(f"## backfill of Collector over {sizes.rows:,} sketches of {sizes.backfill_users:,} "
          f"users ({len(got['floor']):,} awards; rows loaded in {loaded:.0f} s)")
    print(f"backfill {took:.2f} s, plain INSERT ... SELECT {floor:.2f} s (before "
          f"{floors[0]:.2f}, after {floors[1]:.2f}): {took / floor:.1f}x "
          f"(target <= 3x) {verdict(took <= 3 * floor)}; the bench's memory grew by {grew} "
          "during backfill")
