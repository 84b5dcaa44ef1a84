"""Reading the database's catalog: tables, columns, keys, defaults, triggers, size
estimates, server facts. Every pg_* query of the engine is here; rows come through psycopg
row factories, named, never read by position.

Table names from badge.json are names, not SQL: `My Table` is that identifier. A name
with a dot is first looked up whole on the search_path, then as `schema.table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, partial

import psycopg
from psycopg import sql
from psycopg.rows import RowFactory, class_row, namedtuple_row, scalar_row


def _all(conn: psycopg.Connection, rows: RowFactory, query, params=None) -> list:
    with conn.cursor(row_factory=rows) as cur:
        return cur.execute(query, params).fetchall()


def _one(conn: psycopg.Connection, rows: RowFactory, query, params=None):
    """The first row (the value, for scalar_row), None when there is none."""
    with conn.cursor(row_factory=rows) as cur:
        return cur.execute(query, params).fetchone()


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
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       c.relispartition OR EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.oid)
         AS is_child
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
        found = _one(conn, class_row(TableRef), _RESOLVE, {"name": table, "schema": schema})
        if found:
            return found
    return None


def columns(conn: psycopg.Connection, table: TableRef) -> list[Column]:
    return _all(conn, class_row(Column),
                "SELECT attname AS name, format_type(atttypid, atttypmod) AS type,"
                " attnotnull AS not_null, atttypid::int AS type_oid"
                " FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum", (table.oid,))


@dataclass(frozen=True)
class ColumnDefault:
    column: str
    expression: str  # pg_get_expr of the default: SQL from the catalog, not from a user


def column_defaults(conn: psycopg.Connection, table: TableRef) -> list[ColumnDefault]:
    """Default expressions of the table's columns (generated columns excluded), in order."""
    return _all(conn, class_row(ColumnDefault),
                "SELECT a.attname AS column, pg_get_expr(d.adbin, d.adrelid) AS expression"
                " FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid"
                " AND a.attnum = d.adnum WHERE d.adrelid = %s AND NOT a.attisdropped"
                " AND a.attgenerated = '' ORDER BY a.attnum", (table.oid,))


def key_columns(conn: psycopg.Connection, table: TableRef) -> set[str]:
    """Columns a copy of a row must not carry: identity, generated, or defaulting to
    nextval() (the database gives a copy new values)."""
    return set(_all(conn, scalar_row,
                    "SELECT a.attname FROM pg_attribute a LEFT JOIN pg_attrdef d"
                    " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                    " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
                    " AND (a.attidentity <> '' OR a.attgenerated <> ''"
                    "      OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%')",
                    (table.oid,)))


def primary_key(conn: psycopg.Connection, table: TableRef) -> list[str]:
    return _all(conn, scalar_row,
                "SELECT a.attname FROM pg_index i"
                " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
                " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
                " WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.pos", (table.oid,))


def unique_keys(conn: psycopg.Connection, table: TableRef) -> list[tuple[str, ...]]:
    """Column sets of unique indexes (and the primary key) on a table."""
    return [tuple(key) for key in _all(
        conn, scalar_row,
        "SELECT array_agg(a.attname ORDER BY k.pos) FROM pg_index i"
        " JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = %s AND i.indisunique GROUP BY i.indexrelid", (table.oid,))]


def referenced_column(conn: psycopg.Connection, table: TableRef, column: str):
    """(schema, table, column, deferrable), a named tuple: what a one-column foreign key on
    `column` references; None without one."""
    return _one(conn, namedtuple_row,
                "SELECT n.nspname AS schema, c.relname AS table, a.attname AS column,"
                " k.condeferrable AS deferrable FROM pg_constraint k"
                " JOIN pg_attribute f ON f.attrelid = k.conrelid AND f.attnum = k.conkey[1]"
                " JOIN pg_class c ON c.oid = k.confrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = k.confkey[1]"
                " WHERE k.contype = 'f' AND k.conrelid = %s AND cardinality(k.conkey) = 1"
                " AND f.attname = %s ORDER BY k.conname LIMIT 1", (table.oid, column))


def relation_exists(conn: psycopg.Connection, schema: str, name: str) -> bool:
    """Whether schema.name is a table (or other relation): e.g. one of ours, before reading it."""
    return _one(conn, scalar_row, "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))",
                (schema, name)) is not None


def column_exists(conn: psycopg.Connection, schema: str, table: str, column: str) -> bool:
    return _one(conn, scalar_row,
                "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
                " to_regclass(format('%%I.%%I', %s::text, %s::text)) AND attname = %s"
                " AND NOT attisdropped)", (schema, table, column))


def castable(conn: psycopg.Connection, source: int, target: int) -> bool:
    """Whether a value of type oid `source` is stored in a column of type oid `target`
    by an implicit or assignment cast."""
    return _one(conn, scalar_row,
                "SELECT EXISTS (SELECT 1 FROM pg_cast WHERE castsource = %s"
                " AND casttarget = %s AND castcontext IN ('a', 'i'))", (source, target))


class SchemaFacts:
    """The catalog reads of checking many badges, each made once: a badge file has
    thousands of badges on a handful of tables, and one round trip per badge and fact
    was most of what validating it cost. Valid for one transaction (one snapshot)."""

    def __init__(self, conn: psycopg.Connection):
        self.table = cache(partial(resolve_table, conn))
        self.columns = cache(partial(columns, conn))
        self.primary_key = cache(partial(primary_key, conn))
        self.castable = cache(partial(castable, conn))


def language_usable(conn: psycopg.Connection, name: str) -> bool:
    """Whether the language exists and the current role may use it (DO blocks)."""
    return _one(conn, scalar_row,
                "SELECT EXISTS (SELECT 1 FROM pg_language WHERE lanname = %s"
                " AND has_language_privilege(oid, 'USAGE'))", (name,))


def function_traits(conn: psycopg.Connection, names) -> tuple[set[str], set[str], set[str]]:
    """Of these function names: those with a volatile definition in the database, those
    with an aggregate, window or set-returning one (none may stand in a WHERE), and those
    defined outside pg_catalog (user-written: they may read other rows)."""
    if not names:
        return set(), set(), set()
    found = _all(conn, namedtuple_row,
                 "SELECT proname AS name, bool_or(provolatile = 'v') AS volatile,"
                 " bool_or(prokind IN ('a', 'w') OR proretset) AS whole,"
                 " bool_or(pronamespace <> 'pg_catalog'::regnamespace) AS user_written"
                 " FROM pg_proc WHERE proname = ANY(%s) GROUP BY proname", (sorted(names),))
    return ({f.name for f in found if f.volatile}, {f.name for f in found if f.whole},
            {f.name for f in found if f.user_written})


def search_path(conn: psycopg.Connection) -> list[str]:
    return list(_one(conn, scalar_row, "SELECT current_schemas(false)::text[]"))


def setting(conn: psycopg.Connection, name: str) -> str:
    """A run-time setting as SHOW gives it (e.g. the lock_timeout in force)."""
    return _one(conn, scalar_row, sql.SQL("SHOW {}").format(sql.Identifier(name)))


def server_version(conn: psycopg.Connection) -> str:
    return setting(conn, "server_version").split()[0]


@dataclass(frozen=True)
class SizeEstimate:
    rows: int  # pg_class.reltuples: -1 (or 0) before the first VACUUM or ANALYZE
    pages: int  # the relation's size in blocks


def size_estimate(conn: psycopg.Connection, table: TableRef) -> SizeEstimate:
    return _one(conn, class_row(SizeEstimate),
                "SELECT reltuples::bigint AS rows, pg_relation_size(oid)"
                " / current_setting('block_size')::bigint AS pages FROM pg_class"
                " WHERE oid = %s", (table.oid,))


def estimated_rows(conn: psycopg.Connection, schema: str, name: str) -> int | None:
    """The planner's row estimate of schema.name (None when there is no such relation)."""
    return _one(conn, scalar_row,
                "SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                (schema, name))


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
    return _all(conn, class_row(TriggerInfo),
                "SELECT n.nspname AS schema, c.relname AS table, t.tgname AS name,"
                " pn.nspname AS function_schema, p.proname AS function,"
                " t.tgenabled <> 'D' AS enabled"
                " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_proc p ON p.oid = t.tgfoid"
                " JOIN pg_namespace pn ON pn.oid = p.pronamespace"
                " WHERE NOT t.tgisinternal ORDER BY 1, 2, 3")


def trigger_exists(conn: psycopg.Connection, table: TableRef, name: str) -> bool:
    return _one(conn, scalar_row, "SELECT 1 FROM pg_trigger WHERE tgrelid = %s AND tgname = %s",
                (table.oid, name)) is not None


def leads_an_index(conn: psycopg.Connection, table: TableRef, column: str) -> bool:
    """Whether a valid index of the table has `column` as its first key: walking the table
    in that column's order (backfill per user) is then an index range scan, not a sort."""
    return _one(conn, scalar_row,
                "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
                " WHERE i.indrelid = %s AND i.indisvalid AND a.attname = %s)",
                (table.oid, column))
