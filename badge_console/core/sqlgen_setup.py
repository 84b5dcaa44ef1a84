"""The generator's setup part: our own schema badge_console (what is installed, settings,
the kill switch, error_log, the reconcile queue and its lock helpers, the events table)
and the award table when it is missing. Every statement is idempotent (IF NOT EXISTS, OR
REPLACE), so install runs them every time; and none locks a table of ours that already
has what it adds (writers' triggers read paused and write error_log and queue, and an
ALTER TABLE or CREATE INDEX would stall them until install commits): those run only
when the catalog lacks their column or index.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import SCHEMA, AwardTable, dollar_quote


def _unless(present: str, statement: str) -> str:
    """`statement` (a template on {s}) in a DO block that skips it when the catalog query
    `present` finds what it would add."""
    return "DO " + dollar_quote(f"BEGIN\n  IF NOT EXISTS ({present}) THEN\n    {statement};\n"
                                "  END IF;\nEND;\n")


def _index(name: str, definition: str) -> str:
    return _unless(f"SELECT 1 FROM pg_class WHERE oid = to_regclass('{SCHEMA}.{name}')",
                   f"CREATE INDEX {name} ON {{s}}.{definition}")


def schema_ddl() -> list[sql.Composed]:
    """Our own schema: what is installed, errors recorded by triggers, the kill switch."""
    s = sql.Identifier(SCHEMA)
    return [sql.SQL(text).format(s=s) for text in (
        "CREATE SCHEMA IF NOT EXISTS {s}",
        "CREATE TABLE IF NOT EXISTS {s}.installed ("
        " code text PRIMARY KEY, name text NOT NULL, fingerprint text NOT NULL,"
        " definition jsonb NOT NULL, trigger_table text NOT NULL,"
        " triggers jsonb NOT NULL, installed_at timestamptz NOT NULL DEFAULT now(),"
        " installed_by text NOT NULL DEFAULT current_user)",
        "CREATE TABLE IF NOT EXISTS {s}.settings (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE IF NOT EXISTS {s}.paused ("
        " code text PRIMARY KEY, paused_at timestamptz NOT NULL DEFAULT now())",
        "CREATE TABLE IF NOT EXISTS {s}.error_log ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL,"
        " sqlstate text NOT NULL, message text NOT NULL,"
        " at timestamptz NOT NULL DEFAULT now())",
        # auto-pause: a badge pauses itself after MAX_ERRORS failing statements (auto),
        # keeping the last error; the count is read from error_log, no counter row to lock.
        _unless(f"SELECT 1 FROM pg_attribute WHERE attrelid = '{SCHEMA}.paused'::regclass"
                " AND attname = 'message' AND NOT attisdropped",
                "ALTER TABLE {s}.paused ADD COLUMN IF NOT EXISTS auto boolean NOT NULL"
                " DEFAULT false, ADD COLUMN IF NOT EXISTS sqlstate text,"
                " ADD COLUMN IF NOT EXISTS message text"),
        _index("error_log_code", "error_log (code, id)"),
        # ALTER TABLE statements on tables carrying our triggers (guards.migration_recorder_ddl)
        "CREATE TABLE IF NOT EXISTS {s}.migrations ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " at timestamptz NOT NULL DEFAULT now(), object text NOT NULL, statement text NOT NULL)",
        # What a trigger could not decide without waiting long: the changed row, for
        # reconcile to judge later. No unique key on purpose: a second writer queueing the
        # same (badge, user) must not wait for the first one's commit.
        "CREATE TABLE IF NOT EXISTS {s}.queue ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL,"
        " op text NOT NULL, user_id text NOT NULL, new_row jsonb, old_row jsonb,"
        " queued_at timestamptz NOT NULL DEFAULT now())",
        _index("queue_code_id", "queue (code, op, id)"),
        # Wait for a (badge, user) lock until `deadline`; false on timeout or deadlock. The
        # SET clause keeps the lock_timeout it sets local to this call.
        "CREATE OR REPLACE FUNCTION {s}.lock_within(badge int, user_key int,"
        " deadline timestamptz) RETURNS boolean LANGUAGE plpgsql"
        " SET search_path = pg_catalog, pg_temp SET lock_timeout = '1ms' AS $f$\n"
        "DECLARE left_ms int := ceil(extract(epoch FROM deadline - clock_timestamp()) * 1000);\n"
        "BEGIN\n  IF left_ms < 1 THEN\n    RETURN false;\n  END IF;\n"
        "  PERFORM set_config('lock_timeout', left_ms || 'ms', true);\n"
        "  PERFORM pg_advisory_xact_lock(badge, user_key);\n  RETURN true;\n"
        "EXCEPTION WHEN lock_not_available OR deadlock_detected THEN\n  RETURN false;\n"
        "END\n$f$",
        "CREATE OR REPLACE FUNCTION {s}.enqueue(code text, op text, user_id text,"
        " new_row jsonb, old_row jsonb) RETURNS boolean LANGUAGE sql"
        " SET search_path = pg_catalog, pg_temp AS $f$\n"
        "INSERT INTO {s}.queue (code, op, user_id, new_row, old_row)"
        " VALUES (code, op, user_id, new_row, old_row);\nSELECT false\n$f$",
        "CREATE TABLE IF NOT EXISTS {s}.events ("
        " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event text NOT NULL,"
        " award_id bigint, user_id jsonb NOT NULL, code text NOT NULL, name text,"
        " awarded_at timestamptz, at timestamptz NOT NULL DEFAULT now(), tbl text, op text,"
        " by_role text NOT NULL DEFAULT session_user)",
    )]


def award_table_ddl(award: AwardTable, user_type: str) -> sql.Composed:
    """The award table when missing; `user_type` comes from format_type() of a user field."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " user_id {ut} NOT NULL, name text NOT NULL, code text NOT NULL,"
        " awarded_at timestamptz NOT NULL DEFAULT now(),"
        " UNIQUE (user_id, code))").format(t=award.ident, ut=sql.SQL(user_type))
