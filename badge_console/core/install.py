"""Plan, install and uninstall: the operator sees exactly the SQL that will run.

Install is one transaction (all or nothing), serialised by an advisory lock, with a
lock_timeout so it never queues behind the application's locks for long. The plan is
recomputed inside that transaction, after the lock, so two operators cannot race.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql

from . import catalog
from .advice import index_advice
from .definitions import BadgeFile
from .errors import DefinitionError, OperationFailed
from .bookkeeping import read_errors, read_pauses, set_paused  # noqa: F401
from .guards import award_guard_ddl, migration_recorder_ddl
from .health import FIX, installed_health
from .installed import drop_badge, live_badges, read_installed, recorder_wanted
from .reconcile import has_pg_cron, last_pass, scheduled, unschedule_statements
from .resolve import Resolution, resolve
from .sqlgen import EVENTS, SCHEMA, Target, fingerprint, function_name, trigger_name
from .sqlgen_events import events_seed
from .sqlgen_reconcile import badge_reconcile_ddl, drop_badge_reconcile_ddl, reconcile_procedure_ddl
from .sqlgen_setup import award_table_ddl, schema_ddl
from .sqlgen_trigger import (create_trigger_ddl, drop_function_ddl, drop_trigger_ddl,
                             trigger_function_ddl)
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
    status: str  # installed/outdated/missing/disabled-in-db/orphaned/disabled/invalid/legacy/broken
    action: str  # create, replace, unchanged, drop, skip, keep, none
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

    @property
    def changes(self) -> list[PlanItem]:
        return [i for i in self.items if i.action in ("create", "replace", "drop")]

    def as_dict(self) -> dict:
        return {"award_table": self.award_table, "channel": self.channel,
                "valid": not self.problems,
                "problems": [p.as_dict() | {"text": str(p)} for p in self.problems],
                "broken": [p.as_dict() | {"text": str(p)} for p in self.broken],
                "setup": self.setup, "badges": [asdict(i) for i in self.items],
                "reconcile": self.reconcile}

    def sql_text(self) -> str:
        parts = self.setup + [s for i in self.changes for s in i.statements]
        return ";\n\n".join(parts) + (";\n" if parts else "")


def _render(conn, statements) -> list[str]:
    return [s.as_string(conn) for s in statements]


def _create(target: Target, res: Resolution, channel: str) -> list[sql.Composed]:
    b = target.badge
    stmts, triggers = [], []
    for op in b.operations:
        stmts.append(trigger_function_ddl(target, op, res.award, channel, res.search_path))
        stmts.append(create_trigger_ddl(target, op))
        triggers.append({"schema": target.table.schema, "table": target.table.name,
                         "trigger": trigger_name(b.code, op),
                         "function": function_name(b.code, op)})
    stmts += badge_reconcile_ddl(target, res.award, channel, res.search_path)
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


def _status(inst, sick, fp: str, present: bool, switched_off: list[str]) -> tuple[str, str]:
    """Status and detail of an enabled, valid badge that install replaces."""
    if sick:
        return "broken", sick.message.removesuffix(FIX) + "install replaces it"
    if inst is None:
        return "missing", "replaces trigger(s) left without bookkeeping"
    if inst.fingerprint != fp:
        return "outdated", "definition changed"
    if present and switched_off:  # ALTER TABLE ... DISABLE TRIGGER: there, never fires
        return "disabled-in-db", (f"trigger {', '.join(switched_off)} disabled in the "
                                  "database; install re-creates it enabled")
    return "missing", "trigger was dropped outside badge-console"


def build_plan(conn: psycopg.Connection, bf: BadgeFile) -> tuple[Plan, Resolution]:
    """Compare badge.json with what is really installed; statements for every change.

    Drops are planned from the catalog (installed.live_badges), so any installed state,
    renamed tables and badges that no longer resolve included, moves to the file's."""
    res = resolve(conn, bf)
    channel = bf.settings.channel
    installed, live = read_installed(conn), live_badges(conn)
    health = installed_health(conn, bf, res, installed)
    res.broken = list(health.values())
    triggers = catalog.table_triggers(conn)
    legacy = [t for t in triggers
              if t.name.startswith("badge_") and t.function.startswith("badge_")
              and t.function_schema != SCHEMA]
    targets = {t.badge.code: t for t in res.targets}
    invalid = {p.index for p in res.problems if p.index is not None}
    items: list[PlanItem] = []
    claimed: set = set()

    for index, badge in enumerate(bf.badges):
        code = badge.valid_code or f"#{index}"
        name = badge.name if isinstance(badge.name, str) else ""
        inst, sick = installed.get(code), health.get(code)
        ours = drop_badge(code, live.get(code)) if inst or code in live else []
        drops, legacy_drop = _legacy_drops(badge, legacy)
        claimed |= {(t.schema, t.table, t.name) for t in drops}
        if not badge.is_enabled:
            stmts = ours + legacy_drop
            items.append(PlanItem(code, name, "disabled", "drop" if stmts else "skip",
                                  "disabled in badge.json", _render(conn, stmts)))
            continue
        if index in invalid or code not in targets:
            first = next((p for p in res.problems if p.index == index), None)
            status, detail = ("broken", sick.message) if sick else (
                "invalid", str(first) if first else "")
            items.append(PlanItem(code, name, status, "none", detail))
            continue
        target = targets[code]
        fp = fingerprint(target.badge, res.award, channel)
        expected = {(target.table.schema, target.table.name, trigger_name(code, op))
                    for op in badge.operations}
        here = live.get(code)
        present = here is not None and here.triggers == expected
        switched_off = sorted(t[2] for t in here.switched_off) if here else []
        if inst is None and not ours:
            status, action = ("legacy", "replace") if drops else ("missing", "create")
            detail = "replaces django-pg-badges trigger(s) " + ", ".join(
                t.name for t in drops) if drops else "not installed"
        elif (inst and inst.fingerprint == fp and present and not drops and not sick
              and not switched_off):
            items.append(PlanItem(code, name, "installed", "unchanged"))
            continue
        else:
            (status, detail), action = _status(inst, sick, fp, present, switched_off), "replace"
        stmts = ours + legacy_drop + _create(target, res, channel)
        items.append(PlanItem(code, name, status, action, detail, _render(conn, stmts)))

    in_file = {b.code for b in bf.badges}
    for code in sorted((set(installed) | set(live)) - in_file):
        sick = health.get(code)
        items.append(PlanItem(code, installed[code].name if code in installed else code,
                              "orphaned", "drop", "installed but no longer in badge.json" + (
                                  f" and {sick.message}" if sick else ""),
                              _render(conn, drop_badge(code, live.get(code)))))
    for t in legacy:
        if (t.schema, t.table, t.name) not in claimed:
            items.append(PlanItem(t.name, t.name, "legacy", "keep",
                                  f"django-pg-badges trigger on {t.schema}.{t.table} matches no "
                                  "badge in badge.json; left in place"))

    setup = schema_ddl() + [reconcile_procedure_ddl()]
    if not res.award_exists:
        setup.append(award_table_ddl(res.award, res.user_type))
    elif not catalog.relation_exists(conn, SCHEMA, EVENTS):  # awards made before: history
        setup.append(events_seed(res.award))
    setup += award_guard_ddl(res.award)
    if recorder_wanted(conn):
        setup += migration_recorder_ddl()
    setup += [sql.SQL(
        "INSERT INTO {t} (key, value) VALUES ({k}, {v})"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value").format(
        t=sql.Identifier(SCHEMA, "settings"), k=sql.Literal(k), v=sql.Literal(v))
        for k, v in (("award_table", res.award.display), ("channel", channel))]
    errors, pauses = read_errors(conn), read_pauses(conn)
    for item in items:
        item.errors = errors.get(item.code, [])
        if item.status != "legacy":
            item.paused = bool(set(pauses) & {item.code, "*"})
            auto = pauses.get(item.code)
            item.auto_paused = asdict(auto) if auto and auto.auto else None
        item.time_based = item.code in targets and targets[item.code].info.time_based
        if item.code in targets and item.action not in ("skip", "drop"):
            item.advice = index_advice(conn, targets[item.code])
    plan = Plan(res.award.display, channel, items, _render(conn, setup), res.problems,
                res.broken)
    last = last_pass(conn)
    plan.reconcile = {"pg_cron": has_pg_cron(conn), "schedule": scheduled(conn),
                      "last_run": last.as_dict() if last else None}
    return plan, res


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
            _run(conn, plan.setup + [s for i in plan.changes for s in i.statements], "Install")
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
