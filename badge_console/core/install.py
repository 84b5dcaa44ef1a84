"""Plan, install and uninstall: the operator sees exactly the SQL that will run.

Install is one transaction (all or nothing), serialised by an advisory lock, with a
lock_timeout so it never queues behind the application's locks for long. The plan is
recomputed inside that transaction, after the lock, so two operators cannot race.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field, replace

import psycopg
from psycopg import sql

from . import catalog
from .advice import index_advice
from .bookkeeping import Pause, read_errors, read_pauses
from .definitions import BadgeFile
from .errors import DefinitionError, OperationFailed, Problem
from .guards import award_guard_ddl, migration_recorder_ddl
from .health import installed_health
from .installed import (InstalledBadge, LiveBadge, drop_badge, live_badges, live_functions,
                        read_installed, recorder_wanted)
from .plan_status import CHANGES, BadgeFacts, PlanAction, PlanStatus, decide
from .reconcile import has_pg_cron, last_pass, scheduled, unschedule_statements
from .resolve import Resolution, resolve
from .sqlgen import EVENTS, SCHEMA, Target, fingerprint
from .sqlgen_events import events_seed
from .sqlgen_reconcile import badge_reconcile_ddl, reconcile_procedure_ddl
from .sqlgen_setup import award_table_ddl, schema_ddl
from .sqlgen_table import unit_function_name, unit_trigger_name, units_of
from .sqlgen_trigger import drop_function_ddl, drop_trigger_ddl
from .table_plan import TableWarning, table_statements, table_warnings
from .topology import require_primary
from .waits import READS, Timeouts, bounded, tables_of

LOCK_KEY = 0x6261646765  # "badge": one advisory lock for every install/uninstall
DEFAULT_LOCK_TIMEOUT = "5s"
INSTALL_LOCK_WAIT = "60s"  # how long a second install waits for the first
DDL_TIMEOUT = "120s"  # statement_timeout of install/uninstall: above INSTALL_LOCK_WAIT


@dataclass
class PlanItem:
    code: str
    name: str
    status: PlanStatus
    action: PlanAction
    detail: str = ""
    statements: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # run-time errors the trigger recorded
    advice: list[str] = field(default_factory=list)  # e.g. an index the condition needs
    paused: bool = False  # the kill switch is on for this badge (or for all)
    auto_paused: dict | None = None  # paused itself after too many errors: the last one
    time_based: bool = False  # condition reads the clock: needs reconcile on a schedule


@dataclass
class Plan:
    award_table: str
    channel: str
    items: list[PlanItem]
    setup: list[str]
    problems: list = field(default_factory=list)
    broken: list = field(default_factory=list)  # installed badges that no longer resolve
    # reconcile: {"pg_cron": bool, "schedule": cron text or None, "last_run": dict or None}
    reconcile: dict = field(default_factory=dict)
    # The tables' trigger functions and triggers (table_plan), run after the badges' own
    # statements: functions first, trigger statements last.
    tables: list[str] = field(default_factory=list)
    warnings: list[TableWarning] = field(default_factory=list)  # a write pays > ~1 ms

    @property
    def changes(self) -> list[PlanItem]:
        return [i for i in self.items if i.action in CHANGES]

    def counts(self) -> Counter[PlanAction]:
        """How many badges take each action (0 for one that none takes)."""
        return Counter(i.action for i in self.items)

    def as_dict(self) -> dict:
        return {"award_table": self.award_table, "channel": self.channel,
                "valid": not self.problems,
                "problems": [p.as_dict() | {"text": str(p)} for p in self.problems],
                "broken": [p.as_dict() | {"text": str(p)} for p in self.broken],
                "setup": self.setup, "badges": [asdict(i) for i in self.items],
                "tables": self.tables, "warnings": [w.as_dict() for w in self.warnings],
                "reconcile": self.reconcile}

    def statements(self) -> list[str]:
        """Everything install runs, in order."""
        return self.setup + [s for i in self.changes for s in i.statements] + self.tables

    def sql_text(self) -> str:
        parts = self.statements()
        return ";\n\n".join(parts) + (";\n" if parts else "")


def _render(conn, statements) -> list[str]:
    return [s.as_string(conn) for s in statements]


def _create(target: Target, res: Resolution, channel: str) -> list[sql.Composed]:
    """A badge's own statements: its reconcile functions and its bookkeeping row, which
    names the table's trigger and function that decide it (table_plan makes those)."""
    b = target.badge
    triggers = [{"schema": target.table.schema, "table": target.table.name,
                 "trigger": unit_trigger_name(op),
                 "function": unit_function_name(target.table, op)} for op in b.operations]
    stmts = badge_reconcile_ddl(target, res.award, channel, res.search_path)
    stmts.append(sql.SQL(
        "INSERT INTO {t} (code, name, fingerprint, definition, trigger_table, triggers)"
        " VALUES ({code}, {name}, {fp}, {definition}, {table}, {triggers})").format(
        t=sql.Identifier(SCHEMA, "installed"), code=sql.Literal(b.code),
        name=sql.Literal(b.name), fp=sql.Literal(fingerprint(b, res.award, channel)),
        definition=sql.Literal(json.dumps(b.entry, ensure_ascii=False)),
        table=sql.Literal(target.table.display),
        triggers=sql.Literal(json.dumps(triggers, ensure_ascii=False))))
    return stmts


def legacy_trigger_names(badge) -> set[str]:
    names = {f"badge_{badge.name}", f"badge_{badge.code}"}
    return names | {n.lower() for n in names} | {n.replace(" ", "_").lower() for n in names}


def _legacy_drops(badge, legacy) -> tuple[list, list[sql.Composed]]:
    """django-pg-badges triggers this badge replaces, and the statements dropping them."""
    drops = [t for t in legacy if t.name in legacy_trigger_names(badge)]
    stmts = [drop_trigger_ddl(t.schema, t.table, t.name) for t in drops]
    return drops, stmts + [drop_function_ddl(t.function_schema, t.function) for t in drops]


@dataclass
class _Read:
    """What build_plan reads before deciding anything; each code's facts come from it."""

    res: Resolution
    channel: str
    installed: dict[str, InstalledBadge]
    live: dict[str, LiveBadge]
    health: dict[str, Problem]
    pauses: dict[str, Pause]
    targets: dict[str, Target] = field(init=False)
    problems: dict[int, str] = field(init=False)  # the first problem of each invalid badge

    def __post_init__(self) -> None:
        self.targets = {t.badge.code: t for t in self.res.targets}
        self.problems = {}
        for p in self.res.problems:
            if p.index is not None:
                self.problems.setdefault(p.index, str(p))

    def time_based(self, code: str) -> bool:
        target = self.targets.get(code)
        return bool(target and target.info.time_based)

    def installed_facts(self, code: str, in_file: bool = True) -> BadgeFacts:
        """Bookkeeping, objects, health and pause of a code, read alike for every code."""
        inst, sick, pause = self.installed.get(code), self.health.get(code), self.pauses.get(code)
        return BadgeFacts(in_file=in_file, recorded=inst.fingerprint if inst else None,
                          has_objects=code in self.live, broken=sick.message if sick else "",
                          paused=bool(set(self.pauses) & {code, "*"}),
                          auto_paused=asdict(pause) if pause and pause.auto else None,
                          time_based=self.time_based(code))

    def file_facts(self, index: int, badge, code: str, legacy: tuple[str, ...]) -> BadgeFacts:
        """A badge of badge.json: enabled, valid, its fingerprint and live triggers too."""
        here, target = self.live.get(code), self.targets.get(code)
        facts = replace(self.installed_facts(code), enabled=badge.is_enabled, legacy=legacy,
                        switched_off=tuple(sorted(t[2] for t in here.switched_off))
                        if here else ())
        if index in self.problems or target is None:
            return replace(facts, problem=self.problems.get(index, ""))
        if not badge.is_enabled:
            return facts
        expected = {(target.table.schema, target.table.name, unit_trigger_name(op))
                    for op in badge.operations}
        return replace(facts, wanted=fingerprint(target.badge, self.res.award, self.channel),
                       triggers_match=here is not None and here.triggers == expected)

    def statements(self, code: str, action: PlanAction, legacy_drop) -> list[sql.Composed]:
        """What install runs for this action: drop what exists of the badge's own objects
        (and the legacy triggers it replaces), then create them anew from the file. The
        table's trigger and function are the plan's `tables` part."""
        if action not in CHANGES:
            return []
        ours = drop_badge(code) if (code in self.installed or code in self.live) else []
        created = [] if action is PlanAction.DROP else _create(
            self.targets[code], self.res, self.channel)
        return ours + list(legacy_drop) + created


def build_plan(conn: psycopg.Connection, bf: BadgeFile) -> tuple[Plan, Resolution]:
    """Compare badge.json with what is really installed; statements for every change.

    Reads the facts first, lets plan_status.decide each code's status, then builds the
    statements of each change. Drops are planned from the catalog (installed.live_badges),
    so any installed state, renamed tables and badges that no longer resolve included,
    moves to the file's."""
    res = resolve(conn, bf)
    channel = bf.settings.channel
    installed = read_installed(conn)
    functions = live_functions(conn)
    read = _Read(res, channel, installed, live_badges(conn, functions),
                 installed_health(conn, bf, res, installed), read_pauses(conn))
    res.broken = list(read.health.values())
    legacy = [t for t in catalog.table_triggers(conn)
              if t.name.startswith("badge_") and t.function.startswith("badge_")
              and t.function_schema != SCHEMA]
    items: list[PlanItem] = []
    claimed: set = set()

    def add(code: str, name: str, facts: BadgeFacts, legacy_drop=()) -> None:
        d = decide(facts)
        items.append(PlanItem(code, name, d.status, d.action, d.detail, _render(
            conn, read.statements(code, d.action, legacy_drop)), paused=d.paused,
            auto_paused=d.auto_paused, time_based=d.time_based))

    for index, badge in bf.each_badge():
        code = badge.valid_code or f"#{index}"
        drops, legacy_drop = _legacy_drops(badge, legacy)
        claimed |= {(t.schema, t.table, t.name) for t in drops}
        add(code, badge.name if isinstance(badge.name, str) else "",
            read.file_facts(index, badge, code, tuple(t.name for t in drops)), legacy_drop)

    in_file = {b.code for _, b in bf.each_badge()}
    for code in sorted((set(installed) | set(read.live)) - in_file):
        add(code, installed[code].name if code in installed else code,
            read.installed_facts(code, in_file=False))
    for t in legacy:
        if (t.schema, t.table, t.name) not in claimed:
            add(t.name, t.name, BadgeFacts(in_file=False, stray_table=f"{t.schema}.{t.table}",
                                           time_based=read.time_based(t.name)))

    errors = read_errors(conn)
    for item in items:
        item.errors = errors.get(item.code, [])
        if item.code in read.targets and item.action not in (PlanAction.SKIP, PlanAction.DROP):
            item.advice = index_advice(conn, read.targets[item.code])
    units = units_of(t for t in res.targets if t.badge.enabled)
    plan = Plan(res.award.display, channel, items, _render(conn, _setup(conn, res, channel)),
                res.problems, res.broken, tables=_render(conn, table_statements(
                    units, functions, res.award, channel, res.search_path)),
                warnings=table_warnings(units))
    last = last_pass(conn)
    plan.reconcile = {"pg_cron": has_pg_cron(conn), "schedule": scheduled(conn),
                      "last_run": last.as_dict() if last else None}
    return plan, res


def _setup(conn: psycopg.Connection, res: Resolution, channel: str) -> list[sql.Composed]:
    """The schema, award table, guards and settings every install (re)creates first."""
    setup = schema_ddl() + [reconcile_procedure_ddl()]
    if not res.award_exists:
        setup.append(award_table_ddl(res.award, res.user_type))
    elif not catalog.relation_exists(conn, SCHEMA, EVENTS):  # awards made before: history
        setup.append(events_seed(res.award))
    setup += award_guard_ddl(res.award)
    if recorder_wanted(conn):
        setup += migration_recorder_ddl()
    return setup + [sql.SQL(
        "INSERT INTO {t} (key, value) VALUES ({k}, {v})"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value").format(
        t=sql.Identifier(SCHEMA, "settings"), k=sql.Literal(k), v=sql.Literal(v))
        for k, v in (("award_table", res.award.display), ("channel", channel))]


def plan_install(conn: psycopg.Connection, bf: BadgeFile, timeouts: Timeouts = READS) -> Plan:
    """The plan, computed in a READ ONLY transaction that is rolled back."""
    with bounded(conn, timeouts, tables_of(bf), read_only=True):
        plan, _ = build_plan(conn, bf)
        raise psycopg.Rollback()
    return plan


def _locked(conn: psycopg.Connection, lock_timeout: str) -> None:
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(INSTALL_LOCK_WAIT)))
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout)))


def _failure(exc: psycopg.Error, what: str, statement: str) -> OperationFailed:
    diag = exc.diag
    message = (diag.message_primary or str(exc).splitlines()[0]).rstrip(".")
    first = statement.splitlines()[0][:120] if statement else ""
    where = f" while running: {first}" if first else ""
    return OperationFailed(f"{what} failed, nothing was changed: {message}{where}.")


def _run(conn, statements: list[str], what: str) -> None:
    current = ""
    try:
        for current in statements:
            conn.execute(current.encode())  # rendered SQL, no parameters to interpolate
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
        raise  # bounded() names the lock or the timeout
    except psycopg.Error as exc:
        raise _failure(exc, what, current) from None


def install(conn: psycopg.Connection, bf: BadgeFile,
            lock_timeout: str = DEFAULT_LOCK_TIMEOUT) -> Plan:
    """Apply the plan in one transaction; refuse (changing nothing) if anything is invalid."""
    require_primary(conn, "install")
    try:
        with bounded(conn, Timeouts(lock_timeout, DDL_TIMEOUT), tables_of(bf),
                     mode="AccessExclusiveLock"):
            _locked(conn, lock_timeout)
            plan, res = build_plan(conn, bf)
            if plan.problems:
                raise DefinitionError(str(bf.path or "badge.json"), plan.problems)
            _run(conn, plan.statements(), "Install")
    except psycopg.Error as exc:
        raise _failure(exc, "Install", "") from None
    return plan


def uninstall_statements(conn: psycopg.Connection) -> list[str]:
    stmts = [drop_trigger_ddl(t.schema, t.table, t.name) for t in catalog.table_triggers(conn)
             if t.function_schema == SCHEMA]
    stmts += unschedule_statements(conn)  # the pg_cron job would call a dropped procedure
    if conn.execute("SELECT to_regnamespace(%s)", (SCHEMA,)).fetchone()[0] is not None:
        stmts.append(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    return _render(conn, stmts)


def uninstall(conn: psycopg.Connection, lock_timeout: str = DEFAULT_LOCK_TIMEOUT) -> int:
    """Drop our triggers and schema; awards and application data stay. Returns triggers dropped."""
    tables: list[str] = []  # for naming a lock that was not granted
    require_primary(conn, "uninstall")
    try:
        with bounded(conn, Timeouts(lock_timeout, DDL_TIMEOUT), tables,
                     mode="AccessExclusiveLock"):
            _locked(conn, lock_timeout)
            tables += [f"{t.schema}.{t.table}" for t in catalog.table_triggers(conn)
                       if t.function_schema == SCHEMA]
            stmts = uninstall_statements(conn)
            _run(conn, stmts, "Uninstall")
    except psycopg.Error as exc:
        raise _failure(exc, "Uninstall", "") from None
    return sum(1 for s in stmts if s.startswith("DROP TRIGGER"))
