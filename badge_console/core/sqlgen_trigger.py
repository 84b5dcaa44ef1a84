"""What every trigger function of ours shares (its settings), and the trigger and function
drops. The triggers themselves are the tables' (sqlgen_table).
"""

from __future__ import annotations

from psycopg import sql


def function_settings(search_path: list[str]) -> sql.Composed:
    """How every trigger function runs: as its owner, with the installer's schemas (pg_temp
    last, so a temporary table cannot shadow a real one), the holder probe kept on the
    index (see sqlgen_winners.lacks_badge) and generic plans. bench/trigger_overhead.py
    measures their cost."""
    path = sql.SQL(", ").join(map(sql.Identifier, [*search_path, "pg_temp"]))
    return sql.SQL("LANGUAGE plpgsql SECURITY DEFINER SET search_path = {}\n"
                   "SET enable_seqscan = off SET plan_cache_mode = force_generic_plan").format(path)


def drop_trigger_ddl(schema: str, table: str, name: str) -> sql.Composed:
    return sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
        sql.Identifier(name), sql.Identifier(schema, table))


def drop_function_ddl(schema: str, name: str) -> sql.Composed:
    return sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, name))
