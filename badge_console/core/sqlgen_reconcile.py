"""The generator's reconcile part: what awards what a trigger could not decide at once.

`CALL badge_console.reconcile()` is one pass (pg_cron runs it; `badge-console reconcile`
calls it). Per installed badge it runs that badge's functions, committing after each call
so no lock is held for long:
- `<code>__reconcile(after, batch)` judges one batch of the badge's queued rows (the
  trigger queued them when it could not have the (badge, user) lock within
  sqlgen_locks.LOCK_WAIT). Rows taken by another reconcile are skipped (SKIP LOCKED); rows
  whose user's lock a writer still holds stay queued for the next pass (that writer may
  not have committed what the condition must see). The condition runs in a later
  statement than the lock, on the queued rows as NEW/OLD, through the same award query as
  the trigger's set-based path.
- `<code>__recheck(from_page, batch)`, for a time-based badge: the backfill query over
  one block range of the table (users who hold the badge are skipped by the index probe),
  since the clock makes conditions true while nobody writes.
Awards are inserted ON CONFLICT DO NOTHING and notified like a trigger's, op "reconcile";
a pass is idempotent and safe to run from several places at once.
"""

from __future__ import annotations

from psycopg import sql

from .batch_sizes import RECONCILE_ROWS
from .sqlgen import SCHEMA, AwardTable, Target, dollar_quote
from .sqlgen_kill_switch import paused_check, recorded_errors
from .sqlgen_locks import target_lock_key
from .sqlgen_trigger import function_settings
from .sqlgen_winners import ROWS_ALIAS, award_query, rows_op, rows_where

LAST_RUN_KEY = "reconcile_last_run"  # in badge_console.settings: the last pass, as JSON


def queue_function_name(code: str) -> str:
    return f"{code}__reconcile"


def recheck_function_name(code: str) -> str:
    return f"{code}__recheck"


def _function(code: str, name: str, args: str, body: sql.Composable,
              search_path: list[str]) -> sql.Composed:
    """A SECURITY DEFINER function of this badge (settings as the triggers'), doing
    nothing while the badge is paused (its queue waits for resume)."""
    return sql.SQL("CREATE OR REPLACE FUNCTION {fn}({args})\n{settings}\nAS {body}").format(
        fn=sql.Identifier(SCHEMA, name), args=sql.SQL(args),
        settings=function_settings(search_path),
        body=sql.SQL(dollar_quote(sql.SQL(
            "#variable_conflict use_column\nDECLARE\n  n_awarded bigint;\n"
            "  bc_rows_new jsonb;\n  bc_rows_old jsonb;\n  bc_i int;\n  bc_pages bigint;\n"
            "  bc_per_page float8;\n  bc_upto bigint;\nBEGIN\n  awarded := 0;\n"
            "  IF {paused} THEN\n    RETURN;\n  END IF;\n{body}END;\n").format(
                paused=paused_check(code), body=body).as_string(None))))


def _queue_body(target: Target, award: AwardTable, channel: str) -> sql.Composed:
    b = target.badge
    s, code = sql.Identifier(SCHEMA), sql.Literal(b.code)
    table = sql.SQL("NULL::{}").format(sql.Identifier(*target.table.parts))
    parts = [sql.SQL(
        "  SELECT max(id) INTO resume_at FROM (SELECT id FROM {s}.queue WHERE code = {code}"
        " AND id > bc_after ORDER BY id LIMIT bc_batch) AS batch;\n"
        "  IF resume_at IS NULL THEN\n    RETURN;\n  END IF;\n").format(s=s, code=code)]
    for op in b.operations:
        query = _award_rows(target, op, award, channel, table)
        parts.append(recorded_errors(target, sql.SQL(
            "    WITH picked AS MATERIALIZED (\n"
            "      SELECT id, user_id FROM {s}.queue WHERE code = {code} AND op = {op}\n"
            "        AND id > bc_after AND id <= resume_at FOR UPDATE SKIP LOCKED\n"
            "    ), free AS MATERIALIZED (\n"
            "      SELECT id FROM picked WHERE pg_try_advisory_xact_lock({key}, hashtext(user_id))\n"
            "    ), taken AS (\n"
            "      DELETE FROM {s}.queue AS q USING free WHERE q.id = free.id\n"
            "      RETURNING q.new_row, q.old_row\n"
            "    )\n"
            "    SELECT jsonb_agg(new_row) FILTER (WHERE new_row IS NOT NULL),\n"
            "           jsonb_agg(old_row) FILTER (WHERE old_row IS NOT NULL)\n"
            "      INTO bc_rows_new, bc_rows_old FROM taken;\n"
            "    IF bc_rows_new IS NOT NULL OR bc_rows_old IS NOT NULL THEN\n"
            "{query}"
            "    END IF").format(  # an error rolls the DELETE back: the rows stay queued
            s=s, code=code, op=sql.Literal(op), key=sql.Literal(target_lock_key(target)),
            query=query)))
    return sql.Composed(parts)


def _award_rows(target: Target, op: str, award: AwardTable, channel: str,
                table: sql.Composable) -> sql.Composed:
    """The award query over the taken rows: set-based, with OLD paired to NEW on the
    primary key; one row at a time where there is none to pair them (a row trigger's
    table), each row's OLD and NEW having been queued together."""
    if target.needs_old_and_new(op) and not target.primary_key:
        query = award_query(
            target, op, award, channel,
            sql.SQL("jsonb_populate_record({}, bc_rows_new -> bc_i)").format(table),
            sql.SQL("jsonb_populate_record({}, bc_rows_old -> bc_i)").format(table),
            op_label="reconcile", into="n_awarded", single_row=True)
        return sql.SQL(
            "      FOR bc_i IN 0 .. jsonb_array_length(bc_rows_new) - 1 LOOP\n{query};\n"
            "        awarded := awarded + n_awarded;\n      END LOOP;\n").format(query=query)
    query = award_query(
        target, op, award, channel,
        sql.SQL("jsonb_populate_recordset({}, bc_rows_new)").format(table),
        sql.SQL("jsonb_populate_recordset({}, bc_rows_old)").format(table),
        op_label="reconcile", into="n_awarded")
    return sql.SQL("{query};\n      awarded := awarded + n_awarded;\n").format(query=query)


LAST_BLOCK = 4294967295  # past any table's last page: the last batch takes what was appended


def _recheck_body(target: Target, op: str, award: AwardTable, channel: str) -> sql.Composed:
    """One batch of the table: about bc_batch rows by block range of ctid (a TID range
    scan), from page bc_from; resume_at is where the next batch starts, NULL after the
    last. A partitioned or foreign table is judged whole, in one batch."""
    table = sql.Identifier(*target.table.parts)
    if target.table.kind != "r":
        return recorded_errors(target, award_query(target, op, award, channel, table, table,
                                                   op_label="reconcile", into="awarded"))
    tid = sql.Identifier(ROWS_ALIAS, "ctid")
    src = rows_where(table, sql.SQL(
        "{tid} >= format('(%s,0)', bc_from)::tid AND {tid} < format('(%s,0)', bc_upto)::tid"
    ).format(tid=tid))
    return sql.SQL(
        "  SELECT pg_relation_size(c.oid) / current_setting('block_size')::bigint,\n"
        "         CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN c.reltuples / c.relpages"
        " ELSE 1 END\n"
        "    INTO bc_pages, bc_per_page FROM pg_class AS c WHERE c.oid = {name}::regclass;\n"
        "  bc_upto := bc_from + greatest(1, floor(bc_batch / bc_per_page))::bigint;\n"
        "  resume_at := bc_upto;\n"
        "  IF bc_upto >= bc_pages THEN\n    resume_at := NULL;\n    bc_upto := {last};\n"
        "  END IF;\n{award}").format(
        name=sql.Literal(table.as_string(None)), last=sql.Literal(LAST_BLOCK),
        award=recorded_errors(target, award_query(target, op, award, channel, src, src,
                                                  op_label="reconcile", into="awarded")))


def badge_reconcile_ddl(target: Target, award: AwardTable, channel: str,
                        search_path: list[str]) -> list[sql.Composed]:
    """The badge's reconcile functions: the queue's for a condition that takes the lock,
    the re-check for a time-based one (none for a plain, clock-free expression)."""
    stmts = []
    if target.locks:
        stmts.append(_function(
            target.badge.code, queue_function_name(target.badge.code),
            "bc_after bigint, bc_batch int, OUT resume_at bigint, OUT awarded bigint",
            _queue_body(target, award, channel), search_path))
    op = rows_op(target)
    if target.info.time_based and op is not None:
        stmts.append(_function(target.badge.code, recheck_function_name(target.badge.code),
                               "bc_from bigint, bc_batch int, OUT resume_at bigint,"
                               " OUT awarded bigint",
                               _recheck_body(target, op, award, channel), search_path))
    return stmts


def drop_badge_reconcile_ddl(code: str) -> list[sql.Composed]:
    return [sql.SQL("DROP FUNCTION IF EXISTS {}(bigint, int)").format(
                sql.Identifier(SCHEMA, queue_function_name(code))),
            sql.SQL("DROP FUNCTION IF EXISTS {}(bigint, int)").format(
                sql.Identifier(SCHEMA, recheck_function_name(code)))]


RECONCILE_PROCEDURE = """
CREATE OR REPLACE PROCEDURE {s}.reconcile(batch int DEFAULT {batch}, INOUT result jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $reconcile$
DECLARE
  codes text[];
  c text;
  fn text;
  r record;
  after bigint;
  from_queue bigint := 0;
  time_based bigint := 0;
  started timestamptz := clock_timestamp();
BEGIN
  -- rows queued for a badge that is gone, or no longer needs the lock, have no judge left
  DELETE FROM {s}.queue AS q
    WHERE to_regprocedure(format('{s}.%I(bigint, integer)', q.code || '__reconcile')) IS NULL;
  SELECT array_agg(code ORDER BY code) INTO codes FROM {s}.installed;
  FOREACH c IN ARRAY coalesce(codes, '{{}}') LOOP
    FOREACH fn IN ARRAY ARRAY[c || '__reconcile', c || '__recheck'] LOOP
      CONTINUE WHEN to_regprocedure(format('{s}.%I(bigint, integer)', fn)) IS NULL;
      after := 0;
      LOOP  -- one batch per call, committed
        EXECUTE format('SELECT resume_at, awarded FROM {s}.%I($1, $2)', fn)
          INTO r USING after, batch;
        COMMIT;
        IF fn = c || '__reconcile' THEN
          from_queue := from_queue + r.awarded;
        ELSE
          time_based := time_based + r.awarded;
        END IF;
        EXIT WHEN r.resume_at IS NULL;
        after := r.resume_at;
      END LOOP;
    END LOOP;
  END LOOP;
  result := jsonb_build_object(
    'awarded_from_queue', from_queue, 'awarded_time_based', time_based,
    'queued', (SELECT count(*) FROM {s}.queue),
    'started_at', to_char(started AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'finished_at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
  INSERT INTO {s}.settings (key, value) VALUES ({key}, result::text)
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;
  COMMIT;
END
$reconcile$"""


def reconcile_procedure_ddl() -> sql.Composed:
    """The pass itself: a procedure (it commits between batches), run as its caller; the
    per-badge functions it calls are SECURITY DEFINER like the triggers."""
    return sql.SQL(RECONCILE_PROCEDURE).format(
        s=sql.Identifier(SCHEMA), batch=sql.Literal(RECONCILE_ROWS),
        key=sql.Literal(LAST_RUN_KEY))
