"""The generator's unit (generator 8): one trigger per table and operation, calling one
PL/pgSQL function that decides every enabled badge of that table and operation.

A write pays once for what its badges share (SPEC §7, "Cost flat in the number of
badges"): one trigger call, one fetch of the changed row (or one projection of the
transition table), one read of the pause state, one holder lookup; plain expressions are
evaluated by PL/pgSQL in one expression, and badges whose conditions share a value (levels)
evaluate it once (sqlgen_table_row, sqlgen_table_set). Per-badge guarantees stay: the
batch runs in one subtransaction and, when it fails, the same batch runs again for each
badge alone in its own subtransaction, so one failing badge (on_error skip) only logs its
own error and an on_error raise badge still fails the write. The batch's code appears once
per path, so the function stays small for many badges (each new session compiles it).

The function's COMMENT names its badges, so plan, installed and uninstall can tell what it
carries without parsing its body, and holds a digest of its DDL, so install replaces it only
when something changed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from psycopg import sql

from .catalog import TableRef
from .sqlgen import (GENERATOR_VERSION, NEW_TABLE, OLD_TABLE, OP_SUFFIX, SCHEMA,
                     TRIGGER_PREFIX, AwardTable, Target, dollar_quote)
from .sqlgen_kill_switch import log_error_for
from .sqlgen_table_row import one_row_batch
from .sqlgen_table_set import set_based
from .sqlgen_trigger import function_settings

MAX_NAME = 63  # bytes: PostgreSQL's NAMEDATALEN - 1
COMMENT_RE = re.compile(r"badge-console (\d+) ([0-9a-f]+): ?(.*)")


@dataclass(frozen=True)
class TableUnit:
    """The enabled badges of one table and operation: one trigger, one function."""

    table: TableRef
    op: str
    targets: tuple[Target, ...]  # by code

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(t.badge.code for t in self.targets)

    @property
    def row_level(self) -> bool:
        """One badge needing FOR EACH ROW (Target.row_level) makes the whole unit a row
        trigger: the table+op has one trigger."""
        return any(t.row_level(self.op) for t in self.targets)

    @property
    def pairs(self) -> bool:
        """Some badge compares OLD with NEW on update: the trigger needs both tables."""
        return any(t.needs_old_and_new(self.op) for t in self.targets)

    @property
    def trigger(self) -> str:
        return unit_trigger_name(self.op)

    @property
    def function(self) -> str:
        return unit_function_name(self.table, self.op)

    @property
    def query_conditions(self) -> int:
        """Conditions that read other rows: each costs about one query per write."""
        return len({_group_key(t) for t in self.targets if t.locks})


def _group_key(target: Target) -> str:
    return target.info.value_sql or target.info.select_sql or target.badge.code


def units_of(targets) -> list[TableUnit]:
    """The units the enabled targets make, by table then operation."""
    found: dict[tuple, list[Target]] = {}
    for t in targets:
        for op in t.badge.operations:
            found.setdefault((t.table.parts, op), []).append(t)
    units = []
    for (_, op), ts in sorted(found.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        ts = sorted(ts, key=lambda t: t.badge.code)
        units.append(TableUnit(ts[0].table, op, tuple(ts)))
    return units


def unit_trigger_name(op: str) -> str:
    return f"{TRIGGER_PREFIX}_{OP_SUFFIX[op]}"


def unit_function_name(table: TableRef, op: str) -> str:
    """`<schema>.<table>__<op>`, shortened with a hash when it would not fit in a name."""
    name = f"{table.schema}.{table.name}__{op}"
    if len(name.encode()) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    tail = f"~{digest}__{op}"
    head = name.encode()[:MAX_NAME - len(tail)].decode(errors="ignore")
    return head + tail


def function_comment(body_digest: str, codes) -> str:
    return f"badge-console {GENERATOR_VERSION} {body_digest}: {' '.join(codes)}"


def parse_comment(comment: str | None) -> tuple[str, str, tuple[str, ...]] | None:
    """(generator, digest, codes) of one of our unit functions' COMMENT, else None."""
    m = COMMENT_RE.fullmatch(comment or "")
    return (m.group(1), m.group(2), tuple(m.group(3).split())) if m else None


def _redo_loop(unit, batch: sql.Composable, first: sql.Composable,
               fetch_failed: sql.Composable) -> sql.Composed:
    """`batch` for all badges in one subtransaction; when it fails, again for each badge
    alone (bc_only), each in its own subtransaction: on_error skip logs that badge's error
    (and auto-pauses it), on_error raise re-raises it. `first` starts each pass (the
    one-row fetch, so that one subtransaction serves both); `fetch_failed` handles an
    error raised before n_changed was set. The loop starts from NULLs (no DECLARE
    default, no reset: a one-row write pays for every statement it runs); a pass for one
    badge starts from no codes won (bc_win)."""
    raising = [t.badge.code for t in unit.targets if t.badge.on_error == "raise"]
    reraise = sql.SQL("      ELSIF bc_code = ANY ({}::text[]) THEN\n        RAISE;\n").format(
        sql.Literal(raising)) if raising else sql.SQL("")
    return sql.SQL(
        "  LOOP\n    BEGIN\n{first}{batch}"
        "    EXCEPTION WHEN OTHERS THEN\n      IF n_changed IS NULL THEN\n{fetch_failed}"
        "      ELSIF bc_only IS NULL THEN\n        bc_failed := true;  -- redo badge by badge\n"
        "      ELSIF EXISTS (SELECT 1 FROM {s}.paused WHERE code IN (bc_code, '*')) THEN\n"
        "        NULL;  -- a paused badge never fails the write and records nothing\n"
        "{reraise}      ELSE\n        {log}\n      END IF;\n    END;\n"
        "    EXIT WHEN bc_failed IS NULL OR bc_i = {n};\n"
        "    bc_i := coalesce(bc_i, 0) + 1;\n    bc_code := ({codes}::text[])[bc_i];\n"
        "    bc_only := ARRAY[bc_code];\n    bc_win := NULL;\n  END LOOP;\n").format(
        first=first, batch=batch, fetch_failed=fetch_failed, reraise=reraise,
        s=sql.Identifier(SCHEMA),
        log=log_error_for(sql.SQL("bc_code")), n=sql.Literal(len(unit.targets)),
        codes=sql.Literal(list(unit.codes)))


def _body(unit: TableUnit, award: AwardTable, channel: str) -> sql.Composed:
    batch = one_row_batch(unit, award, channel)
    if unit.row_level:
        return _redo_loop(unit, batch, sql.SQL("      n_changed := 1;\n"), sql.SQL(""))
    row = sql.SQL("NEW") if unit.op != "delete" else sql.SQL("OLD")
    changed = sql.Identifier(OLD_TABLE if unit.op == "delete" else NEW_TABLE)
    pair = sql.SQL("      SELECT * INTO OLD FROM {};\n").format(sql.Identifier(OLD_TABLE)) \
        if unit.pairs and unit.op == "update" else sql.SQL("")
    first = sql.SQL("      SELECT * INTO STRICT {row} FROM {changed};\n{pair}"
                    "      n_changed := 1;\n").format(row=row, changed=changed, pair=pair)
    fetch_failed = sql.SQL(
        "        IF SQLSTATE = 'P0003' THEN  -- too_many_rows: the set-based way\n"
        "          n_changed := 2;\n        ELSE  -- no_data_found: the statement changed no row\n"
        "          RETURN NULL;\n        END IF;\n")
    return sql.SQL(
        "{one}  IF n_changed < 2 THEN\n    RETURN NULL;\n  END IF;\n"
        "  DECLARE  -- what only the set-based way uses\n"
        "    bc_deadline timestamptz;\n    bc_contended text[];\n    bc_active text[];\n"
        "    bc_users text[];\n"
        "  BEGIN\n  bc_i := NULL;\n  bc_only := NULL;\n  bc_failed := NULL;\n  bc_win := NULL;\n"
        "{set}  END;\n").format(
        one=_redo_loop(unit, batch, first, fetch_failed),
        set=_redo_loop(unit, set_based(unit, award, channel), sql.SQL(""), sql.SQL("")))


def unit_function_ddl(unit: TableUnit, award: AwardTable, channel: str,
                      search_path: list[str],
                      name: str | None = None) -> tuple[list[sql.Composed], str]:
    """CREATE OR REPLACE the unit's function, and its COMMENT naming its badges and the
    digest of this DDL (install compares it to skip an unchanged function); and that
    digest. `name` overrides the function's name (fire mode's copy)."""
    fn = sql.Identifier(SCHEMA, name or unit.function)
    body = sql.SQL(
        "#variable_conflict use_column\nDECLARE\n  n_awarded bigint;\n  n_changed int;\n"
        "  bc_paused text[];\n  bc_held text[];\n  bc_win text[];\n  bc_groups int[];\n"
        "  bc_i int;\n  bc_code text;\n  bc_only text[];\n  bc_failed boolean;\n"
        "BEGIN\n{body}  RETURN NULL;\nEND;\n").format(
        body=_body(unit, award, channel)).as_string(None)
    create = sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger\n{settings}\nAS {body}").format(
        fn=fn, settings=function_settings(search_path), body=sql.SQL(dollar_quote(body)))
    digest = hashlib.sha256(create.as_string(None).encode()).hexdigest()[:16]
    comment = sql.SQL("COMMENT ON FUNCTION {fn}() IS {c}").format(
        fn=fn, c=sql.Literal(function_comment(digest, unit.codes)))
    return [create, comment], digest


@dataclass(frozen=True)
class TriggerShape:
    """What makes a unit's trigger right: row or statement, its transition tables, its
    function. A trigger of that shape stays; only its function is replaced."""

    row: bool
    new_table: bool
    old_table: bool
    function: str


def unit_shape(unit: TableUnit, function: str | None = None) -> TriggerShape:
    if unit.row_level:
        return TriggerShape(True, False, False, function or unit.function)
    return TriggerShape(False, unit.op != "delete",
                        unit.op == "delete" or (unit.pairs and unit.op == "update"),
                        function or unit.function)


def create_unit_trigger_ddl(unit: TableUnit, name: str | None = None,
                            function: str | None = None) -> sql.Composed:
    shape = unit_shape(unit, function)
    if shape.row:
        referencing, each = sql.SQL(""), sql.SQL("ROW")
    else:
        tables = []
        if shape.new_table:
            tables.append(sql.SQL("NEW TABLE AS {}").format(sql.Identifier(NEW_TABLE)))
        if shape.old_table:
            tables.append(sql.SQL("OLD TABLE AS {}").format(sql.Identifier(OLD_TABLE)))
        referencing = sql.SQL(" REFERENCING {}").format(sql.SQL(" ").join(tables))
        each = sql.SQL("STATEMENT")
    return sql.SQL(
        "CREATE TRIGGER {name} AFTER {op} ON {table}{ref}\n"
        "  FOR EACH {each} EXECUTE FUNCTION {fn}()").format(
        name=sql.Identifier(name or unit.trigger), op=sql.SQL(unit.op.upper()),
        table=sql.Identifier(*unit.table.parts), ref=referencing, each=each,
        fn=sql.Identifier(SCHEMA, shape.function))
