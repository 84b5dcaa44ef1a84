"""Fire mode of a dry run: the generated trigger is installed as `install` would (schema,
award table, function, trigger) inside a REPEATABLE READ transaction, the sample write is
applied, the awards that transaction wrote are read, and everything is rolled back.
Decisions:
- Double firing: the installed trigger of this badge's table (which decides this badge
  and the table's others), or a django-pg-badges one, is switched off with ALTER TABLE ... DISABLE TRIGGER inside the rolled-back
  transaction: SHARE ROW EXCLUSIVE, the lock CREATE TRIGGER takes anyway, so readers are
  never blocked. DROP TRIGGER would take ACCESS EXCLUSIVE; session_replication_role
  needs superuser and would also switch off foreign-key checks. The dry-run trigger then
  gets the installed name plus `_dry`.
- Key collisions: copies are inserted without identity, serial (nextval default) and
  generated columns, so defaults and sequences give them new keys; other unique columns
  (a username) can still collide, which is reported as the write's error.
- Deferred constraints are checked (SET CONSTRAINTS ALL IMMEDIATE) before rolling back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import groupby

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row

from . import catalog
from .bookkeeping import errors_recorded_here, read_paused
from .definitions import BadgeFile
from .errors import StatementFailure, StatementRefused
from .install import legacy_trigger_names
from .resolve import Resolution
from .sample_rows import SampleRow, set_timeouts, statement_failure
from .installed import live_functions
from .sqlgen import SCHEMA, Target
from .sqlgen_setup import award_table_ddl, schema_ddl
from .sqlgen_table import TableUnit, create_unit_trigger_ddl, unit_function_ddl
from .topology import require_primary


@dataclass
class FireResult:
    written: int = 0
    awarded: list[dict] = field(default_factory=list)  # user_id, name, code
    trigger_errors: list[str] = field(default_factory=list)  # recorded by on_error skip
    error: StatementFailure | None = None  # the write itself failed
    disabled: list[str] = field(default_factory=list)  # installed triggers switched off


@dataclass(frozen=True)
class RowKey:
    """Where a row is: its ctid within the table (partition) its tableoid names."""

    ctid: str
    tableoid: int


def _insert(conn, target: Target, rows: list[SampleRow], skip: set[str]) -> list[RowKey]:
    """Insert copies (hand-typed rows with the columns typed); where each one went."""
    t = sql.Identifier(*target.table.parts)
    order = [c.name for c in catalog.columns(conn, target.table) if c.name not in skip]
    made: list[RowKey] = []
    with conn.cursor(row_factory=class_row(RowKey)) as cur:
        for typed, group in groupby(rows, key=lambda r: r.typed):
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in order
                                      if c in typed or not typed)
            texts = "[" + ",".join(r.text for r in group) + "]"
            made += cur.execute(sql.SQL(
                "INSERT INTO {t} ({c}) SELECT {c} FROM jsonb_populate_recordset(NULL::{t},"
                " %s::jsonb) RETURNING ctid::text AS ctid, tableoid::int AS tableoid").format(
                t=t, c=cols), (texts,)).fetchall()
    return made


def _write(conn, target: Target, op: str, rows: list[SampleRow], changes: str,
           skip: set[str]) -> int:
    t = sql.Identifier(*target.table.parts)
    if op == "insert":
        return len(_insert(conn, target, rows, skip))
    keys = [RowKey(r.ctid, r.tableoid) for r in rows if r.ctid] \
        or _insert(conn, target, rows, skip)
    match = sql.SQL("x.ctid = ANY(%(tids)s::tid[]) AND (x.tableoid, x.ctid) IN"
                    " (SELECT * FROM unnest(%(oids)s::oid[], %(tids)s::tid[]))")
    params = {"tids": [k.ctid for k in keys], "oids": [k.tableoid for k in keys],
              "set": changes}
    if op == "delete":
        return conn.execute(sql.SQL("DELETE FROM {} AS x WHERE ").format(t) + match,
                            params).rowcount
    changed = list(json.loads(changes))
    if changed:
        query = sql.SQL("UPDATE {t} AS x SET {sets} FROM jsonb_populate_record(NULL::{t},"
                        " %(set)s::jsonb) AS s WHERE ").format(
            t=t, sets=sql.SQL(", ").join(sql.SQL("{c} = s.{c}").format(c=sql.Identifier(c))
                                         for c in changed))
    else:  # touch the rows: SET user_field = itself
        query = sql.SQL("UPDATE {t} AS x SET {c} = x.{c} WHERE ").format(
            t=t, c=sql.Identifier(target.badge.user_field))
    return conn.execute(query + match, params).rowcount


def _disable_installed(conn, target: Target) -> list[str]:
    """Switch off the installed triggers deciding this badge on the table (or its legacy
    ones), in this transaction."""
    b, table = target.badge, target.table
    ours = {f.name for f in live_functions(conn).values() if b.code in f.codes}
    found = [t.name for t in catalog.table_triggers(conn)
             if (t.schema, t.table) == table.parts and t.enabled
             and ((t.function_schema == SCHEMA and t.function in ours)
                  or (t.function_schema != SCHEMA and t.name in legacy_trigger_names(b)))]
    for name in found:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
            sql.Identifier(*table.parts), sql.Identifier(name)))
    return found


def _install_for_test(conn, target: Target, op: str, res: Resolution, channel: str) -> list[str]:
    for stmt in schema_ddl():
        conn.execute(stmt)
    if not res.award_exists:
        conn.execute(award_table_ddl(res.award, res.user_type))
    disabled = _disable_installed(conn, target)
    unit = TableUnit(target.table, op, (target,))  # this badge alone, as install makes it
    name = unit.trigger
    if catalog.trigger_exists(conn, target.table, name):  # the installed one, now disabled
        name = f"{name}_dry"
    function = dry_function_name(unit)  # the installed function stays as it is
    for stmt in unit_function_ddl(unit, res.award, channel, res.search_path, function)[0][:1]:
        conn.execute(stmt)
    conn.execute(create_unit_trigger_ddl(unit, name, function))
    return disabled


def dry_function_name(unit: TableUnit) -> str:
    """The rolled-back copy's function name: never the installed one's, never read as ours
    (no COMMENT, no `code__op` form)."""
    return f"dry~{unit.function}".encode()[:63].decode(errors="ignore")


def fire(conn, target: Target, op: str, res: Resolution, bf: BadgeFile, rows: list[SampleRow],
          changes: str, skip: set[str], lock_timeout: str, statement_timeout: str,
          notes: list[str]) -> FireResult:
    require_primary(conn, "a fire-mode dry run")
    b, fired = target.badge, FireResult()
    channel = bf.settings.channel
    try:
        with conn.transaction():
            # REPEATABLE READ: every award row this snapshot sees with an xmin at or after
            # our own transaction id (age <= 0) was written by this transaction.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            set_timeouts(conn, lock_timeout, statement_timeout)
            fired.disabled = _install_for_test(conn, target, op, res, channel)
            if read_paused(conn) & {b.code, "*"}:
                notes.append("The badge is paused: its trigger ran and awarded nothing.")
            try:
                with conn.transaction():
                    fired.written = _write(conn, target, op, rows, changes, skip)
                    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            except psycopg.Error as exc:
                fired.error = statement_failure(exc, statement_timeout)
            with conn.cursor(row_factory=dict_row) as cur:  # the awards this wrote
                fired.awarded = cur.execute(sql.SQL(
                    "SELECT user_id::text AS user_id, name, code FROM {}"
                    " WHERE code = %s AND age(xmin) <= 0 ORDER BY id").format(res.award.ident),
                    (b.code,)).fetchall()
            fired.trigger_errors = [f"{e.sqlstate}: {e.message}"
                                    for e in errors_recorded_here(conn, b.code)]
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        raise StatementRefused("Fire mode could not install the trigger for the test, nothing "
                               "was changed", statement_failure(exc, statement_timeout)) from None
    notes.append(f"Fire mode took a brief SHARE ROW EXCLUSIVE lock on {target.table.display} "
                 f"(writers waited; lock_timeout {lock_timeout}).")
    if fired.disabled:
        notes.append("The installed trigger(s) " + ", ".join(fired.disabled) + " were disabled "
                     "inside the rolled-back transaction so the badge did not fire twice.")
    if op == "insert" or not rows[0].ctid:
        cols = ", ".join(sorted(skip)) or "none"
        notes.append(f"Rows were inserted as copies without key columns ({cols}): defaults "
                     "and sequences gave them new keys.")
    notes.append("Sequence values consumed by the test (new row ids, award ids) are not "
                 "returned: PostgreSQL cannot roll sequences back.")
    if fired.written < len(rows) and not fired.error:
        notes.append(f"Only {fired.written} of {len(rows)} row(s) were written: the others "
                     "changed since they were sampled.")
    return fired
