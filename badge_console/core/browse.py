"""Browsing a database: the schema/table tree, columns, and rows a page at a time.

Pages are fetched by keyset on the primary key (or ctid for tables without one, OFFSET
only for views), never by loading a table: first/next/previous/last each read one page
through an index or a TID range. A sort column joins the key (`ORDER BY col, key`), with
NULLs handled so paging stays exact. A user's WHERE text is parsed with pglast, must be
one expression, is re-printed from the parse tree, and runs in a READ ONLY transaction
with a statement timeout. Every identifier goes through psycopg.sql.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import sql

from . import catalog
from .errors import BadgeConsoleError, FilterError, StatementTimeout
from .sqlgen import TRIGGER_PREFIX
from .waits import READS, Timeouts, bound, bounded

PAGE_SIZE = 100
BROWSE_TIMEOUT = "10s"
CELL_LIMIT = 200  # characters kept of one cell's text


@dataclass(frozen=True)
class TableEntry:
    schema: str
    name: str
    kind: str  # r table, p partitioned, v view, m materialized view, f foreign
    estimate: int | None  # pg_class.reltuples; None when never analysed
    badge_triggers: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


_TREE = """
SELECT n.nspname, c.relname, c.relkind,
       CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END,
       coalesce(array_agg(t.tgname ORDER BY t.tgname)
                FILTER (WHERE t.tgname IS NOT NULL), '{}')
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
     AND (t.tgname LIKE %(prefix)s OR t.tgname LIKE 'badge\\_%%')
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'
  AND has_schema_privilege(n.oid, 'USAGE')
GROUP BY n.nspname, c.relname, c.relkind, c.reltuples
ORDER BY n.nspname = ANY (current_schemas(false)) DESC, n.nspname, c.relname
"""


def list_tables(conn: psycopg.Connection) -> list[TableEntry]:
    """Every user-visible table and view, with estimated rows and badge triggers."""
    with bounded(conn, READS, read_only=True):
        rows = conn.execute(_TREE, {"prefix": TRIGGER_PREFIX.replace("_", "\\_") + "%"}
                            ).fetchall()
    return [TableEntry(r[0], r[1], r[2], r[3], tuple(r[4])) for r in rows]


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    not_null: bool
    in_key: bool


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    kind: str
    columns: tuple[ColumnInfo, ...]
    key: tuple[str, ...]  # primary key columns; empty when paging by ctid/offset
    paging: str  # "key", "ctid" or "offset"
    estimate: int | None

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


_DESCRIBE = """
SELECT c.oid, c.relkind, CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""


def describe(conn: psycopg.Connection, schema: str, name: str) -> TableInfo:
    with bounded(conn, READS, [f"{schema}.{name}"], read_only=True):
        return _describe(conn, schema, name)


def _describe(conn: psycopg.Connection, schema: str, name: str) -> TableInfo:
    row = conn.execute(_DESCRIBE, (schema, name)).fetchone()
    if row is None:
        raise BadgeConsoleError(f"Table {schema}.{name} no longer exists.")
    oid, kind, estimate = row
    ref = catalog.TableRef(schema, name, oid, kind)
    key = catalog.primary_key(conn, ref)
    cols = [(c.name, c.type, c.not_null) for c in catalog.columns(conn, ref)]
    paging = "key" if key else ("ctid" if kind in ("r", "m") else "offset")
    if estimate is None:
        estimate = _explain_rows(conn, sql.SQL("SELECT 1 FROM {}").format(
            sql.Identifier(schema, name)))
    return TableInfo(schema, name, kind,
                     tuple(ColumnInfo(n, t, nn or n in key, n in key) for n, t, nn in cols),
                     tuple(key), paging, estimate)


def _explain_rows(conn, query: sql.Composable) -> int | None:
    try:
        with conn.transaction():
            plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON) {}").format(query)).fetchone()[0]
    except psycopg.Error:
        return None
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def table_choices(conn: psycopg.Connection) -> dict[str, list[tuple[str, str]]]:
    """Tables a badge may trigger on, as badge.json would name them, with their columns.

    A table first on the search_path is named bare (`dummy_sketch`), others qualified.
    """
    with bounded(conn, READS, read_only=True):
        rows = _choices(conn)
    choices: dict[str, list[tuple[str, str]]] = {}
    bare_taken: dict[str, str] = {}
    for schema, table, column, type_, position in rows:
        bare = position < 1000 and bare_taken.setdefault(table, schema) == schema
        choices.setdefault(table if bare else f"{schema}.{table}", []).append((column, type_))
    return choices


def _choices(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
        " coalesce(array_position(current_schemas(false), n.nspname::name), 1000)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
        " WHERE c.relkind IN ('r', 'p', 'f') AND n.nspname NOT IN"
        " ('pg_catalog', 'information_schema', 'pg_toast', 'badge_console')"
        " AND n.nspname NOT LIKE 'pg\\_%%' ORDER BY 5, 1, 2, a.attnum").fetchall()


def badges_using(bf, table: TableInfo, search_path: list[str]) -> list[str]:
    """Codes of badges in a BadgeFile whose trigger_table names this table."""
    names = {table.display}
    if table.schema in search_path:
        names.add(table.name)
    return [b.code for _, b in bf.each_badge() if isinstance(b.trigger_table, str)
            and b.trigger_table in names and isinstance(b.code, str)]


# --- the WHERE filter ------------------------------------------------------------------

def check_filter(text: str) -> str | None:
    """The filter re-printed from its parse tree, or None for an empty filter.

    Raises FilterError (one line) unless `text` is exactly one SQL expression.
    """
    from pglast import ast, parse_sql
    from pglast.parser import ParseError
    from pglast.stream import RawStream

    text = (text or "").strip()
    if not text:
        return None
    try:
        stmts = parse_sql(f"SELECT 1 WHERE {text}")
    except ParseError as exc:
        raise FilterError(f"Not a valid WHERE expression: {exc.args[0]}.") from None
    if len(stmts) != 1:
        raise FilterError("The filter must be one expression, not several statements.")
    select = stmts[0].stmt
    extra = ("fromClause", "groupClause", "havingClause", "sortClause", "limitCount",
             "limitOffset", "windowClause", "distinctClause", "withClause", "lockingClause",
             "intoClause", "valuesLists")
    if not isinstance(select, ast.SelectStmt) or select.op.value != 0 \
            or select.whereClause is None or any(getattr(select, k, None) for k in extra):
        raise FilterError("The filter must be one expression (what follows WHERE), "
                          "without ORDER BY, LIMIT, UNION or other clauses.")
    return RawStream()(select.whereClause)


# --- paging ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Order:
    """The order pages are read in: an optional sort column, then the table's key."""

    sort: str | None = None
    descending: bool = False


@dataclass
class Page:
    columns: list[str]
    rows: list[tuple[str, ...]]  # display text of each cell
    first_key: tuple | None  # key values of the first and last row (keyset bounds)
    last_key: tuple | None
    start: int  # 0-based position of the first row; counted from the end when from_end
    from_end: bool = False
    at_start: bool = False
    at_end: bool = False
    estimate: int | None = None  # estimated rows matching (whole table or filter)
    offset: int = 0  # for offset paging

    @property
    def range_text(self) -> str:
        n = len(self.rows)
        if not self.rows:
            return "no rows" + (f" (of ~{self.estimate:,})" if self.estimate else "")
        if self.at_start and self.at_end:
            return f"rows 1–{n:,} of {n:,}"
        if not self.from_end or self.at_start:
            if self.at_end:
                return f"rows {self.start + 1:,}–{self.start + n:,} of {self.start + n:,}"
            total = max(self.estimate or 0, self.start + n + 1)
            return f"rows {self.start + 1:,}–{self.start + n:,} of ~{total:,}"
        total = max(self.estimate or 0, self.start + n)
        last = total - self.start
        return f"rows ~{last - n + 1:,}–{last:,} of ~{total:,}"


@dataclass
class Browser:
    """Where we are in one table: order, filter, page size. Methods take a connection."""

    table: TableInfo
    order: Order = field(default_factory=Order)
    where: str | None = None  # already checked by check_filter
    page_size: int = PAGE_SIZE
    timeout: str = BROWSE_TIMEOUT

    # keys: list of (expression, nullable) in ORDER BY order
    def _keys(self) -> list[tuple[sql.Composable, bool]]:
        keys: list[tuple[sql.Composable, bool]] = []
        if self.order.sort:
            col = self.table.column(self.order.sort)
            ident = sql.Identifier(self.order.sort)
            nullable = col is None or not col.not_null
            if nullable:
                keys.append((sql.SQL("({} IS NULL)").format(ident), False))
            keys.append((ident, nullable))
        if self.table.paging == "key":
            keys += [(sql.Identifier(k), False) for k in self.table.key
                     if k != self.order.sort]
        elif self.table.paging == "ctid":
            keys.append((sql.SQL("ctid"), False))
        return keys

    def set_filter(self, text: str) -> None:
        self.where = check_filter(text)

    def _source(self) -> sql.Composable:
        return sql.Identifier(self.table.schema, self.table.name)

    def _select(self, after: tuple | None, backwards: bool, limit: int,
                offset: int = 0) -> tuple[sql.Composable, list]:
        keys = self._keys()
        descending = self.order.descending != backwards
        conditions: list[sql.Composable] = []
        params: list = []
        if self.where:
            conditions.append(sql.SQL("({})").format(sql.SQL(self.where)))
        if after is not None and keys:
            op = sql.SQL("<" if descending else ">")
            ors = []
            # Key values are literals, not %s parameters: the user's filter text may
            # hold '%' (LIKE 'a%'), which psycopg would read as a placeholder.
            for i, (expr, _nullable) in enumerate(keys):
                ands = [sql.SQL("{} IS NOT DISTINCT FROM {}").format(keys[j][0],
                                                                     sql.Literal(after[j]))
                        for j in range(i)]
                ands.append(sql.SQL("{} {} {}").format(expr, op, sql.Literal(after[i])))
                ors.append(sql.SQL("({})").format(sql.SQL(" AND ").join(ands)))
            if len(keys) == 1 and not keys[0][1]:
                conditions.append(sql.SQL("{} {} {}").format(keys[0][0], op,
                                                             sql.Literal(after[0])))
            else:
                conditions.append(sql.SQL("({})").format(sql.SQL(" OR ").join(ors)))
        direction = sql.SQL(" DESC" if descending else "")
        order = sql.SQL(", ").join(sql.Composed([e, direction]) for e, _ in keys)
        extra = sql.SQL("").join(sql.SQL(", {} AS {}").format(e, sql.Identifier(f"__k{i}"))
                                 for i, (e, _) in enumerate(keys))
        query = sql.SQL("SELECT *{} FROM {}").format(extra, self._source())
        if conditions:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        if keys:
            query += sql.SQL(" ORDER BY ") + order
        query += sql.SQL(" LIMIT {}").format(sql.Literal(limit))
        if offset:
            query += sql.SQL(" OFFSET {}").format(sql.Literal(offset))
        return query, params

    def _run(self, conn: psycopg.Connection, after, backwards: bool, offset: int = 0,
             limit: int | None = None):
        limit = self.page_size if limit is None else limit
        query, params = self._select(after, backwards, limit + 1, offset)
        nkeys = len(self._keys())
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            bound(conn, Timeouts(statement=self.timeout))
            try:
                cur = conn.execute(query, params or None)
            except psycopg.errors.QueryCanceled:
                raise StatementTimeout(self.timeout) from None
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                if self.where:
                    message = (exc.diag.message_primary or str(exc)).rstrip(".")
                    raise FilterError(f"PostgreSQL rejects the filter: {message}.") from None
                raise
            names = [d.name for d in cur.description]
            raw = cur.fetchall()
            estimate = self.table.estimate
            if self.where:
                estimate = _explain_rows(conn, sql.SQL("SELECT 1 FROM {} WHERE {}").format(
                    self._source(), sql.SQL(self.where)))
        more = len(raw) > limit
        raw = raw[:limit]
        if backwards:
            raw.reverse()
        width = len(names) - nkeys
        rows = [tuple(_cell(v) for v in r[:width]) for r in raw]
        keys = [tuple(r[width:]) for r in raw]
        return names[:width], rows, keys, more, estimate

    def first(self, conn: psycopg.Connection) -> Page:
        names, rows, keys, more, est = self._run(conn, None, False)
        return Page(names, rows, keys[0] if keys else None, keys[-1] if keys else None,
                    0, at_start=True, at_end=not more, estimate=est)

    def last(self, conn: psycopg.Connection) -> Page:
        if self.table.paging == "offset":
            return self._offset_last(conn)
        names, rows, keys, more, est = self._run(conn, None, True)
        return Page(names, rows, keys[0] if keys else None, keys[-1] if keys else None,
                    0, from_end=True, at_start=not more, at_end=True, estimate=est)

    def next(self, conn: psycopg.Connection, page: Page) -> Page:
        if page.at_end or not page.rows:
            return page
        if self.table.paging == "offset":
            return self._offset_page(conn, page.offset + self.page_size)
        names, rows, keys, more, est = self._run(conn, page.last_key, False)
        if not rows:
            return replace(page, at_end=True)
        start = page.start - len(rows) if page.from_end else page.start + len(page.rows)
        return Page(names, rows, keys[0], keys[-1], max(start, 0), from_end=page.from_end,
                    at_end=not more, estimate=est)

    def previous(self, conn: psycopg.Connection, page: Page) -> Page:
        if page.at_start or not page.rows:
            return page
        if self.table.paging == "offset":
            offset = max(page.offset - self.page_size, 0)
            return self._offset_page(conn, offset, page.offset - offset)
        names, rows, keys, more, est = self._run(conn, page.first_key, True)
        if not rows:
            return replace(page, at_start=True)
        start = page.start + len(page.rows) if page.from_end else page.start - len(rows)
        if not more:  # reached the first row: positions are exact again
            return Page(names, rows, keys[0], keys[-1], 0, at_start=True, estimate=est)
        return Page(names, rows, keys[0], keys[-1], max(start, 0), from_end=page.from_end,
                    estimate=est)

    def _offset_page(self, conn, offset: int, limit: int | None = None) -> Page:
        names, rows, keys, more, est = self._run(conn, None, False, offset, limit)
        at_end = not more if limit is None else False
        return Page(names, rows, None, None, offset, at_start=offset == 0, at_end=at_end,
                    estimate=est, offset=offset)

    def _offset_last(self, conn) -> Page:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            bound(conn, Timeouts(statement=self.timeout))
            query = sql.SQL("SELECT count(*) FROM {}").format(self._source())
            if self.where:
                query += sql.SQL(" WHERE ({})").format(sql.SQL(self.where))
            total = conn.execute(query).fetchone()[0]
        offset = max(total - self.page_size, 0)
        return self._offset_page(conn, offset)


def _cell(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, memoryview)):
        data = bytes(value)
        text = "\\x" + data[:CELL_LIMIT // 2].hex()
        return text + ("…" if len(data) > CELL_LIMIT // 2 else "")
    text = value if isinstance(value, str) else (
        json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, (dict, list))
        else str(value))
    text = text.replace("\n", "⏎")
    return text if len(text) <= CELL_LIMIT else text[:CELL_LIMIT] + "…"
