"""Queries on the console's bookkeeping tables: the run-time errors the triggers
recorded and the kill switch they share.

A badge with on_error skip records each failing statement in badge_console.error_log;
after sqlgen.MAX_ERRORS of them it pauses itself (a row in badge_console.paused with
auto true and the last error). `errors` shows and clears them; `resume` re-arms.
Rows come through psycopg row factories, by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from . import catalog
from .errors import OperationFailed
from .sqlgen import SCHEMA
from .topology import require_primary
from .waits import READS, bounded


@dataclass(frozen=True)
class Pause:
    code: str  # a badge code, or '*' for all
    auto: bool  # paused by the badge itself after too many failing statements
    at: str
    sqlstate: str | None = None  # the last error, when auto
    message: str | None = None


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def read_errors(conn: psycopg.Connection, code: str | None = None) -> dict[str, list[dict]]:
    """Recorded errors grouped per badge (then per SQLSTATE and message), newest first."""
    if not catalog.relation_exists(conn, SCHEMA, "error_log"):
        return {}
    where = sql.SQL(" WHERE code = {}").format(sql.Literal(code)) if code else sql.SQL("")
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.SQL(
            "SELECT code, sqlstate, message, count(*) AS count, min(at) AS first_at,"
            " max(at) AS last_at FROM {}{}"
            " GROUP BY code, sqlstate, message ORDER BY max(at) DESC").format(
            _table("error_log"), where)).fetchall()
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row.pop("code"), []).append(row | {
            "first_at": row["first_at"].isoformat(), "last_at": row["last_at"].isoformat()})
    return grouped


@dataclass(frozen=True)
class RecordedError:
    sqlstate: str
    message: str


def errors_recorded_here(conn: psycopg.Connection, code: str) -> list[RecordedError]:
    """The errors this badge's trigger recorded in the current transaction (xmin at or
    after ours: under REPEATABLE READ, only this transaction's rows), oldest first."""
    with conn.cursor(row_factory=class_row(RecordedError)) as cur:
        return cur.execute(sql.SQL(
            "SELECT sqlstate, message FROM {} WHERE code = %s AND age(xmin) <= 0"
            " ORDER BY id").format(_table("error_log")), (code,)).fetchall()


def read_pauses(conn: psycopg.Connection) -> dict[str, Pause]:
    """Every pause by code ('*' = all), operator's and automatic."""
    if not catalog.relation_exists(conn, SCHEMA, "paused"):
        return {}
    auto = catalog.column_exists(conn, SCHEMA, "paused", "auto")  # installed before auto-pause
    cols = "code, auto, paused_at AS at, sqlstate, message" if auto else \
        "code, false AS auto, paused_at AS at, NULL AS sqlstate, NULL AS message"
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.SQL("SELECT {} FROM {}").format(sql.SQL(cols),
                                                               _table("paused"))).fetchall()
    return {r["code"]: Pause(**(r | {"at": r["at"].isoformat()})) for r in rows}


def read_paused(conn: psycopg.Connection) -> set[str]:
    """Codes whose awarding is paused; '*' means all of them."""
    return set(read_pauses(conn))


def _require(conn, operation: str) -> None:
    """Writes below need the primary and an installed schema."""
    require_primary(conn, operation)
    if not catalog.relation_exists(conn, SCHEMA, "paused"):
        raise OperationFailed("Nothing is installed in this database; install badges first.")


def clear_errors(conn: psycopg.Connection, code: str | None = None) -> int:
    """Delete the recorded errors (of one badge, or all); returns how many."""
    _require(conn, "errors")
    where = sql.SQL(" WHERE code = {}").format(sql.Literal(code)) if code else sql.SQL("")
    with bounded(conn, READS, [f"{SCHEMA}.error_log"], mode="RowExclusiveLock"):
        return conn.execute(sql.SQL("DELETE FROM {}{}").format(
            _table("error_log"), where)).rowcount


def set_paused(conn: psycopg.Connection, code: str | None, paused: bool) -> None:
    """Kill switch read by every trigger: no DDL on application tables. code None = all.

    Resuming a badge that paused itself re-arms it: its recorded errors are cleared, so its
    next failures count towards a new auto-pause (an operator's pause keeps them).
    Resuming all lifts '*' and every automatic pause."""
    _require(conn, "pause" if paused else "resume")
    key = code or "*"
    with bounded(conn, READS, [f"{SCHEMA}.paused"], mode="RowExclusiveLock"):
        if paused:
            conn.execute(sql.SQL("INSERT INTO {} (code) VALUES (%s) ON CONFLICT DO NOTHING")
                         .format(_table("paused")), (key,))
            return
        pauses = read_pauses(conn)
        auto = [c for c, p in pauses.items() if p.auto and (code is None or c == code)]
        conn.execute(sql.SQL("DELETE FROM {} WHERE code = ANY(%s)").format(_table("paused")),
                     ([key, *auto],))
        conn.execute(sql.SQL("DELETE FROM {} WHERE code = ANY(%s)").format(_table("error_log")),
                     (auto,))
