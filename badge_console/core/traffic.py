"""Demo traffic: realistic writes on the embedded demo database, so awards keep flowing.

People sign up (some with an old join date, as if imported), log in, post sketches, get
views and delete unviewed sketches. New users keep arriving, so there is always someone
about to earn Collector (5 sketches), Star (a sketch at 1,000 views), Pionner (logs in a
year after joining) or Spring cleaning (deletes a sketch nobody viewed). Every write is
its own transaction, made by the application as any other program would: the triggers
award, the feed shows.

Refused anywhere but the embedded demo database: it writes made-up rows.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .connection import connect
from .demo import DEMO_DB, data_dir
from .errors import OperationFailed

DEFAULT_RATE = 20.0  # writes per second
RECENT = 20  # newest users and sketches the traffic focuses on
TRENDING = 5  # sketches collecting views at a time
WEIGHTS = {"signup": 5, "login": 10, "sketch": 40, "views": 37, "delete": 8}


@dataclass
class TrafficStats:
    writes: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.writes.values())


def is_embedded_demo(conn: psycopg.Connection) -> bool:
    """True only for the demo database of badge-console's own embedded server."""
    if conn.execute("SELECT current_database()").fetchone()[0] != DEMO_DB:
        return False
    try:
        directory = conn.execute("SHOW data_directory").fetchone()[0]
    except psycopg.Error:  # not allowed to see it: not our embedded server
        return False
    finally:
        if not conn.autocommit:
            conn.rollback()
    return Path(directory).resolve() == (data_dir() / "pgdata").resolve()


class DemoTraffic:
    """One realistic write per step() on a demo-shaped schema (auth_user, dummy_sketch)."""

    def __init__(self, conn: psycopg.Connection, rng: random.Random | None = None):
        self.conn = conn
        self.rng = rng or random.Random()
        self.users: deque[int] = deque(maxlen=RECENT)
        self.sketches: deque[int] = deque(maxlen=RECENT)
        self.trending: list[int] = []
        self.max_user = conn.execute("SELECT coalesce(max(id), 0) FROM auth_user").fetchone()[0]
        self.max_sketch = conn.execute(
            "SELECT coalesce(max(id), 0) FROM dummy_sketch").fetchone()[0]

    def _user(self) -> int:
        if self.users and (self.rng.random() < 0.7 or self.max_user == 0):
            return self.rng.choice(self.users)
        return self.rng.randint(1, max(1, self.max_user))

    def step(self) -> str:
        kind = self.rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
        if kind in ("sketch", "views", "delete", "login") and self.max_user == 0:
            kind = "signup"
        if kind == "delete" and not self.sketches:
            kind = "sketch"
        getattr(self, f"_{kind}")()
        return kind

    def _execute(self, query: str, params=()):
        with self.conn.transaction():
            return self.conn.execute(query, params).fetchone()

    def _signup(self) -> None:
        name = f"visitor_{uuid.uuid4().hex[:10]}"
        days = self.rng.randint(0, 800)  # some were imported from an older site
        row = self._execute(
            "INSERT INTO auth_user (username, first_name, email, date_joined)"
            " VALUES (%s, %s, %s, now() - make_interval(days => %s)) RETURNING id",
            (name, name.replace("_", " ").title(), f"{name}@example.com", days))
        self.users.append(row[0])
        self.max_user = max(self.max_user, row[0])

    def _login(self) -> None:
        self._execute("UPDATE auth_user SET last_login = now() WHERE id = %s RETURNING id",
                      (self._user(),))

    def _sketch(self) -> None:
        row = self._execute(
            "INSERT INTO dummy_sketch (user_id, title)"
            " SELECT id, %s FROM auth_user WHERE id = %s RETURNING id",
            (f"Sketch {self.rng.randint(1, 99999)}", self._user()))
        if row:
            self.sketches.append(row[0])
            self.max_sketch = max(self.max_sketch, row[0])
            if len(self.trending) < TRENDING:
                self.trending.append(row[0])

    def _views(self) -> None:
        if self.trending and self.rng.random() < 0.7:
            sketch = self.rng.choice(self.trending)
        else:
            sketch = self.rng.randint(1, max(1, self.max_sketch))
        row = self._execute(
            "UPDATE dummy_sketch SET hit_views = hit_views + %s WHERE id = %s"
            " RETURNING hit_views", (self.rng.randint(100, 600), sketch))
        if (row is None or row[0] >= 1000) and sketch in self.trending:
            self.trending.remove(sketch)  # a star now (or gone): let another one trend

    def _delete(self) -> None:
        candidates = [s for s in self.sketches if s not in self.trending] or list(self.sketches)
        sketch = self.rng.choice(candidates)
        self._execute("DELETE FROM dummy_sketch WHERE id = %s RETURNING id", (sketch,))
        if sketch in self.sketches:
            self.sketches.remove(sketch)


def run_demo_traffic(dsn: str, rate: float = DEFAULT_RATE, seconds: float | None = None,
                     stop: threading.Event | None = None, rng: random.Random | None = None) -> TrafficStats:
    """Write at `rate` writes/s for `seconds` (None: until `stop` is set)."""
    if rate <= 0:
        raise OperationFailed("The rate must be a positive number of writes per second.")
    stop = stop or threading.Event()
    stats = TrafficStats()
    with connect(dsn, autocommit=True) as conn:
        if not is_embedded_demo(conn):
            raise OperationFailed("Demo traffic only runs on the embedded demo database "
                                  "(start badge-console without --dsn or DATABASE_URL).")
        traffic = DemoTraffic(conn, rng)
        start = time.monotonic()
        deadline = None if seconds is None else start + seconds
        n = 0
        while not stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            stats.writes[traffic.step()] += 1
            n += 1
            wait = start + n / rate - time.monotonic()
            if wait > 0:
                stop.wait(min(wait, deadline - time.monotonic()) if deadline else wait)
        stats.seconds = time.monotonic() - start
    return stats
