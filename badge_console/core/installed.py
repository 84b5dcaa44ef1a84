"""What is really installed: our trigger functions and the triggers calling them.

Read from pg_proc and pg_trigger by identity, not from the names recorded at install time:
a table's function (generator 8) names its badges in its COMMENT (sqlgen_table); a
generator-7 function is named `code__op` and serves one badge. After the application
renamed a table, or someone dropped a trigger by hand, install still drops exactly what
exists and moves to the file's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import catalog
from .definitions import CODE_RE, OPERATIONS
from .guards import MIGRATION_RECORDER
from .sqlgen import SCHEMA
from .sqlgen_reconcile import drop_badge_reconcile_ddl
from .sqlgen_table import parse_comment


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
    """A badge's objects as the catalog has them now: the triggers whose function decides
    it (its table's, or its own generator-7 ones)."""

    triggers: set[tuple[str, str, str]] = field(default_factory=set)  # (schema, table, name)
    switched_off: set[tuple[str, str, str]] = field(default_factory=set)  # DISABLE TRIGGER


@dataclass(frozen=True)
class LiveTrigger:
    schema: str
    table: str
    name: str
    off: bool  # ALTER TABLE ... DISABLE TRIGGER
    row: bool  # FOR EACH ROW
    new_table: bool  # REFERENCING NEW TABLE
    old_table: bool


@dataclass
class LiveFunction:
    """One trigger function of ours: the codes it decides and the triggers calling it.
    `digest` is the generator-8 DDL digest from its COMMENT; None for a generator-7
    per-badge function."""

    name: str
    codes: tuple[str, ...]
    digest: str | None
    comment: str | None
    triggers: list[LiveTrigger] = field(default_factory=list)


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
    """The badge code a generator-7 trigger function of ours serves (`code__op`), else None."""
    code, sep, op = name.rpartition("__")
    return code if sep and op in OPERATIONS and CODE_RE.fullmatch(code) else None


def live_functions(conn: psycopg.Connection) -> dict[str, LiveFunction]:
    """Our trigger functions by name, each with the codes it decides and its triggers."""
    rows = conn.execute(
        "SELECT p.proname, obj_description(p.oid, 'pg_proc'), n.nspname, c.relname, t.tgname,"
        " t.tgenabled = 'D', (t.tgtype & 1) = 1, t.tgnewtable IS NOT NULL,"
        " t.tgoldtable IS NOT NULL FROM pg_proc p"
        " LEFT JOIN pg_trigger t ON t.tgfoid = p.oid AND NOT t.tgisinternal"
        " LEFT JOIN pg_class c ON c.oid = t.tgrelid"
        " LEFT JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE p.pronamespace = to_regnamespace(%s) AND p.prorettype = 'trigger'::regtype"
        " ORDER BY 1, 3, 4, 5", (SCHEMA,)).fetchall()
    found: dict[str, LiveFunction] = {}
    for function, comment, schema, table, trigger, *shape in rows:
        unit = parse_comment(comment)
        code = badge_of_function(function)
        if unit is None and code is None:
            continue
        live = found.setdefault(function, LiveFunction(
            function, unit[2] if unit else (code,), unit[1] if unit else None, comment))
        if trigger is not None:
            live.triggers.append(LiveTrigger(schema, table, trigger, *shape))
    return found


def live_badges(conn: psycopg.Connection,
                functions: dict[str, LiveFunction] | None = None) -> dict[str, LiveBadge]:
    """Each code some function of ours decides, with the triggers that call it."""
    live: dict[str, LiveBadge] = {}
    for f in (live_functions(conn) if functions is None else functions).values():
        for code in f.codes:
            badge = live.setdefault(code, LiveBadge())
            for t in f.triggers:
                badge.triggers.add((t.schema, t.table, t.name))
                if t.off:
                    badge.switched_off.add((t.schema, t.table, t.name))
    return live


def drop_badge(code: str) -> list[sql.Composed]:
    """Drop this badge's own objects (its reconcile functions), its bookkeeping, and what
    its trigger recorded: its errors and its automatic pause (the operator's pause stays).
    Triggers and trigger functions are the table's (table_plan decides them)."""
    stmts = drop_badge_reconcile_ddl(code)
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
