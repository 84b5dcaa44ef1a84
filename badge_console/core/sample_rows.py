"""The rows a dry run works on: a WHERE filter's rows, or rows typed by hand as JSON.

Also what every dry-run statement shares: the timeouts it runs under and the facts its
errors become (errors.StatementFailure). Hand-typed rows get the column defaults
PostgreSQL would fill in, except key columns (identity, generated, nextval defaults):
they stay NULL, and fire mode inserts copies without them so that defaults and
sequences give new keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import class_row, scalar_row

from . import catalog
from .errors import (FilterRejected, SampleError, SampleInput, SampleNotJson,
                     SampleShapeInvalid, StatementFailure, StatementRefused,
                     UnknownSampleColumns, primary_message)
from .sqlgen import Target

DEFAULT_LIMIT = 20
MAX_LIMIT = 1000


@dataclass
class Sample:
    where: str | None = None  # WHERE filter on the trigger table
    limit: int = DEFAULT_LIMIT
    rows: list[dict] | None = None  # typed by hand: column -> value
    changes: dict | None = None  # update badges: NEW is the row with these changes


def parse_json_rows(text: str) -> list[dict]:
    """Rows typed by hand: one JSON object or a list of them."""
    doc = _json(text, "rows")
    rows = [doc] if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise SampleShapeInvalid("rows")
    return rows


def parse_json_changes(text: str) -> dict:
    doc = _json(text, "changes")
    if not isinstance(doc, dict):
        raise SampleShapeInvalid("changes")
    return doc


def _json(text: str, what: SampleInput):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SampleNotJson(what, exc.msg, exc.lineno, exc.colno) from None


@dataclass
class SampleRow:
    text: str  # the sample row as jsonb text (OLD for update/delete, NEW for insert)
    ctid: str | None = None
    tableoid: int | None = None
    typed: tuple = ()  # hand-typed rows: the columns the operator gave


def statement_failure(exc: psycopg.Error, timeout: str = "") -> StatementFailure:
    """What a failed dry-run statement ran into; `timeout` is the statement_timeout."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return StatementFailure("timeout", primary_message(exc), timeout)
    if isinstance(exc, psycopg.errors.ReadOnlySqlTransaction):
        return StatementFailure("write", primary_message(exc))
    if isinstance(exc, psycopg.errors.LockNotAvailable):
        return StatementFailure("lock", primary_message(exc))
    return StatementFailure("other", primary_message(exc))


def raw_sql(text: str) -> sql.SQL:
    """SQL text taken from a checked parse tree, with % doubled for psycopg's placeholders."""
    return sql.SQL(text.replace("%", "%%"))


def set_timeouts(conn, lock_timeout: str, statement_timeout: str) -> None:
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true),"
                         " set_config('statement_timeout', %s, true)",
                         (lock_timeout, statement_timeout))
    except psycopg.Error as exc:
        raise SampleError(f"Invalid timeout: {primary_message(exc)}.") from None


def check_columns(conn, target: Target, rows: list[dict], what: SampleInput) -> None:
    cols = {c.name for c in catalog.columns(conn, target.table)}
    for i, row in enumerate(rows, 1):
        unknown = [k for k in row if k not in cols]
        if unknown:
            raise UnknownSampleColumns(what, i if what == "rows" else None, unknown,
                                       target.table.display)


def _typed_rows(conn, target: Target, rows: list[dict], skip: set[str]) -> list[SampleRow]:
    """Hand-typed rows with the column defaults PostgreSQL would fill in (keys stay NULL)."""
    check_columns(conn, target, rows, "rows")
    defaults = [d for d in catalog.column_defaults(conn, target.table) if d.column not in skip]
    out = []
    for row in rows:
        text, missing = json.dumps(row), [d for d in defaults if d.column not in row]
        if missing:  # default expressions come from the catalog, not from the operator
            pairs = sql.SQL(", ").join(sql.SQL("%s::text, ({})").format(raw_sql(d.expression))
                                       for d in missing)
            try:
                with conn.transaction(), conn.cursor(row_factory=scalar_row) as cur:
                    text = cur.execute(sql.SQL(
                        "SELECT (jsonb_build_object({}) || %s::jsonb)::text").format(pairs),
                        [d.column for d in missing] + [text]).fetchone()
            except psycopg.Error:  # a default that writes cannot run read-only: keep NULL
                pass
        out.append(SampleRow(text, typed=tuple(row)))
    return out


def pick_sample(conn, target: Target, sample: Sample, where: str | None,
                 skip: set[str]) -> list[SampleRow]:
    if sample.rows is not None:
        return _typed_rows(conn, target, sample.rows, skip)
    t = sql.Identifier(*target.table.parts)
    query = sql.SQL("SELECT ctid::text AS ctid, tableoid::int AS tableoid,"
                    " to_jsonb({}.*)::text AS text FROM {}").format(t, t)
    if where:
        query += sql.SQL(" WHERE ({})").format(raw_sql(where))
    if target.primary_key:  # qualified: a key column named like an output column
        query += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(
            sql.Identifier(*target.table.parts, c) for c in target.primary_key))
    query += sql.SQL(" LIMIT {}").format(sql.Literal(sample.limit))
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(SampleRow)) as cur:
            return cur.execute(query).fetchall()
    except psycopg.Error as exc:
        if where and not isinstance(exc, psycopg.errors.QueryCanceled):
            raise FilterRejected(statement_failure(exc)) from None
        raise StatementRefused("Reading sample rows failed", statement_failure(exc)) from None
