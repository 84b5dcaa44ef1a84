"""Latency of `badge-console watch --json` against a bare psycopg LISTEN loop, side by side.

Writers commit one-row inserts that each award one badge (a trigger installed by
badge-console, one new user per insert) at a fixed rate. Two subprocesses listen on the same
channel at the same time: the real CLI (`python -m badge_console.cli watch --json`) and a
bare `conn.notifies()` loop printing each payload. This process timestamps the moment each
writer's commit returns (keyed by the award's user id, one award per user) and the moment
each subprocess's line for that user arrives on its stdout pipe; latency is the difference.
Lost = awards committed but never printed by that reader.

    python bench/feed_latency.py                 # embedded PostgreSQL in a temp dir
    python bench/feed_latency.py --dsn postgresql://postgres@127.0.0.1:5432/postgres

It creates and drops its own database. Targets: watch's p50 within 2 ms and p99 within
20 ms of the bare loop, 0 lost, at every rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from badge_console.core.definitions import parse_badge_file  # noqa: E402
from badge_console.core.install import install  # noqa: E402

BADGES = {"badges": [{"name": "First event", "code": "first_event", "condition": "true",
                      "trigger_condition": "insert", "trigger_table": "bench_event",
                      "user_field": "user_id"}]}
BARE = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("LISTEN badge_awarded")
sys.stderr.write("ready\\n"); sys.stderr.flush()
out = sys.stdout
try:
    for n in conn.notifies():
        out.write(n.payload + "\\n"); out.flush()
except KeyboardInterrupt:
    pass
"""
P50_TARGET, P99_TARGET = 2.0, 20.0  # ms above the bare loop


class Reader:
    """A listening subprocess; a thread stamps each stdout line as it arrives."""

    def __init__(self, name: str, argv: list[str], ready: str):
        self.name = name
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        self.arrivals: list[tuple[float, bytes]] = []
        deadline = time.monotonic() + 30
        while ready.encode() not in self.proc.stderr.readline():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"{name} did not start")
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def _read(self) -> None:
        stamp, append = time.perf_counter, self.arrivals.append
        for line in self.proc.stdout:
            append((stamp(), line))

    def received(self, since: int) -> dict[int, float]:
        """user_id -> first arrival time, for the lines from index `since` on."""
        got: dict[int, float] = {}
        self.dups = 0
        for at, line in self.arrivals[since:]:
            user = json.loads(line)["user_id"]
            if user in got:
                self.dups += 1
            else:
                got[user] = at
        return got

    def cpu_seconds(self) -> float:
        """CPU time the subprocess has used so far (Linux /proc; 0 elsewhere)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def write(dsn: str, first_user: int, rate: float, seconds: float, writers: int,
          per_commit: int) -> tuple[dict[int, float], float]:
    """Commit rate*seconds awards, `per_commit` rows (users) per transaction, paced.

    Returns user -> the time that user's commit returned, and the achieved awards/s.
    """
    commit_rate = rate / per_commit
    total = int(commit_rate * seconds)
    commits: dict[int, float] = {}
    conns = [psycopg.connect(dsn, autocommit=True) for _ in range(writers)]
    for c in conns:  # commits return without waiting for the WAL flush; NOTIFY is unchanged
        c.execute("SET synchronous_commit = off")
    start = time.perf_counter() + 0.2

    def run(k: int) -> None:
        conn, stamp, mine = conns[k], time.perf_counter, {}
        query = "INSERT INTO bench_event (user_id) SELECT unnest(%s::bigint[])"
        for i in range(k, total, writers):
            wait = start + i / commit_rate - stamp()
            if wait > 0:
                time.sleep(wait)
            users = list(range(first_user + i * per_commit, first_user + (i + 1) * per_commit))
            conn.execute(query, (users,), prepare=True)
            done = stamp()
            for user in users:
                mine[user] = done
        commits.update(mine)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(commits.values()) - start
    for c in conns:
        c.close()
    return commits, len(commits) / elapsed if elapsed > 0 else float("inf")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def phase(dsn: str, readers: list[Reader], first_user: int, rate: float, seconds: float,
          writers: int, per_commit: int) -> bool:
    marks = [len(r.arrivals) for r in readers]
    cpu = [r.cpu_seconds() for r in readers]
    commits, achieved = write(dsn, first_user, rate, seconds, writers, per_commit)
    deadline, expected = time.monotonic() + 10, len(commits)
    while time.monotonic() < deadline and any(
            len(r.arrivals) - m < expected for r, m in zip(readers, marks)):
        time.sleep(0.05)
    time.sleep(0.3)  # late duplicates, if any, would arrive now
    cpu = [r.cpu_seconds() - c for r, c in zip(readers, cpu)]
    per = "one per commit" if per_commit == 1 else f"{per_commit} per commit"
    print(f"\nrate {rate:g} awards/s for {seconds:g} s: {expected} awards, {per}, "
          f"{writers} writer connections, achieved {achieved:.0f}/s")
    print(f"  {'reader':<14}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'lost':>7}{'dup':>6}"
          f"{'CPU us/award':>14}")
    rows = []
    for reader, mark, used in zip(readers, marks, cpu):
        got = reader.received(mark)
        lat = [(got[u] - t) * 1000 for u, t in commits.items() if u in got]
        lost = sum(1 for u in commits if u not in got)
        row = (pct(lat, 50), pct(lat, 99), max(lat)) if lat else (float("nan"),) * 3
        rows.append((row, lost))
        print(f"  {reader.name:<14}{row[0]:>9.3f}{row[1]:>9.3f}{row[2]:>9.1f}{lost:>7}"
              f"{reader.dups:>6}{used / max(expected, 1) * 1e6:>14.0f}")
    (bare, bare_lost), (watch, watch_lost) = rows
    d50, d99, dmax = (w - b for w, b in zip(watch, bare))
    ok = d50 <= P50_TARGET and d99 <= P99_TARGET and watch_lost == 0 and bare_lost == 0
    verdict = "met" if ok else "MISSED"
    if achieved < 0.9 * rate:
        ok, verdict = False, "not measured: the writers did not reach the rate"
    print(f"  {'difference':<14}{d50:>+9.3f}{d99:>+9.3f}{dmax:>+9.1f}"
          f"   targets p50 <= +{P50_TARGET:g}, p99 <= +{P99_TARGET:g}, 0 lost: {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", help="server to use (default: embedded PostgreSQL in a temp dir)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length at 1,000/s")
    parser.add_argument("--fast-seconds", type=float, default=3.0, help="length at 5,000/s")
    parser.add_argument("--writers", type=int, default=4, help="writer connections")
    parser.add_argument("--fast-per-commit", type=int, default=5,
                        help="awards per commit at 5,000/s (1 needs more CPU than 2 shared "
                             "cores have)")
    args = parser.parse_args()

    from badge_console.core.demo import scratch_database, scratch_server

    readers: list[Reader] = []
    with scratch_server(args.dsn, "bc_bench_") as admin, \
            scratch_database(admin, "bc_bench_feed") as dsn:
        try:
            with psycopg.connect(dsn) as conn:
                version = conn.execute("SHOW server_version").fetchone()[0]
                conn.execute("CREATE TABLE bench_event (id bigserial PRIMARY KEY,"
                             " user_id bigint NOT NULL)")
                conn.commit()
                install(conn, parse_badge_file(json.dumps(BADGES)))
            readers = [
                Reader("bare LISTEN", [sys.executable, "-c", BARE, dsn], "ready"),
                Reader("watch --json", [sys.executable, "-m", "badge_console.cli", "watch",
                                        "--json", "--dsn", dsn], "Watching"),
            ]
            print(f"feed latency, commit return -> line on the reader's stdout; PostgreSQL "
                  f"{version}, {os.cpu_count()} CPUs, both readers listening at the same time")
            ok = phase(dsn, readers, 1, 1000, args.seconds, args.writers, 1)
            ok &= phase(dsn, readers, 10_000_000, 5000, args.fast_seconds, args.writers,
                        args.fast_per_commit)
        finally:
            for r in readers:
                r.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
