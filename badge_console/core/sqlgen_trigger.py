"""The generator's trigger part: the PL/pgSQL function behind each badge's trigger, the
CREATE TRIGGER, and their drops.

Trigger design (one per badge and operation): AFTER ... FOR EACH STATEMENT with
transition tables, and two paths chosen by how many rows the statement changed.
The pause comes before any condition runs, so a paused badge evaluates, records and
raises nothing (the kill switch).
One row (the application's usual write): the row is fetched into NEW/OLD (SELECT INTO
STRICT, whose error says "none" or "several") and judged as a row trigger would: a
plain-expression condition first, evaluated by PL/pgSQL without a query; then, or else,
one query whose terms run left to right: not paused, the user does not hold the badge
(an index probe), the condition. Several rows: outside any subtransaction the function
returns when the badge is paused or every changed user already holds it; else the
changed rows are projected to the columns the condition reads and de-duplicated, holders
are skipped (a fenced index probe, see sqlgen_winners.lacks_badge), and the condition runs
once per remaining combination. Either way the evaluation sits in one
subtransaction (on_error skip), and winners are inserted with ON CONFLICT DO NOTHING
(the unique key, not a racy NOT EXISTS, is what guarantees one award under concurrent
writers), each recorded as an "award" event in badge_console.events and notified in the
same transaction. Tables that cannot have transition tables get a row trigger running the
one-row path. Measured in bench/trigger_overhead.py (figures in bench/README.md).
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import (NEW_TABLE, OLD_TABLE, SCHEMA, AwardTable, Target, dollar_quote,
                     function_name, row_record, trigger_name)
from .sqlgen_kill_switch import guarded, log_error, paused_check, skips_errors
from .sqlgen_locks import lock_or_queue_set, locked_or_queued
from .sqlgen_winners import award_query, grant_winners, held_probe, lacks_badge


def trigger_function_ddl(target: Target, op: str, award: AwardTable, channel: str,
                         search_path: list[str]) -> sql.Composed:
    """CREATE OR REPLACE the PL/pgSQL function behind one badge's trigger for one op.

    Plans are forced generic: the one-row path passes NEW's fields as parameters, and
    custom plans (which PostgreSQL otherwise keeps choosing when constant-folding makes
    them look cheaper) would re-plan the condition on every write."""
    b = target.badge
    body = _one_row(target, op, award, channel) if target.row_level(op) else _statement(
        target, op, award, channel)
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger\n{settings}\nAS {body}").format(
        fn=sql.Identifier(SCHEMA, function_name(b.code, op)),
        settings=function_settings(search_path),
        body=sql.SQL(dollar_quote(sql.SQL(
            "#variable_conflict use_column\nDECLARE\n  n_awarded bigint;\n"
            "  n_changed int := 0;\n  bc_deadline timestamptz;\n  bc_contended text[];\n"
            "BEGIN\n{body}  RETURN NULL;\nEND;\n").format(
                body=body).as_string(None))))


def function_settings(search_path: list[str]) -> sql.Composed:
    """How every trigger function runs: as its owner, with the installer's schemas (pg_temp
    last, so a temporary table cannot shadow a real one), the holder probe kept on the
    index (see sqlgen_winners.lacks_badge) and generic plans. bench/trigger_overhead.py
    measures their cost."""
    path = sql.SQL(", ").join(map(sql.Identifier, [*search_path, "pg_temp"]))
    return sql.SQL("LANGUAGE plpgsql SECURITY DEFINER SET search_path = {}\n"
                   "SET enable_seqscan = off SET plan_cache_mode = force_generic_plan").format(path)


def _one_row_check(target: Target, op: str, award: AwardTable, channel: str,
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


def _pause_first(target: Target) -> sql.Composable:
    """An inline condition runs before any query, so a paused badge returns before it: a
    paused badge never raises, records or evaluates anything. A query-form condition has
    the pause as the first term of its one query and needs nothing more. (Folding the
    pause into the fetch of the row instead raises no_data_found while paused, and
    raising in PL/pgSQL costs more than this query: bench/trigger_overhead.py --paused.)"""
    if not target.inline:
        return sql.SQL("")
    return sql.SQL("  IF {} THEN\n    RETURN NULL;\n  END IF;\n").format(
        paused_check(target.badge.code))


def _one_row(target: Target, op: str, award: AwardTable, channel: str) -> sql.Composed:
    """A row trigger's body (tables without transition tables): the one-row check, guarded."""
    return sql.SQL("{}{}").format(_pause_first(target), guarded(
        target, _one_row_check(target, op, award, channel, target.inline)))


def _statement(target: Target, op: str, award: AwardTable, channel: str) -> sql.Composed:
    """A statement trigger's body: one changed row goes the one-row way, more go set-based.

    SELECT INTO STRICT fetches the one row and tells by its error when there are none or
    several (cheaper than a cursor over the transition table); its block is also the one
    subtransaction of the one-row path. The pause comes before any condition runs
    (_pause_first). Set-based: exits without a subtransaction when paused or when every
    changed row's user already holds the badge; else the projected, de-duplicated
    award_query."""
    b = target.badge
    changed = sql.Identifier(OLD_TABLE if op == "delete" else NEW_TABLE)
    pair = sql.SQL("    SELECT * INTO OLD FROM {};\n").format(sql.Identifier(OLD_TABLE)) \
        if target.needs_old_and_new(op) else sql.SQL("")  # one row each: they pair up
    skip = skips_errors(target)
    failed = log_error(target) if skip else sql.SQL("RAISE;")
    others = sql.SQL("\n    WHEN OTHERS THEN\n      {}").format(failed) if skip else sql.SQL("")
    user = sql.SQL("changed.{}").format(sql.Identifier(b.user_field))
    query = award_query(target, op, award, channel, sql.Identifier(NEW_TABLE),
                        sql.Identifier(OLD_TABLE), into="n_awarded")
    return sql.SQL(
        "{first}  BEGIN\n    SELECT * INTO STRICT {row} FROM {changed};\n{pair}"
        "    n_changed := 1;\n{one_row};\n"
        "  EXCEPTION\n    WHEN no_data_found OR too_many_rows THEN\n"
        "      IF n_changed = 1 THEN  -- raised by the condition, not by the fetch\n"
        "        {failed}\n      ELSIF SQLSTATE = 'P0003' THEN  -- too_many_rows\n"
        "        n_changed := 2;\n      END IF;{others}\n  END;\n"
        "  IF n_changed < 2 THEN\n    RETURN NULL;\n  END IF;\n"
        "  IF {recheck}NOT EXISTS (SELECT 1 FROM {changed} AS changed\n"
        "                    WHERE {user} IS NOT NULL AND {lacks}) THEN\n"
        "    RETURN NULL;\n  END IF;\n{lock}{guarded}").format(
        first=_pause_first(target), row=row_record(op), changed=changed, pair=pair,
        recheck=sql.SQL("") if target.inline else sql.SQL("{}\n     OR ").format(
            paused_check(b.code)),
        one_row=_one_row_check(target, op, award, channel, target.inline), failed=failed,
        others=others, user=user, lacks=lacks_badge(award, user, b.code),
        lock=lock_or_queue_set(target, op, award) if target.locks else sql.SQL(""),
        guarded=guarded(target, query))


def create_trigger_ddl(target: Target, op: str) -> sql.Composed:
    b = target.badge
    if target.row_level(op):
        referencing, each = sql.SQL(""), sql.SQL("ROW")
    else:
        tables = []
        if op != "delete":
            tables.append(sql.SQL("NEW TABLE AS {}").format(sql.Identifier(NEW_TABLE)))
        if op == "delete" or target.needs_old_and_new(op):
            tables.append(sql.SQL("OLD TABLE AS {}").format(sql.Identifier(OLD_TABLE)))
        referencing = sql.SQL(" REFERENCING {}").format(sql.SQL(" ").join(tables))
        each = sql.SQL("STATEMENT")
    return sql.SQL(
        "CREATE TRIGGER {name} AFTER {op} ON {table}{ref}\n"
        "  FOR EACH {each} EXECUTE FUNCTION {fn}()").format(
        name=sql.Identifier(trigger_name(b.code, op)), op=sql.SQL(op.upper()),
        table=sql.Identifier(*target.table.parts), ref=referencing, each=each,
        fn=sql.Identifier(SCHEMA, function_name(b.code, op)))


def drop_trigger_ddl(schema: str, table: str, name: str) -> sql.Composed:
    return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
        sql.Identifier(name), sql.Identifier(schema, table))


def drop_function_ddl(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, name))
