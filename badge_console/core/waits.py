"""Bounded waits: every transaction sets its own lock and statement timeouts, and a lock
wait that gives up is reported with the table and the session that holds it.

The timeouts are SET LOCAL (set_config(..., true)), never session-wide: behind a
transaction-pooling PgBouncer a session setting would stay on the server connection and
reach the pool's other clients. PostgreSQL's lock-timeout error does not say what it
waited for, so `lock_timeout_error` looks it up afterwards in pg_locks: the first of the
candidate tables that another session holds (or queues for) in a conflicting mode.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator

import psycopg

from . import catalog
from .errors import LockTimeout, StatementTimeout


@dataclass(frozen=True)
class Timeouts:
    lock: str = "5s"  # a lock wait gives up after this (lock_timeout)
    statement: str = "30s"  # any statement gives up after this (statement_timeout)


READS = Timeouts()  # validate, plan, backfill previews, the console's views

# Which held modes block a request for a mode (PostgreSQL's table-level lock conflicts).
_CONFLICTS = {
    "AccessShareLock": ("AccessExclusiveLock",),
    "RowExclusiveLock": ("ShareLock", "ShareRowExclusiveLock", "ExclusiveLock",
                         "AccessExclusiveLock"),
    "AccessExclusiveLock": ("AccessShareLock", "RowShareLock", "RowExclusiveLock",
                            "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock",
                            "ExclusiveLock", "AccessExclusiveLock"),
}

_HOLDER = """
SELECT l.relation::regclass::text, l.pid
FROM pg_locks l
WHERE l.locktype = 'relation' AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.mode = ANY(%(modes)s)
  AND (%(any)s OR l.relation = ANY(%(oids)s::oid[]))
ORDER BY array_position(%(oids)s::oid[], l.relation), NOT l.granted, l.pid
LIMIT 1
"""


def bound(conn: psycopg.Connection, timeouts: Timeouts = READS) -> None:
    """Both timeouts for the rest of the current transaction only."""
    conn.execute("SELECT set_config('lock_timeout', %s, true),"
                 " set_config('statement_timeout', %s, true)",
                 (timeouts.lock, timeouts.statement))


def lock_timeout_error(conn: psycopg.Connection, timeout: str, tables: Iterable[str] = (),
                       mode: str = "AccessShareLock") -> LockTimeout:
    """The LockTimeout to raise after a lock wait gave up; `tables` are the names the
    statement could have waited for, most likely first. Needs a usable connection (the
    failed transaction or savepoint already rolled back)."""
    names = list(dict.fromkeys(t for t in tables if t))
    modes = list(_CONFLICTS.get(mode, _CONFLICTS["AccessExclusiveLock"]))
    try:
        with conn.transaction():
            oids = [ref.oid for ref in map(lambda n: catalog.resolve_table(conn, n), names)
                    if ref is not None]
            found = conn.execute(_HOLDER, {"modes": modes, "any": False, "oids": oids}
                                 ).fetchone()
            if found is None and mode == "AccessShareLock":  # a table the condition reads
                found = conn.execute(_HOLDER, {"modes": modes, "any": True, "oids": oids}
                                     ).fetchone()
    except psycopg.Error:  # the diagnosis is a courtesy: never hide the timeout behind it
        found = None
    table, pid = found if found else (None, None)
    return LockTimeout(table=table, pid=pid, timeout=timeout)


@contextmanager
def bounded(conn: psycopg.Connection, timeouts: Timeouts = READS, tables: list[str] | tuple = (),
            *, read_only: bool = False, mode: str = "AccessShareLock") -> Iterator[None]:
    """A transaction (a savepoint when nested) under both timeouts; a lock wait that gives
    up raises LockTimeout, a statement that runs out of time StatementTimeout. `tables`
    may be a list the body extends as it learns what it locks."""
    outermost = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    try:
        with conn.transaction():
            if read_only and outermost:  # nested, it would outlive the savepoint
                conn.execute("SET TRANSACTION READ ONLY")
            bound(conn, timeouts)
            yield
    except psycopg.errors.LockNotAvailable:
        raise lock_timeout_error(conn, timeouts.lock, tables, mode) from None
    except psycopg.errors.QueryCanceled:
        raise StatementTimeout(timeout=timeouts.statement) from None


def tables_of(bf) -> list[str]:
    """The tables a badge file's checks and triggers lock: trigger tables, award table.
    Read from the file as written (not yet checked): it bounds the checks themselves."""
    names = [b.trigger_table for b in bf.badges if isinstance(b.trigger_table, str)]
    return [*names, bf.settings.award_table]
