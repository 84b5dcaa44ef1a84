"""What a DSN leads to: a primary or a hot standby, directly or through a transaction pooler.

Both decide what may be done on a connection: a standby takes no write (and no LISTEN),
and behind a transaction pooler each transaction may run on another server connection,
so LISTEN hears nothing meant for us and session state would leak to other clients. Each
is found out once per connection and remembered with it.
"""

from __future__ import annotations

import weakref

import psycopg

from .connection import connect
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
    """host:port/dbname of the live connection (never a password)."""
    info = conn.info
    host = "socket" if (info.host or "").startswith("/") else info.host
    return f"{host}:{info.port}/{info.dbname}"


def require_primary(conn: psycopg.Connection, operation: str, target: str | None = None) -> None:
    """Refuse `operation` (a write) up front on a hot standby, naming the server."""
    if is_standby(conn):
        raise StandbyRefused(operation, target or target_of(conn))


def _backend_pid(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def transaction_pooled(conn: psycopg.Connection, dsn: str) -> bool:
    """Whether consecutive transactions of `conn` (autocommit) may run on other backends.

    Straight to the server, the backend's pid is the one the startup reported: no pooler.
    Otherwise (a pooler answered the startup with its own key) a second client holds a
    server connection in an open transaction between two of ours: under session pooling
    our backend stays ours, so the pid cannot change and the other client never gets it;
    under transaction pooling our backend was free for it, or ours moved. Unsure counts as
    pooled: polling is right in every mode, LISTEN only in some.
    """
    first = _backend_pid(conn)
    if first == conn.info.backend_pid:
        return False
    try:
        with connect(dsn) as other:
            other.prepare_threshold = None
            held = _backend_pid(other)  # a transaction: psycopg opened it, it stays open
            second = _backend_pid(conn)
            other.rollback()
    except (psycopg.Error, DatabaseUnreachable):
        return True
    return second != first or held == first
