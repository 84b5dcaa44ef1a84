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
from .definitions import CODE_RE, BadgeFile
from .errors import DefinitionError, OperationFailed
from .resolve import Resolution, resolve
from .sqlgen import (EVENTS, SCHEMA, Target, award_table_ddl,
                     create_trigger_ddl, drop_function_ddl, drop_trigger_ddl, events_seed,
                     fingerprint, function_name, schema_ddl, trigger_function_ddl, trigger_name)

LOCK_KEY = 0x6261646765  # "badge": one advisory lock for every install/uninstall
DEFAULT_LOCK_TIMEOUT = "5s"
INSTALL_LOCK_WAIT = "60s"  # how long a second install waits for the first


@dataclass
class InstalledBadge:
    code: str
    name: str
    fingerprint: str
    triggers: list[dict]  # {schema, table, trigger, function}


@dataclass
class PlanItem:
    code: str
    name: str
    status: str  # installed, outdated, missing, orphaned, disabled, invalid, legacy
    action: str  # create, replace, unchanged, drop, skip, keep, none
    detail: str = ""
    statements: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # run-time errors the trigger recorded
    advice: list[str] = field(default_factory=list)  # e.g. an index the condition needs
    paused: bool = False  # the kill switch is on for this badge (or for all)


@dataclass
class Plan:
    award_table: str
    channel: str
    items: list[PlanItem]
    setup: list[str]
    problems: list = field(default_factory=list)

    @property
    def changes(self) -> list[PlanItem]:
        return [i for i in self.items if i.action in ("create", "replace", "drop")]

    def as_dict(self) -> dict:
        return {"award_table": self.award_table, "channel": self.channel,
                "valid": not self.problems,
                "problems": [p.as_dict() | {"text": str(p)} for p in self.problems],
                "setup": self.setup, "badges": [asdict(i) for i in self.items]}

    def sql_text(self) -> str:
        parts = self.setup + [s for i in self.changes for s in i.statements]
        return ";\n\n".join(parts) + (";\n" if parts else "")


def read_installed(conn: psycopg.Connection) -> dict[str, InstalledBadge]:
    if not catalog.relation_exists(conn, SCHEMA, "installed"):
        return {}
    rows = conn.execute(sql.SQL("SELECT code, name, fingerprint, triggers FROM {}").format(
        sql.Identifier(SCHEMA, "installed"))).fetchall()
    return {r[0]: InstalledBadge(r[0], r[1], r[2], r[3]) for r in rows}


def read_errors(conn: psycopg.Connection) -> dict[str, list[dict]]:
    """Run-time errors recorded by on_error=skip triggers, grouped per badge."""
    if not catalog.relation_exists(conn, SCHEMA, "error_log"):
        return {}
    rows = conn.execute(sql.SQL(
        "SELECT code, sqlstate, message, count(*), min(at), max(at) FROM {}"
        " GROUP BY code, sqlstate, message ORDER BY max(at) DESC").format(
        sql.Identifier(SCHEMA, "error_log"))).fetchall()
    grouped: dict[str, list[dict]] = {}
    for code, sqlstate, message, count, first, last in rows:
        grouped.setdefault(code, []).append({
            "sqlstate": sqlstate, "message": message, "count": count,
            "first_at": first.isoformat(), "last_at": last.isoformat()})
    return grouped


def read_paused(conn: psycopg.Connection) -> set[str]:
    """Codes whose awarding is paused; '*' means all of them."""
    if not catalog.relation_exists(conn, SCHEMA, "paused"):
        return set()
    return {r[0] for r in conn.execute(sql.SQL("SELECT code FROM {}").format(
        sql.Identifier(SCHEMA, "paused")))}


def _render(conn, statements) -> list[str]:
    return [s.as_string(conn) for s in statements]


def _drop_installed(inst: InstalledBadge) -> list[sql.Composed]:
    stmts = [drop_trigger_ddl(t["schema"], t["table"], t["trigger"]) for t in inst.triggers]
    stmts += [drop_function_ddl(SCHEMA, f) for f in dict.fromkeys(
        t["function"] for t in inst.triggers)]
    stmts.append(sql.SQL("DELETE FROM {} WHERE code = {}").format(
        sql.Identifier(SCHEMA, "installed"), sql.Literal(inst.code)))
    return stmts


def _create(target: Target, res: Resolution, channel: str) -> list[sql.Composed]:
    b = target.badge
    stmts, triggers = [], []
    for op in b.operations:
        stmts.append(trigger_function_ddl(target, op, res.award, channel, res.search_path))
        stmts.append(create_trigger_ddl(target, op))
        triggers.append({"schema": target.table.schema, "table": target.table.name,
                         "trigger": trigger_name(b.code, op),
                         "function": function_name(b.code, op)})
    stmts.append(sql.SQL(
        "INSERT INTO {t} (code, name, fingerprint, definition, trigger_table, triggers)"
        " VALUES ({code}, {name}, {fp}, {definition}, {table}, {triggers})").format(
        t=sql.Identifier(SCHEMA, "installed"), code=sql.Literal(b.code),
        name=sql.Literal(b.name), fp=sql.Literal(fingerprint(b, res.award, channel)),
        definition=sql.Literal(json.dumps(b.to_dict(), ensure_ascii=False)),
        table=sql.Literal(target.table.display),
        triggers=sql.Literal(json.dumps(triggers, ensure_ascii=False))))
    return stmts


def legacy_trigger_names(badge) -> set[str]:
    names = {f"badge_{badge.name}", f"badge_{badge.code}"}
    return names | {n.lower() for n in names} | {n.replace(" ", "_").lower() for n in names}


def build_plan(conn: psycopg.Connection, bf: BadgeFile) -> tuple[Plan, Resolution]:
    """Compare badge.json with what is installed; statements for every change."""
    res = resolve(conn, bf)
    channel = bf.channel if isinstance(bf.channel, str) else "badge_awarded"
    installed = read_installed(conn)
    triggers = catalog.table_triggers(conn)
    live = {(t.schema, t.table, t.name) for t in triggers}
    legacy = [t for t in triggers
              if t.name.startswith("badge_") and t.function.startswith("badge_")
              and t.function_schema != SCHEMA]
    targets = {t.badge.code: t for t in res.targets}
    broken = {p.index for p in res.problems if p.index is not None}
    items: list[PlanItem] = []
    claimed: set = set()

    for index, badge in enumerate(bf.badges):
        code = badge.code if isinstance(badge.code, str) and CODE_RE.fullmatch(badge.code) \
            else f"#{index}"
        name = badge.name if isinstance(badge.name, str) else ""
        inst = installed.get(code)
        if index in broken or code not in targets:
            first = next((p for p in res.problems if p.index == index), None)
            items.append(PlanItem(code, name, "invalid", "none", str(first) if first else ""))
            continue
        target = targets[code]
        drops = [t for t in legacy if t.name in legacy_trigger_names(badge)]
        claimed |= {(t.schema, t.table, t.name) for t in drops}
        legacy_drop = [drop_trigger_ddl(t.schema, t.table, t.name) for t in drops]
        legacy_drop += [drop_function_ddl(t.function_schema, t.function) for t in drops]
        if not badge.is_enabled:
            if inst:
                items.append(PlanItem(code, name, "disabled", "drop", "disabled in badge.json",
                                      _render(conn, _drop_installed(inst) + legacy_drop)))
            else:
                items.append(PlanItem(code, name, "disabled", "skip", "disabled in badge.json"))
            continue
        fp = fingerprint(badge, res.award, channel)
        present = inst and all((t["schema"], t["table"], t["trigger"]) in live
                               for t in inst.triggers)
        if inst is None:
            status, action = ("legacy", "replace") if drops else ("missing", "create")
            detail = "replaces django-pg-badges trigger(s) " + ", ".join(
                t.name for t in drops) if drops else "not installed"
            # Our trigger names with no bookkeeping row (e.g. the schema badge_console was
            # dropped or restored without it): ours by name, so replaced, not an error.
            strays = [key for key in ((target.table.schema, target.table.name,
                                       trigger_name(badge.code, op)) for op in badge.operations)
                      if key in live]
            if strays:
                detail += "; replaces trigger(s) left without bookkeeping: " + ", ".join(
                    name for _, _, name in strays)
            stmts = legacy_drop + [drop_trigger_ddl(*key) for key in strays] + _create(
                target, res, channel)
        elif inst.fingerprint == fp and present and not drops:
            items.append(PlanItem(code, name, "installed", "unchanged"))
            continue
        else:
            status, action = "outdated", "replace"
            detail = "definition changed" if inst.fingerprint != fp else \
                "trigger was dropped outside badge-console"
            if inst.fingerprint == fp and not present:
                status = "missing"
            stmts = _drop_installed(inst) + legacy_drop + _create(target, res, channel)
        items.append(PlanItem(code, name, status, action, detail, _render(conn, stmts)))

    in_file = {b.code for b in bf.badges}
    for code, inst in installed.items():
        if code not in in_file:
            items.append(PlanItem(code, inst.name, "orphaned", "drop",
                                  "installed but no longer in badge.json",
                                  _render(conn, _drop_installed(inst))))
    for t in legacy:
        if (t.schema, t.table, t.name) not in claimed:
            items.append(PlanItem(t.name, t.name, "legacy", "keep",
                                  f"django-pg-badges trigger on {t.schema}.{t.table} matches no "
                                  "badge in badge.json; left in place"))

    setup = schema_ddl()
    if not res.award_exists:
        setup.append(award_table_ddl(res.award, res.user_type))
    elif not catalog.relation_exists(conn, SCHEMA, EVENTS):  # awards made before: history
        setup.append(events_seed(res.award))
    setup += [sql.SQL(
        "INSERT INTO {t} (key, value) VALUES ({k}, {v})"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value").format(
        t=sql.Identifier(SCHEMA, "settings"), k=sql.Literal(k), v=sql.Literal(v))
        for k, v in (("award_table", res.award.display), ("channel", channel))]
    errors, paused = read_errors(conn), read_paused(conn)
    for item in items:
        item.errors = errors.get(item.code, [])
        item.paused = bool(paused & {item.code, "*"}) and item.status != "legacy"
        if item.code in targets and item.action not in ("skip", "drop"):
            item.advice = index_advice(conn, targets[item.code])
    plan = Plan(res.award.display, channel, items, _render(conn, setup), res.problems)
    return plan, res


def plan_install(conn: psycopg.Connection, bf: BadgeFile) -> Plan:
    """The plan, computed in a READ ONLY transaction that is rolled back."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
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
    if diag.sqlstate == "55P03":
        message = "gave up waiting for a lock (the table is busy; retry or raise --lock-timeout)"
    first = statement.splitlines()[0][:120] if statement else ""
    where = f" while running: {first}" if first else ""
    return OperationFailed(f"{what} failed, nothing was changed: {message}{where}.")


def _run(conn, statements: list[str], what: str) -> None:
    current = ""
    try:
        for current in statements:
            conn.execute(current.encode())  # rendered SQL, no parameters to interpolate
    except psycopg.Error as exc:
        raise _failure(exc, what, current) from None


def install(conn: psycopg.Connection, bf: BadgeFile,
            lock_timeout: str = DEFAULT_LOCK_TIMEOUT) -> Plan:
    """Apply the plan in one transaction; refuse (changing nothing) if anything is invalid."""
    try:
        with conn.transaction():
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
    if conn.execute("SELECT to_regnamespace(%s)", (SCHEMA,)).fetchone()[0] is not None:
        stmts.append(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(SCHEMA)))
    return _render(conn, stmts)


def uninstall(conn: psycopg.Connection, lock_timeout: str = DEFAULT_LOCK_TIMEOUT) -> int:
    """Drop our triggers and schema; awards and application data stay. Returns triggers dropped."""
    try:
        with conn.transaction():
            _locked(conn, lock_timeout)
            stmts = uninstall_statements(conn)
            _run(conn, stmts, "Uninstall")
    except psycopg.Error as exc:
        raise _failure(exc, "Uninstall", "") from None
    return sum(1 for s in stmts if s.startswith("DROP TRIGGER"))


def set_paused(conn: psycopg.Connection, code: str | None, paused: bool) -> None:
    """Kill switch read by every trigger: no DDL on application tables. code None = all."""
    key = code or "*"
    if not catalog.relation_exists(conn, SCHEMA, "paused"):
        raise OperationFailed("Nothing is installed in this database; install badges first.")
    with conn.transaction():
        if paused:
            conn.execute(sql.SQL("INSERT INTO {} (code) VALUES (%s) ON CONFLICT DO NOTHING")
                         .format(sql.Identifier(SCHEMA, "paused")), (key,))
        else:
            conn.execute(sql.SQL("DELETE FROM {} WHERE code = %s").format(
                sql.Identifier(SCHEMA, "paused")), (key,))

