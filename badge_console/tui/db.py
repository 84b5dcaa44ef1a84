"""Connections for the console's workers: one per view, opened lazily, cancellable.

A plain object (no Textual): workers call `run(name, fn)` from their threads; the UI
thread may call `cancel(name)`. A lost connection is dropped and raised as
ConnectionLost (the worker posts messages.ConnectionDropped, so the app shows a banner
and reconnects); a statement the user cancelled is QueryCancelled. Neither ever
escapes as a traceback. Timeouts are not set here: every core function a view calls
bounds its own transactions (core.waits, SET LOCAL), so nothing session-wide reaches a
pooler's other clients.

psycopg is imported by the first worker that runs a query (a thread, after the first
screen), never while the console starts.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, TypeVar

from ..core.errors import DatabaseUnreachable, StatementTimeout

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")


class ConnectionLost(Exception):
    """The server went away (or never answered); str() is one sentence."""


class QueryCancelled(Exception):
    """The statement was cancelled by the user."""


class Database:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._conns: dict[str, psycopg.Connection] = {}
        self._cancelled: set[str] = set()  # names whose running statement the user cancelled
        self._lock = threading.Lock()
        self._turns: dict[str, threading.RLock] = {}  # one worker at a time per connection

    def _get(self, name: str) -> psycopg.Connection:
        from ..core.connection import connect

        with self._lock:
            conn = self._conns.get(name)
            if conn is not None and not conn.closed:
                return conn
        conn = connect(self.dsn, autocommit=True)
        with self._lock:
            self._conns[name] = conn
        return conn

    def run(self, name: str, fn: Callable[[psycopg.Connection], T]) -> T:
        """fn(conn) on this view's connection, with failures turned into our exceptions.

        A view's workers take turns: psycopg would interleave two threads' statements on
        one connection, so one worker's query ran inside another's transaction."""
        with self._lock:
            turn = self._turns.setdefault(name, threading.RLock())
        with turn:
            return self._run(name, fn)

    def _run(self, name: str, fn: Callable[[psycopg.Connection], T]) -> T:
        import psycopg

        from ..core.connection import first_line, redact
        from ..core.waits import READS, lock_timeout_error

        try:
            conn = self._get(name)
        except DatabaseUnreachable as exc:
            raise ConnectionLost(str(exc)) from None
        with self._lock:
            self._cancelled.discard(name)
        try:
            return fn(conn)
        except (psycopg.errors.QueryCanceled, StatementTimeout) as exc:
            with self._lock:
                by_user = name in self._cancelled
            if by_user:
                raise QueryCancelled("Query cancelled.") from None
            if isinstance(exc, StatementTimeout):
                raise
            raise StatementTimeout(READS.statement) from None
        except psycopg.errors.LockNotAvailable:  # outside a bounded(): name it here
            raise lock_timeout_error(conn, READS.lock) from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if conn.closed or conn.broken:
                self.discard(name)
                raise ConnectionLost(
                    f"Lost the database connection: {redact(first_line(exc), self.dsn)}.") from None
            raise

    def server_version(self) -> str:
        from ..core.catalog import server_version

        return self.run("app", server_version)

    def cancel(self, name: str) -> None:
        with self._lock:
            conn = self._conns.get(name)
            self._cancelled.add(name)
        if conn is not None and not conn.closed:
            try:
                conn.cancel_safe(timeout=3)
            except Exception:  # noqa: BLE001 - a failed cancel leaves the timeout to act
                pass

    def discard(self, name: str) -> None:
        with self._lock:
            conn = self._conns.pop(name, None)
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail
                pass

    def probe(self) -> str:
        """Open a fresh connection (used while reconnecting); returns the server version."""
        self.discard("app")
        return self.server_version()

    def close(self) -> None:
        for name in list(self._conns):
            self.discard(name)
