"""How backfill walks a badge's table: which rows (or users) each committed batch judges,
and the winners query of each batch.

- RowBatches: ranges of the primary key, else of ctid blocks, else the whole table.
- UserBatches: for a condition that reads NEW only through the user field, ranges of
  the user field in the order of an index leading with it (sqlgen_grouped): each user is
  judged once. A condition that aggregates the user's own rows of the trigger table is
  then asked as one GROUP BY per batch (grouped_condition) instead of once per user.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import namedtuple_row, scalar_row

from . import catalog
from .grouped_condition import GroupedCondition, grouped_condition
from .sqlgen import AwardTable, Target
from .sqlgen_grouped import (empty_value, grouped_winners, judged_per_user, next_users,
                             users_between)
from .sqlgen_winners import ROWS_ALIAS, rows_where, winners_query


def _rows_estimate(conn: psycopg.Connection, target: Target,
                   size: catalog.SizeEstimate) -> int:
    """The table's rows for progress: the planner's estimate, counted when there is none."""
    if size.rows is not None and size.rows > 0:
        return int(size.rows)
    with conn.cursor(row_factory=scalar_row) as cur:
        return int(cur.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(*target.table.parts))).fetchone())


def grouped_for(conn: psycopg.Connection, target: Target, op: str) -> GroupedCondition | None:
    """The condition as a GROUP BY of the trigger table, when it has that shape, its
    FROM is this very table and a user without rows would not qualify (an aggregate over
    no rows that is not true)."""
    grouped = grouped_condition(target) if judged_per_user(target, op) else None
    if grouped is None:
        return None
    if grouped.schema is not None:
        same = (grouped.schema, grouped.table) == target.table.parts
    else:
        found = catalog.resolve_table(conn, grouped.table)
        same = found is not None and found.oid == target.table.oid
    if not same:
        return None
    with conn.cursor(row_factory=scalar_row) as cur:
        empty = cur.execute(empty_value(grouped)).fetchall()
    return grouped if len(empty) == 1 and empty[0] is not True else None


def table_winners(conn: psycopg.Connection, target: Target, op: str,
                  award: AwardTable | None) -> sql.Composed:
    """Every user who would earn the badge from today's rows (the preview's question)."""
    grouped = grouped_for(conn, target, op)
    if grouped is not None:
        return grouped_winners(target, grouped, award, None, None)
    src = sql.Identifier(*target.table.parts)
    return winners_query(target, op, award, src, src)


class RowBatches:
    """Ranges of a table: by primary key, else by ctid block, else the whole table."""

    def __init__(self, conn: psycopg.Connection, target: Target, op: str,
                 award: AwardTable, size: int):
        self.conn, self.target, self.op, self.award = conn, target, op, award
        self.size = max(1, int(size))
        self.table = sql.Identifier(*target.table.parts)
        self.pk = list(target.primary_key)
        size = catalog.size_estimate(conn, target.table)
        self.total = _rows_estimate(conn, target, size)
        self.pages = int(size.pages or 0)
        self.by_ctid = not self.pk and target.table.kind == "r"
        per_page = max(1, self.total // self.pages) if self.pages else 1
        self.pages_per_batch = max(1, self.size // per_page)

    def _winners(self, condition: sql.Composable) -> sql.Composed:
        src = rows_where(self.table, condition)
        return winners_query(self.target, self.op, self.award, src, src)

    def _key(self) -> sql.Composed:
        return sql.SQL("({})").format(sql.SQL(", ").join(
            sql.Identifier(ROWS_ALIAS, c) for c in self.pk))

    def _values(self, row) -> sql.Composed:
        return sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, row)))

    def first(self):
        return None if self.pk else 0

    def next(self, lo) -> tuple[sql.Composed, object, int]:
        """(winners among rows after `lo`, the next `lo` or None when this was the last,
        rows)."""
        if self.pk:
            after = sql.SQL("true") if lo is None else sql.SQL("{k} > {v}").format(
                k=self._key(), v=self._values(lo))
            hi = self.conn.execute(sql.SQL(
                "SELECT {cols} FROM {t} AS {r} WHERE {after} ORDER BY {order}"
                " OFFSET {skip} LIMIT 1").format(
                cols=sql.SQL(", ").join(sql.Identifier(ROWS_ALIAS, c) for c in self.pk),
                t=self.table, r=sql.Identifier(ROWS_ALIAS), after=after,
                order=sql.SQL(", ").join(sql.Identifier(ROWS_ALIAS, c) for c in self.pk),
                skip=sql.Literal(self.size - 1))).fetchone()
            if hi is None:
                return self._winners(after), None, 0
            cond = sql.SQL("{after} AND {k} <= {v}").format(
                after=after, k=self._key(), v=self._values(hi))
            return self._winners(cond), tuple(hi), self.size
        if self.by_ctid:
            start, stop = lo, lo + self.pages_per_batch
            tid = sql.Identifier(ROWS_ALIAS, "ctid")
            if stop >= self.pages:  # the last batch takes whatever was appended meanwhile
                cond = sql.SQL("{c} >= {s}::tid").format(c=tid, s=sql.Literal(f"({start},0)"))
                return self._winners(cond), None, 0
            cond = sql.SQL("{c} >= {s}::tid AND {c} < {e}::tid").format(
                c=tid, s=sql.Literal(f"({start},0)"), e=sql.Literal(f"({stop},0)"))
            return self._winners(cond), stop, 0
        # partitioned or foreign without a key: one batch
        return winners_query(self.target, self.op, self.award, self.table, self.table), None, 0


class UserBatches:
    """Ranges of the user field, `size` users each, in the order of an index leading with
    it: each user's rows fall in exactly one batch (see sqlgen_grouped)."""

    def __init__(self, conn: psycopg.Connection, target: Target, op: str,
                 award: AwardTable, size: int):
        self.conn, self.target, self.op, self.award = conn, target, op, award
        self.size = max(1, int(size))
        self.total = _rows_estimate(conn, target, catalog.size_estimate(conn, target.table))
        self.grouped = grouped_for(conn, target, op)

    def first(self):
        return None

    def _winners(self, lo, upto) -> sql.Composed:
        if self.grouped is not None:
            return grouped_winners(self.target, self.grouped, self.award, lo, upto)
        src = users_between(self.target, lo, upto)
        return winners_query(self.target, self.op, self.award, src, src)

    def next(self, lo) -> tuple[sql.Composed, object, int]:
        """(winners among users after `lo`, the batch's last user or None when this was
        the last batch, its rows)."""
        with self.conn.cursor(row_factory=namedtuple_row) as cur:
            batch = cur.execute(next_users(self.target, lo, self.size)).fetchone()
        if batch is None or batch.users <= self.size:
            return self._winners(lo, None), None, int(batch.rows) if batch else 0
        return self._winners(lo, batch.last), batch.last, int(batch.rows)


def table_batches(conn: psycopg.Connection, target: Target, op: str, award: AwardTable,
                  rows: int, users: int) -> RowBatches | UserBatches:
    """How to walk this badge's table: per user when its condition allows and an index
    makes the user order cheap, else by rows."""
    if judged_per_user(target, op) and catalog.leads_an_index(conn, target.table,
                                                                target.badge.user_field):
        return UserBatches(conn, target, op, award, users)
    return RowBatches(conn, target, op, award, rows)
