"""The generator's per-badge trigger part, kept from generator 7 where a table's trigger
(sqlgen_table) still judges one badge alone: the settings every trigger function runs
with, the one-row check of one badge (the redo after a failed batch, and the model the
batch follows), and the trigger and function drops.

The one-row check: a plain-expression condition first, evaluated by PL/pgSQL without a
query; then, or else, one query whose terms run left to right: not paused, the user does
not hold the badge (an index probe), the condition; winners are inserted with ON CONFLICT
DO NOTHING (the unique key, not a racy NOT EXISTS, is what guarantees one award under
concurrent writers), each recorded as an "award" event and notified in the same
transaction. Measured in bench/trigger_overhead.py (figures in bench/README.md).
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import AwardTable, Target, row_record
from .sqlgen_kill_switch import paused_check
from .sqlgen_locks import locked_or_queued
from .sqlgen_winners import grant_winners, held_probe


def function_settings(search_path: list[str]) -> sql.Composed:
    """How every trigger function runs: as its owner, with the installer's schemas (pg_temp
    last, so a temporary table cannot shadow a real one), the holder probe kept on the
    index (see sqlgen_winners.lacks_badge) and generic plans. bench/trigger_overhead.py
    measures their cost."""
    path = sql.SQL(", ").join(map(sql.Identifier, [*search_path, "pg_temp"]))
    return sql.SQL("LANGUAGE plpgsql SECURITY DEFINER SET search_path = {}\n"
                   "SET enable_seqscan = off SET plan_cache_mode = force_generic_plan").format(path)


def one_row_check(target: Target, op: str, award: AwardTable, channel: str,
                   pause_checked: bool) -> sql.Composed:
    """The badge for one changed row held in the NEW/OLD records, as a row trigger would.

    A plain-expression condition goes first, evaluated by PL/pgSQL without a query: most
    writes stop there. Otherwise one query decides, its terms evaluated left to right: not
    paused (unless `pause_checked` already), a user, who does not hold the badge (an index
    probe, cheaper than most conditions), the condition. This is the path of the
    application's usual one-row write, where each further query costs about as much as the
    whole check. An inline condition is only reached once the pause was checked."""
    b = target.badge
    user = sql.SQL("{}.{}").format(row_record(op), sql.Identifier(b.user_field))
    grant = grant_winners(target, op, award, channel,
                          sql.SQL("SELECT {} AS user_id").format(user), into="n_awarded")
    check = sql.SQL("{user} IS NOT NULL\n     AND NOT EXISTS ({held})").format(
        user=user, held=held_probe(award, user, b.code))
    if not pause_checked:
        check = sql.SQL("NOT {} AND {}").format(paused_check(b.code), check)
    if target.inline and not target.locks:
        return sql.SQL("  IF {cond} THEN\n  IF {check} THEN\n{grant};\n  END IF;\n  END IF").format(
            cond=target.condition, check=check, grant=grant)
    return sql.SQL("  IF {check}\n     AND {locked} THEN\n  IF ({cond}) THEN\n{grant};\n"
                   "  END IF;\n  END IF").format(
        check=check, locked=locked_or_queued(target, op, user), cond=target.condition,
        grant=grant)


def drop_trigger_ddl(schema: str, table: str, name: str) -> sql.Composed:
    return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
        sql.Identifier(name), sql.Identifier(schema, table))


def drop_function_ddl(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, name))
