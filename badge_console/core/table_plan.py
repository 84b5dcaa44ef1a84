"""The install plan's table part: the statements that bring every table's trigger and
function (generator 8, sqlgen_table) to the file's state, ordered so writers never stall.

Writers only wait for a table lock, and only CREATE/DROP TRIGGER take one: so every
CREATE OR REPLACE FUNCTION comes first (no table lock), the trigger statements last, just
before commit, and then the drops of functions nothing calls any more. A function whose
COMMENT already carries the wanted DDL digest is left alone; a trigger that already has
the right shape (row or statement, transition tables, function, enabled) is left alone
too, so changing a badge on a table replaces only the table's function and locks no table.
Generator-7 objects (a trigger and a function per badge and operation) are always dropped:
installed databases migrate on their next install, in the same transaction.

The plan warning: each condition that reads other rows costs a one-row write about one
query, plain expressions almost nothing. Measured (2 cores, PostgreSQL 15, one-row inserts
over no trigger): 40 badges with one shared value +0.37 ms, with 20 distinct values
+0.76 ms, 80 badges with 40 values +1.36 ms: ~20-30 us per value. So more than
QUERY_CONDITIONS_WARN distinct values (levels of one value count once) on one table and
operation make a write pay about 1 ms or more; the model errs early rather than late.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from .installed import LiveFunction, LiveTrigger
from .sqlgen import SCHEMA, AwardTable
from .sqlgen_table import (TableUnit, TriggerShape, create_unit_trigger_ddl, unit_function_ddl,
                           unit_shape)
from .sqlgen_trigger import drop_function_ddl, drop_trigger_ddl

QUERY_CONDITIONS_WARN = 20


@dataclass(frozen=True)
class TableWarning:
    """One table and operation carries so many query conditions that a write pays > ~1 ms."""

    table: str
    op: str
    badges: int
    query_conditions: int

    def __str__(self) -> str:
        return (f"{self.table}: {self.badges} badges on {self.op}, {self.query_conditions} of "
                f"them with a condition that reads other rows (about one query each): a "
                f"one-row {self.op} pays more than about 1 ms; share a value (levels) or "
                f"move some badges to reconcile")

    def as_dict(self) -> dict:
        return {"table": self.table, "op": self.op, "badges": self.badges,
                "query_conditions": self.query_conditions, "text": str(self)}


def table_warnings(units: list[TableUnit]) -> list[TableWarning]:
    return [TableWarning(u.table.display, u.op, len(u.targets), u.query_conditions)
            for u in units if u.query_conditions > QUERY_CONDITIONS_WARN]


def _shape(t: LiveTrigger, function: str) -> TriggerShape:
    return TriggerShape(t.row, t.new_table, t.old_table, function)


def table_statements(units: list[TableUnit], live: dict[str, LiveFunction],
                     award: AwardTable, channel: str,
                     search_path: list[str]) -> list[sql.Composed]:
    """Functions first, then trigger statements, then drops of what nothing needs."""
    functions: list[sql.Composed] = []
    triggers: list[sql.Composed] = []
    kept: set[tuple[str, str, str, str]] = set()  # (schema, table, trigger, function)
    for unit in units:
        ddl, digest = unit_function_ddl(unit, award, channel, search_path)
        have = live.get(unit.function)
        if have is None or have.digest != digest or have.codes != unit.codes:
            functions += ddl
        shape = unit_shape(unit)
        right = have is not None and any(
            (t.schema, t.table, t.name) == (*unit.table.parts, unit.trigger) and not t.off
            and _shape(t, have.name) == shape for t in have.triggers)
        if not right:
            triggers += [drop_trigger_ddl(*unit.table.parts, unit.trigger),
                         create_unit_trigger_ddl(unit)]
        kept.add((*unit.table.parts, unit.trigger, unit.function))
    wanted_functions = {u.function for u in units}
    recreated = {(*u.table.parts, u.trigger) for u in units}
    drops = []
    for f in live.values():
        for t in f.triggers:
            if (t.schema, t.table, t.name, f.name) not in kept \
                    and (t.schema, t.table, t.name) not in recreated:
                triggers.append(drop_trigger_ddl(t.schema, t.table, t.name))
        if f.name not in wanted_functions:
            drops.append(drop_function_ddl(SCHEMA, f.name))
    return functions + triggers + drops
