"""Advice for the plan: a condition that would read a whole table on every write.

A badge's trigger runs its condition for each changed user. When that condition filters
another table (or the trigger table itself) on a column no index leads with, every
write of the application pays a sequential scan of that table. We EXPLAIN the condition
for one row of the trigger table, find the Seq Scans with a filter, and name the index
that would turn them into lookups. EXPLAIN only plans: nothing runs, nothing is written,
and the transaction is rolled back.
"""

from __future__ import annotations

import re

import psycopg
from psycopg import sql

from .sqlgen import Target

EXPLAIN_TIMEOUT = "5s"
SOURCE_ALIAS = "badge_console_row"  # the one sample row NEW/OLD come from: never advised on

_COLUMN = r'(?:"((?:[^"]|"")+)"|([A-Za-z_][A-Za-z0-9_$]*))'

_INDEXED_LEADS = """
SELECT DISTINCT a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE n.nspname = %s AND c.relname = %s AND i.indisvalid
"""


def _sample_from(target: Target, op: str) -> sql.Composed:
    """FROM items giving the condition's NEW/OLD one row of the trigger table."""
    row = sql.SQL("(SELECT * FROM {t} AS {s} LIMIT 1)").format(
        t=sql.Identifier(*target.table.parts), s=sql.Identifier(SOURCE_ALIAS))
    aliases = ["old"] if op == "delete" else ["new"]
    if target.needs_old_and_new(op):
        aliases.append("old")
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(row, sql.Identifier(a)) for a in aliases)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _filter_columns(node: dict) -> list[str]:
    """Columns of the scanned table the filter reads; those compared by = first."""
    text = node.get("Filter", "")
    alias = node.get("Alias") or node.get("Relation Name", "")
    quoted = re.escape(alias) if re.fullmatch(r"[a-z_][a-z0-9_$]*", alias) else \
        re.escape('"' + alias.replace('"', '""') + '"')
    pattern = re.compile(rf"(?<![\w\"]){quoted}\.{_COLUMN}")
    found, equal = [], []
    for m in pattern.finditer(text):
        name = m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
        if name not in found:
            found.append(name)
        before, after = text[:m.start()].rstrip(), text[m.end():].lstrip()
        if (before.endswith("=") and not before.endswith(("<=", ">=", "!="))) or (
                after.startswith("=") and not after.startswith("=>")):
            if name not in equal:
                equal.append(name)
    return equal or found


def _plan(conn, query) -> dict | None:
    """EXPLAIN's plan tree, or None when PostgreSQL rejects the query (validation says why)."""
    try:
        with conn.transaction():
            row = conn.execute(sql.SQL("EXPLAIN (VERBOSE, FORMAT JSON) {}").format(
                query)).fetchone()
    except psycopg.Error:
        return None
    return row[0][0]["Plan"] if row and row[0] else None


def index_advice(conn: psycopg.Connection, target: Target) -> list[str]:
    """Warnings, one per table the condition would scan on each write, naming the index.

    Empty when every table the condition reads is reached through an index, or when
    the condition reads no table. Runs in a transaction (a savepoint inside the
    caller's) that is always rolled back, with a statement timeout."""
    warnings: list[str] = []
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
            sql.Literal(EXPLAIN_TIMEOUT)))
        for op in target.badge.operations:
            warnings += [w for w in _advise(conn, target, op) if w not in warnings]
        raise psycopg.Rollback()
    return warnings


def _advise(conn: psycopg.Connection, target: Target, op: str) -> list[str]:
    query = sql.SQL("SELECT ({cond}) FROM {src}").format(
        cond=sql.SQL(target.info.select_sql), src=_sample_from(target, op))
    plan = _plan(conn, query)
    found: list[str] = []
    for node in _nodes(plan) if plan else ():
        if not node.get("Node Type", "").endswith("Seq Scan") or not node.get("Filter"):
            continue
        if node.get("Alias") == SOURCE_ALIAS or "Relation Name" not in node:
            continue
        schema, table = node.get("Schema", ""), node["Relation Name"]
        cols = _filter_columns(node)
        leads = {r[0] for r in conn.execute(_INDEXED_LEADS, (schema, table))}
        if not cols or leads & set(cols):
            continue  # an index exists: the planner only prefers a scan while it is small
        ident = sql.Identifier(schema, table)
        index = sql.SQL("CREATE INDEX ON {} ({})").format(
            ident, sql.SQL(", ").join(map(sql.Identifier, cols))).as_string(conn)
        found.append(
            f"badge {target.badge.code}: the condition scans all of {ident.as_string(conn)}"
            f" on each {op} (filter on {', '.join(cols)}); an index would make it a lookup:"
            f" {index}")
    return found
