"""What is really installed: our trigger functions and the triggers calling them.

Read from pg_proc and pg_trigger by identity (functions of schema badge_console named
`code__op`, whatever table their triggers now sit on), not from the names recorded at
install time: after the application renamed a table, or someone dropped a trigger by
hand, install still drops exactly what exists and moves to the file's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import catalog
from .definitions import CODE_RE, OPERATIONS
from .guards import MIGRATION_RECORDER
from .sqlgen import SCHEMA
from .sqlgen_trigger import drop_function_ddl, drop_trigger_ddl
from .sqlgen_reconcile import drop_badge_reconcile_ddl


@dataclass
class InstalledBadge:
    """A badge's bookkeeping row: what was installed, from which definition."""

    code: str
    name: str
    fingerprint: str
    triggers: list[dict]  # {schema, table, trigger, function} as recorded at install
    definition: dict = field(default_factory=dict)


@dataclass
class LiveBadge:
    """A badge's objects as the catalog has them now."""

    functions: set[str] = field(default_factory=set)
    triggers: set[tuple[str, str, str]] = field(default_factory=set)  # (schema, table, name)
    switched_off: set[tuple[str, str, str]] = field(default_factory=set)  # DISABLE TRIGGER


def read_installed(conn: psycopg.Connection) -> dict[str, InstalledBadge]:
    if not catalog.relation_exists(conn, SCHEMA, "installed"):
        return {}
    rows = conn.execute(sql.SQL(
        "SELECT code, name, fingerprint, triggers, definition FROM {}").format(
        sql.Identifier(SCHEMA, "installed"))).fetchall()
    return {r[0]: InstalledBadge(*r) for r in rows}


def read_setting(conn: psycopg.Connection, key: str) -> str | None:
    if not catalog.relation_exists(conn, SCHEMA, "settings"):
        return None
    row = conn.execute(sql.SQL("SELECT value FROM {} WHERE key = %s").format(
        sql.Identifier(SCHEMA, "settings")), (key,)).fetchone()
    return row[0] if row else None


def badge_of_function(name: str) -> str | None:
    """The badge code a trigger function of ours serves (`code__op`), else None."""
    code, sep, op = name.rpartition("__")
    return code if sep and op in OPERATIONS and CODE_RE.fullmatch(code) else None


def live_badges(conn: psycopg.Connection) -> dict[str, LiveBadge]:
    rows = conn.execute(
        "SELECT p.proname, n.nspname, c.relname, t.tgname, t.tgenabled = 'D' FROM pg_proc p"
        " LEFT JOIN pg_trigger t ON t.tgfoid = p.oid AND NOT t.tgisinternal"
        " LEFT JOIN pg_class c ON c.oid = t.tgrelid"
        " LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE p.pronamespace = to_regnamespace(%s) AND p.prorettype = 'trigger'::regtype",
        (SCHEMA,)).fetchall()
    live: dict[str, LiveBadge] = {}
    for function, schema, table, trigger, off in rows:
        code = badge_of_function(function)
        if code is None:
            continue
        badge = live.setdefault(code, LiveBadge())
        badge.functions.add(function)
        if trigger is not None:
            badge.triggers.add((schema, table, trigger))
        if off:
            badge.switched_off.add((schema, table, trigger))
    return live


def drop_badge(code: str, live: LiveBadge | None) -> list[sql.Composed]:
    """Drop what really exists of this badge (triggers, then functions), its bookkeeping,
    and what its old trigger recorded: its errors and its automatic pause (the operator's
    pause stays)."""
    live = live or LiveBadge()
    stmts = [drop_trigger_ddl(*t) for t in sorted(live.triggers)]
    stmts += [drop_function_ddl(SCHEMA, f) for f in sorted(live.functions)]
    stmts += drop_badge_reconcile_ddl(code)
    for table, extra in (("installed", ""), ("error_log", ""), ("paused", " AND auto")):
        stmts.append(sql.SQL("DELETE FROM {} WHERE code = {}{}").format(
            sql.Identifier(SCHEMA, table), sql.Literal(code), sql.SQL(extra)))
    return stmts


def recorder_wanted(conn: psycopg.Connection) -> bool:
    """Whether install should create the migration recorder: it is missing, and we are
    superuser (only a superuser may create an event trigger; without, we go without it)."""
    return conn.execute(
        "SELECT rolsuper AND NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = %s)"
        " FROM pg_roles WHERE rolname = current_user", (MIGRATION_RECORDER,)).fetchone()[0]


def last_migration(conn: psycopg.Connection, tables) -> tuple[str, str] | None:
    """(when, statement) of the latest recorded ALTER TABLE of any of these (schema, table)."""
    if not tables or not catalog.relation_exists(conn, SCHEMA, "migrations"):
        return None
    schemas, names = zip(*sorted(tables))
    row = conn.execute(sql.SQL(  # object_identity quotes as format's %I does
        "SELECT at, statement FROM {} WHERE object IN (SELECT format('%%I.%%I', s, t)"
        " FROM unnest(%s::text[], %s::text[]) AS x(s, t)) ORDER BY id DESC LIMIT 1").format(
        sql.Identifier(SCHEMA, "migrations")), (list(schemas), list(names))).fetchone()
    return (row[0].isoformat(timespec="seconds"), row[1]) if row else None
