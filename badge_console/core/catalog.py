"""Reading the database's catalog: tables, columns, keys, triggers, server facts.

Table names from badge.json are names, not SQL: `My Table` is that identifier. A name
with a dot is first looked up whole on the search_path, then as `schema.table`.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class TableRef:
    schema: str
    name: str
    oid: int
    kind: str = "r"  # pg_class.relkind
    is_child: bool = False  # partition or inheritance child: no transition tables

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def parts(self) -> tuple[str, str]:
        return (self.schema, self.name)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool
    type_oid: int


_RESOLVE = """
SELECT c.oid, n.nspname, c.relname, c.relkind,
       c.relispartition OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND c.relname = %(name)s
  AND (CASE WHEN %(schema)s::text IS NULL
            THEN n.nspname = ANY (current_schemas(false))
            ELSE n.nspname = %(schema)s END)
ORDER BY array_position(current_schemas(false), n.nspname::name)
LIMIT 1
"""


def resolve_table(conn: psycopg.Connection, name: str) -> TableRef | None:
    candidates = [(None, name)]
    if "." in name:
        schema, _, table = name.partition(".")
        candidates.append((schema, table))
    for schema, table in candidates:
        row = conn.execute(_RESOLVE, {"name": table, "schema": schema}).fetchone()
        if row:
            return TableRef(schema=row[1], name=row[2], oid=row[0], kind=row[3],
                            is_child=bool(row[4]))
    return None


def columns(conn: psycopg.Connection, table: TableRef) -> list[Column]:
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull, atttypid::int"
        " FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped"
        " ORDER BY attnum", (table.oid,)).fetchall()
    return [Column(*row) for row in rows]


def primary_key(conn: psycopg.Connection, table: TableRef) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.pos", (table.oid,)).fetchall()
    return [r[0] for r in rows]


def unique_keys(conn: psycopg.Connection, table: TableRef) -> list[tuple[str, ...]]:
    """Column sets of unique indexes (and the primary key) on a table."""
    rows = conn.execute(
        "SELECT array_agg(a.attname ORDER BY k.pos) FROM pg_index i"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = %s AND i.indisunique GROUP BY i.indexrelid",
        (table.oid,)).fetchall()
    return [tuple(r[0]) for r in rows]


def referenced_column(conn: psycopg.Connection, table: TableRef, column: str):
    """(schema, table, column, deferrable) a one-column foreign key on `column` references."""
    return conn.execute(
        "SELECT n.nspname, c.relname, a.attname, k.condeferrable FROM pg_constraint k"
        " JOIN pg_attribute f ON f.attrelid = k.conrelid AND f.attnum = k.conkey[1]"
        " JOIN pg_class c ON c.oid = k.confrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = k.confkey[1]"
        " WHERE k.contype = 'f' AND k.conrelid = %s AND cardinality(k.conkey) = 1"
        " AND f.attname = %s ORDER BY k.conname LIMIT 1", (table.oid, column)).fetchone()


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    """Whether schema.name is a table (or other relation): e.g. one of ours, before reading it."""
    return conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))",
                        (schema, name)).fetchone()[0] is not None


def column_exists(conn: psycopg.Connection, schema: str, table: str, column: str) -> bool:
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
        " to_regclass(format('%%I.%%I', %s::text, %s::text)) AND attname = %s"
        " AND NOT attisdropped)", (schema, table, column)).fetchone()[0]


def function_traits(conn: psycopg.Connection, names) -> tuple[set[str], set[str], set[str]]:
    """Of these function names: those with a volatile definition in the database, those
    with an aggregate, window or set-returning one (none may stand in a WHERE), and those
    defined outside pg_catalog (user-written: they may read other rows)."""
    if not names:
        return set(), set(), set()
    rows = conn.execute(
        "SELECT proname, bool_or(provolatile = 'v'), bool_or(prokind IN ('a', 'w') OR proretset),"
        " bool_or(pronamespace <> 'pg_catalog'::regnamespace)"
        " FROM pg_proc WHERE proname = ANY(%s) GROUP BY proname", (sorted(names),)).fetchall()
    return ({n for n, volatile, _, _ in rows if volatile},
            {n for n, _, whole, _ in rows if whole}, {n for n, _, _, own in rows if own})


def search_path(conn: psycopg.Connection) -> list[str]:
    return list(conn.execute("SELECT current_schemas(false)::text[]").fetchone()[0])


def server_version(conn: psycopg.Connection) -> str:
    return conn.execute("SHOW server_version").fetchone()[0].split()[0]


@dataclass(frozen=True)
class TriggerInfo:
    schema: str
    table: str
    name: str
    function_schema: str
    function: str
    enabled: bool


def table_triggers(conn: psycopg.Connection) -> list[TriggerInfo]:
    """Every non-internal trigger in the database, with the function it calls."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname, t.tgname, pn.nspname, p.proname, t.tgenabled <> 'D'"
        " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace pn ON pn.oid = p.pronamespace"
        " WHERE NOT t.tgisinternal ORDER BY 1, 2, 3").fetchall()
    return [TriggerInfo(*r) for r in rows]

