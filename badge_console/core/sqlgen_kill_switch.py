"""The generator's kill-switch part: the pause check (one badge or '*'), and the error
recording whose MAX_ERRORS-th error pauses the badge itself (the table trigger's per-badge
redo, see sqlgen_table, and reconcile's subtransactions).
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import MAX_ERRORS, SCHEMA, Target


def paused_check(code: str) -> sql.Composed:
    """True while this badge, or every badge ('*'), is paused (the kill switch, no DDL)."""
    return sql.SQL("EXISTS (SELECT 1 FROM {s}.paused WHERE code IN ({code}, '*'))").format(
        s=sql.Identifier(SCHEMA), code=sql.Literal(code))


def log_error(target: Target) -> sql.Composed:
    """log_error_for this badge's code."""
    return log_error_for(sql.Literal(target.badge.code))


def log_error_for(code: sql.Composable) -> sql.Composed:
    """Record the error being handled; the MAX_ERRORS-th one pauses the badge (auto-pause).

    A paused badge never gets here (the pause is checked before the condition runs). The
    count is an index scan of this badge's error_log rows, so failing writers insert rows
    of their own and never wait on one another."""
    return sql.SQL(
        "WITH logged AS (SELECT count(*) AS n FROM (SELECT 1 FROM {s}.error_log"
        " WHERE code = {code} LIMIT {max}) AS e), added AS ("
        "INSERT INTO {s}.error_log (code, sqlstate, message)"
        " SELECT {code}, SQLSTATE, SQLERRM FROM logged WHERE n < {max})"
        " INSERT INTO {s}.paused (code, auto, sqlstate, message)"
        " SELECT {code}, true, SQLSTATE, SQLERRM FROM logged WHERE n >= {max} - 1"
        " ON CONFLICT (code) DO NOTHING;").format(
        s=sql.Identifier(SCHEMA), code=code, max=sql.Literal(MAX_ERRORS))


def recorded_errors(target: Target, statements: sql.Composable) -> sql.Composed:
    """A subtransaction around `statements` whose errors go to error_log (reconcile uses it
    whatever on_error says: no application write is at stake there)."""
    return sql.SQL("  BEGIN\n{q};\n  EXCEPTION WHEN OTHERS THEN\n    {log}\n  END;\n").format(
        q=statements, log=log_error(target))
