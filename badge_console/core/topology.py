"""What a DSN leads to: a primary or a hot standby, directly or through a transaction pooler.

Both decide what may be done on a connection: a standby takes no write (and no LISTEN),
and behind a transaction pooler each transaction may run on another server connection,
so LISTEN hears nothing meant for us and session state would leak to other clients. The
standby question is asked once per connection and remembered with it; the pooling one,
which costs a second connection, only by the feed, once per connect.
"""

from __future__ import annotations

import select
import time
import weakref

import psycopg

from .connection import connect, describe_server
from .errors import DatabaseUnreachable, StandbyRefused

_standby: "weakref.WeakKeyDictionary[psycopg.Connection, bool]" = weakref.WeakKeyDictionary()


def is_standby(conn: psycopg.Connection) -> bool:
    """pg_is_in_recovery(), asked once per connection."""
    known = _standby.get(conn)
    if known is None:
        with conn.transaction():  # leaves no transaction open behind the caller's back
            known = _standby[conn] = bool(
                conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
    return known


def target_of(conn: psycopg.Connection) -> str:
    """user@host:port/dbname of the live connection, as the server reports it."""
    return describe_server(conn).address


def require_primary(conn: psycopg.Connection, operation: str, target: str | None = None) -> None:
    """Refuse `operation` (a write) up front on a hot standby, naming the server."""
    if is_standby(conn):
        raise StandbyRefused(operation, target or target_of(conn))


def _backend_pid(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def _pid_in_open_transaction(other: psycopg.Connection, seconds: float) -> int | None:
    """BEGIN and pg_backend_pid() on `other`, the transaction left open; None when the
    pooler found no free server connection for it within `seconds` (a full pool)."""
    pgconn = other.pgconn
    pgconn.send_query(b"BEGIN; SELECT pg_backend_pid()")
    deadline = time.monotonic() + seconds
    while pgconn.is_busy():
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([pgconn.socket], [], [], left)[0]:
            return None
        pgconn.consume_input()
    pid = None
    while (result := pgconn.get_result()) is not None:
        if result.ntuples:
            pid = int(result.get_value(0, 0))
    return pid


def pooling(conn: psycopg.Connection, dsn: str, wait: float = 3.0) -> str:
    """How `conn` (autocommit) reaches its backend: "direct", "session" or "transaction"
    pooling, or "unknown".

    Straight to the server, the backend's pid is the one the startup reported. Otherwise
    (a pooler answered the startup with its own key) a second client holds a server
    connection in an open transaction between two of ours: under session pooling our
    backend stays ours, so the pid cannot change and the other client never gets it;
    under transaction pooling our backend was free for it, or ours moved. "unknown": no
    free server connection for the second client within `wait` seconds.
    """
    first = _backend_pid(conn)
    if first == conn.info.backend_pid:
        return "direct"
    try:
        with connect(dsn, autocommit=True) as other:
            held = _pid_in_open_transaction(other, wait)
            if held is None:
                return "unknown"
            second = _backend_pid(conn)
            other.pgconn.exec_(b"ROLLBACK")
    except (psycopg.Error, DatabaseUnreachable):
        return "unknown"
    return "transaction" if second != first or held == first else "session"
