"""The one SQL generator: what all of its parts share (our schema's name, the generator's
version, naming, and the resolved inputs AwardTable and Target).

Install, plan, validation, dry run, backfill and the benchmarks all build their SQL
through it, one idea per module: sqlgen_setup (the bookkeeping schema, the award table),
sqlgen_table (one trigger and function per table and operation), sqlgen_trigger (one
badge's check inside it), sqlgen_winners (who earns a badge from a
set of rows), sqlgen_events (how an award, grant or revoke is stored, recorded and
notified), sqlgen_locks (concurrent writers: the (badge, user) lock or the queue),
sqlgen_kill_switch (pause, on_error, error_log, auto-pause) and sqlgen_reconcile.
Identifiers and values go through psycopg.sql; the only SQL text taken from badge.json is
the condition, after pglast has parsed it as exactly one expression and re-printed it (see
condition.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from psycopg import sql

from .catalog import TableRef
from .condition import ConditionInfo
from .model import ValidBadge

SCHEMA = "badge_console"
GENERATOR_VERSION = "8"  # 3: one-row path, generic plans, inline conditions; 4: STRICT fetch;
# 5: per (badge, user) lock before a condition that reads other rows, queue, reconcile;
# 6: pause before an inline condition, bounded error_log and auto-pause, no award for a gone user
# 7: every award (trigger, backfill, reconcile) recorded in the events table
# 8: one trigger and function per table and operation deciding all its badges (sqlgen_table)
EVENTS = "events"
TRIGGER_PREFIX = "bc_"  # our triggers' names: bc__ins (generator 8), bc_<code>_ins (7)
MAX_ERRORS = 1000  # failing statements a badge records before it pauses itself
NEW_TABLE = "badge_console_new"
OLD_TABLE = "badge_console_old"
OP_SUFFIX = {"insert": "ins", "update": "upd", "delete": "del"}


@dataclass(frozen=True)
class AwardTable:
    schema: str
    name: str
    has_awarded_at: bool = True  # False for the table django-pg-badges made
    # (schema, table, column) the award table's user_id references by foreign key, if any:
    # an award for a user gone from there is skipped, never a foreign-key failure.
    users: tuple[str, str, str] | None = None
    users_deferred: bool = False  # that key is checked at commit (Django's)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Target:
    """A valid badge resolved against the database: all the generator needs."""

    badge: ValidBadge
    info: ConditionInfo
    table: TableRef
    primary_key: tuple[str, ...]
    volatile: bool = False  # condition calls a volatile function: no de-duplication
    # The condition is a plain expression of NEW/OLD (no sub-select, no aggregate): it
    # runs inline on every changed row before de-duplication, which is cheaper than a
    # sub-select per distinct combination and leaves only users to probe.
    inline: bool = False
    calls_user_functions: bool = False  # a function of the application's: may read rows

    @property
    def locks(self) -> bool:
        """The condition reads other rows: two transactions writing for one user would each
        miss the other's uncommitted row, so the trigger takes the (badge, user) lock and
        evaluates after it (a later statement: a fresh READ COMMITTED snapshot). A plain
        expression of NEW/OLD needs no lock: the unique key settles concurrent awards."""
        return not self.inline or self.calls_user_functions

    @property
    def condition(self) -> sql.SQL:
        return sql.SQL(self.info.expression_sql if self.inline else self.info.select_sql)

    def needs_old_and_new(self, op: str) -> bool:
        return op == "update" and self.info.uses_old

    def row_level(self, op: str) -> bool:
        """Transition tables are impossible or cannot pair OLD with NEW: use FOR EACH ROW."""
        return self.table.is_child or self.table.kind == "f" or (
            self.needs_old_and_new(op) and not self.primary_key)


def fingerprint(badge: ValidBadge, award: AwardTable, channel: str) -> str:
    """What an installed trigger was generated from; any change makes it outdated."""
    doc = {"badge": badge.definition, "award": award.display, "channel": channel,
           "generator": GENERATOR_VERSION}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def row_alias(op: str) -> str:
    """The alias of the changed row in generated queries: old for a delete, else new."""
    return "old" if op == "delete" else "new"


def row_record(op: str) -> sql.SQL:
    """The PL/pgSQL record holding the changed row: NEW, or OLD for a delete."""
    return sql.SQL(row_alias(op).upper())


def dollar_quote(body: str) -> str:
    tag, n = "badge", 0
    while f"${tag}$" in body:
        n += 1
        tag = f"badge{n}"
    return f"${tag}$\n{body}${tag}$"
