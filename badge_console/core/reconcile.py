"""Reconcile: award what the triggers could not decide at once, and when that runs.

A trigger that cannot have a (badge, user) lock within sqlgen_locks.LOCK_WAIT queues the row
instead of waiting, and a time-based condition becomes true with no write at all; one
pass of `badge_console.reconcile()` (sqlgen_reconcile) awards both. This module runs a
pass, reads when the last one ran, and schedules passes: with pg_cron when the extension
is installed in the database (a named job), otherwise as a crontab line to add by hand.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass

import psycopg
from psycopg import conninfo, sql

from . import catalog
from .errors import OperationFailed, UsageError
from .sqlgen import SCHEMA
from .batch_sizes import RECONCILE_ROWS
from .sqlgen_reconcile import LAST_RUN_KEY

JOB_NAME = "badge-console-reconcile"
JOB_COMMAND = f"CALL {SCHEMA}.reconcile()"
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


class NotInstalled(OperationFailed):
    """Reconcile asked for on a database without badge_console's reconcile procedure."""

    def __init__(self, database: str):
        self.database = database
        super().__init__(f"Database {database} has no badge_console.reconcile(); run install "
                         "first (again, after upgrading badge-console).")


@dataclass
class ReconcilePass:
    awarded_from_queue: int
    awarded_time_based: int
    queued: int  # rows still queued: their user's lock was held by a writer
    started_at: str
    finished_at: str

    @property
    def awarded(self) -> int:
        return self.awarded_from_queue + self.awarded_time_based

    def as_dict(self) -> dict:
        return asdict(self) | {"awarded": self.awarded}

    @classmethod
    def from_json(cls, doc: dict) -> "ReconcilePass":
        return cls(int(doc["awarded_from_queue"]), int(doc["awarded_time_based"]),
                   int(doc["queued"]), str(doc["started_at"]), str(doc["finished_at"]))


def _installed(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regproc(%s) IS NOT NULL",
                        (f"{SCHEMA}.reconcile",)).fetchone()[0]


def run_pass(conn: psycopg.Connection, batch: int = RECONCILE_ROWS) -> ReconcilePass:
    """One pass. The procedure commits between batches, so `conn` must be in autocommit."""
    if not _installed(conn):
        raise NotInstalled(conn.info.dbname)
    row = conn.execute(sql.SQL("CALL {}.reconcile(%s, NULL)").format(sql.Identifier(SCHEMA)),
                       (max(1, int(batch)),)).fetchone()
    return ReconcilePass.from_json(row[0])


def last_pass(conn: psycopg.Connection) -> ReconcilePass | None:
    """What the last pass did and when, whoever ran it (CLI, console, pg_cron)."""
    if not catalog.relation_exists(conn, SCHEMA, "settings"):
        return None
    row = conn.execute(sql.SQL("SELECT value FROM {} WHERE key = %s").format(
        sql.Identifier(SCHEMA, "settings")), (LAST_RUN_KEY,)).fetchone()
    return ReconcilePass.from_json(json.loads(row[0])) if row else None


# --------------------------------------------------------------------------- schedule
def parse_interval(text: str) -> int:
    """'90', '30s', '5m', '5min', '1h', '1d' -> seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-z]*)\s*", text.lower())
    if not match or match.group(2) not in ("", *_UNITS) or int(match.group(1)) <= 0:
        raise UsageError(f"Schedule interval '{text}' is not a duration such as 30s, 5m or 1h.")
    return int(match.group(1)) * _UNITS.get(match.group(2) or "s", 1)


def cron_expression(seconds: int) -> str:
    """The cron schedule closest to `seconds`, at least every minute (cron's finest step)."""
    minutes = max(1, math.ceil(seconds / 60))
    if minutes < 60:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours = round(minutes / 60)
    return f"0 */{hours} * * *" if hours < 24 else "0 0 * * *"


def has_pg_cron(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension"
                        " WHERE extname = 'pg_cron')").fetchone()[0]


def scheduled(conn: psycopg.Connection) -> str | None:
    """The pg_cron schedule of our job, or None (no pg_cron, no job, or no right to see)."""
    if not has_pg_cron(conn) or not conn.execute(
            "SELECT has_table_privilege('cron.job', 'SELECT')").fetchone()[0]:
        return None
    row = conn.execute("SELECT schedule FROM cron.job WHERE jobname = %s",
                       (JOB_NAME,)).fetchone()
    return row[0] if row else None


def schedule(conn: psycopg.Connection, cron: str) -> None:
    """Register (or re-time) the named pg_cron job running one pass."""
    with conn.transaction():
        conn.execute("SELECT cron.schedule(%s, %s, %s)", (JOB_NAME, cron, JOB_COMMAND))


def unschedule_statements(conn: psycopg.Connection) -> list[sql.Composed]:
    """What removes our pg_cron job (nothing when there is none); uninstall runs it."""
    if scheduled(conn) is None:
        return []
    return [sql.SQL("SELECT cron.unschedule({})").format(sql.Literal(JOB_NAME))]


def crontab_line(dsn: str, cron: str) -> str:
    """The line for `crontab -e` where pg_cron is missing; the password stays out of it
    (the cron job finds it in ~/.pgpass or PGPASSFILE)."""
    parts = {k: v for k, v in conninfo.conninfo_to_dict(dsn).items() if k != "password"}
    target = conninfo.make_conninfo(**parts).replace("'", "'\\''")
    return f"{cron} badge-console --dsn '{target}' reconcile"
