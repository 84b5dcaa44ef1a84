"""The one SQL generator: award table, bookkeeping schema, trigger functions, triggers.

Install, plan, validation, dry run, backfill and the benchmarks all build their SQL
here. Identifiers and values go through psycopg.sql; the only SQL text taken from
badge.json is the condition, after pglast has parsed it as exactly one expression and
re-printed it (see condition.py).

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
are skipped (a fenced index probe, see _lacks), and the condition runs once per
remaining combination. Either way the evaluation sits in one
subtransaction (on_error skip), and winners are inserted with ON CONFLICT DO NOTHING
(the unique key, not a racy NOT EXISTS, is what guarantees one award under concurrent
writers), each recorded as an "award" event in badge_console.events and notified in the
same transaction. Tables that cannot have transition tables get a row trigger running the
one-row path. Measured in bench/trigger_overhead.py (figures in bench/README.md).

Concurrent writers (SPEC section 7, "No award is lost"): a condition that reads other
rows (Target.locks) is judged only under a transaction advisory lock per (badge, user),
taken before the condition and held to commit, the condition running in a later statement
so that READ COMMITTED shows it what the lock's previous holder committed. The lock is
tried without waiting first (the usual case); else waited for at most LOCK_WAIT; else the
changed row is queued in badge_console.queue in the same transaction and reconcile
(sqlgen_reconcile) judges it later. bench/concurrency.py measures it.

Events: every award, manual grant and revoke is a row of the append-only events table
(nothing here updates or deletes it), notified with the same JSON the feed's catch-up
reads back from that table (event_payload), so a feed can catch up revocations too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from psycopg import sql

from .catalog import TableRef
from .condition import ConditionInfo
from .model import ValidBadge

SCHEMA = "badge_console"
GENERATOR_VERSION = "7"  # 3: one-row path, generic plans, inline conditions; 4: STRICT fetch;
# 5: per (badge, user) lock before a condition that reads other rows, queue, reconcile;
# 6: pause before an inline condition, bounded error_log and auto-pause, no award for a gone user
# 7: every award (trigger, backfill, reconcile) recorded in the events table
EVENTS = "events"
TRIGGER_PREFIX = "bc_"
MAX_ERRORS = 1000  # failing statements a badge records before it pauses itself
NEW_TABLE = "badge_console_new"
OLD_TABLE = "badge_console_old"
OP_SUFFIX = {"insert": "ins", "update": "upd", "delete": "del"}
# The longest a trigger waits for another transaction writing for the same badge and user
# (it holds their lock until it commits); after that the (badge, user) is queued for
# reconcile instead. Far below deadlock_timeout (1s), so a lock cycle ends as a timeout.
LOCK_WAIT = "30 ms"


@dataclass(frozen=True)
class AwardTable:
    schema: str
    name: str
    has_awarded_at: bool = True  # False for the table django-pg-badges made
    # (schema, table, column) the award table's user_id references by foreign key, if any:
    # an award for a user gone from there is skipped, never a foreign-key failure.
    users: tuple[str, str, str] | None = None
    users_deferred: bool = False  # that key is checked at commit (Django's)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def display(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class Target:
    """A valid badge resolved against the database: all the generator needs."""

    badge: ValidBadge
    info: ConditionInfo
    table: TableRef
    primary_key: tuple[str, ...]
    volatile: bool = False  # condition calls a volatile function: no de-duplication
    # The condition is a plain expression of NEW/OLD (no sub-select, no aggregate): it
    # runs inline on every changed row before de-duplication, which is cheaper than a
    # sub-select per distinct combination and leaves only users to probe.
    inline: bool = False
    calls_user_functions: bool = False  # a function of the application's: may read rows

    @property
    def locks(self) -> bool:
        """The condition reads other rows: two transactions writing for one user would each
        miss the other's uncommitted row, so the trigger takes the (badge, user) lock and
        evaluates after it (a later statement: a fresh READ COMMITTED snapshot). A plain
        expression of NEW/OLD needs no lock: the unique key settles concurrent awards."""
        return not self.inline or self.calls_user_functions

    @property
    def condition(self) -> sql.SQL:
        return sql.SQL(self.info.expression_sql if self.inline else self.info.select_sql)

    def needs_old_and_new(self, op: str) -> bool:
        return op == "update" and self.info.uses_old

    def row_level(self, op: str) -> bool:
        """Transition tables are impossible or cannot pair OLD with NEW: use FOR EACH ROW."""
        return self.table.is_child or self.table.kind == "f" or (
            self.needs_old_and_new(op) and not self.primary_key)


def trigger_name(code: str, op: str) -> str:
    return f"{TRIGGER_PREFIX}{code}_{OP_SUFFIX[op]}"


def function_name(code: str, op: str) -> str:
    return f"{code}__{op}"


def lock_key(code: str) -> int:
    """The badge's half of its advisory lock key (pg_advisory_xact_lock(int, int))."""
    return int.from_bytes(hashlib.sha256(code.encode()).digest()[:4], "big", signed=True)


def user_lock_key(user: sql.Composable) -> sql.Composed:
    """The user's half: any user type, through its text form."""
    return sql.SQL("hashtext(({})::text)").format(user)


def fingerprint(badge: ValidBadge, award: AwardTable, channel: str) -> str:
    """What an installed trigger was generated from; any change makes it outdated."""
    doc = {"badge": badge.definition, "award": award.display, "channel": channel,
           "generator": GENERATOR_VERSION}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


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
        "ALTER TABLE {s}.paused ADD COLUMN IF NOT EXISTS auto boolean NOT NULL DEFAULT false,"
        " ADD COLUMN IF NOT EXISTS sqlstate text, ADD COLUMN IF NOT EXISTS message text",
        "CREATE INDEX IF NOT EXISTS error_log_code ON {s}.error_log (code, id)",
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
        "CREATE INDEX IF NOT EXISTS queue_code_id ON {s}.queue (code, op, id)",
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


def events_seed(award: AwardTable) -> sql.Composed:
    """The awards made before the events table existed, as history ("award" events with no
    table or op), so a feed started with --since 0 still shows them."""
    stamp = sql.SQL("awarded_at") if award.has_awarded_at else sql.SQL("NULL")
    return sql.SQL(
        "INSERT INTO {events} (event, award_id, user_id, code, name, awarded_at, at)"
        " SELECT 'award', id, to_jsonb(user_id), code, name, {stamp}, coalesce({stamp}, now())"
        " FROM {award} ORDER BY id").format(
        events=sql.Identifier(SCHEMA, EVENTS), stamp=stamp, award=award.ident)


def event_payload(alias: str) -> sql.Composed:
    """An events row as the JSON text notified and read back by catch-ups (SPEC §3 plus
    event, event_id and at, the event's time)."""
    e = sql.Identifier(alias)
    return sql.SQL(
        "json_build_object('id', {e}.award_id, 'user_id', {e}.user_id, 'code', {e}.code,"
        " 'name', {e}.name, 'awarded_at', {e}.awarded_at, 'table', {e}.tbl, 'op', {e}.op,"
        " 'event', {e}.event, 'event_id', {e}.id, 'at', {e}.at)::text").format(e=e)


def award_table_ddl(award: AwardTable, user_type: str) -> sql.Composed:
    """The award table when missing; `user_type` comes from format_type() of a user field."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
        " user_id {ut} NOT NULL, name text NOT NULL, code text NOT NULL,"
        " awarded_at timestamptz NOT NULL DEFAULT now(),"
        " UNIQUE (user_id, code))").format(t=award.ident, ut=sql.SQL(user_type))


def _alias(op: str) -> str:
    return "old" if op == "delete" else "new"


def _record(op: str) -> sql.SQL:
    """The PL/pgSQL record holding the changed row: NEW, or OLD for a delete."""
    return sql.SQL(_alias(op).upper())


def _lacks(award: AwardTable, user: sql.Composable, code: str) -> sql.Composed:
    """True when this user does not hold the badge yet: one probe of the award table.

    Written as a scalar subquery on purpose, not NOT EXISTS: the planner never turns it
    into a join or a hashed subplan, so every plan probes the award table's unique index
    once per candidate, whatever the plan was cached for. (A hash anti-join planned for
    a bulk statement and reused for one-row statements would read every award each
    time; a nested loop over a seq scan, planned while the table looked empty because it
    was ANALYZEd before the first award, would grow quadratic.) Trigger functions are
    planned with enable_seqscan off, which keeps this probe on the index even in that
    state."""
    return sql.SQL("({held} LIMIT 1) IS NULL").format(held=held_probe(award, user, code))


def held_probe(award: AwardTable, user: sql.Composable, code: str) -> sql.Composed:
    """The award-table probe: a row when this user holds the badge."""
    return sql.SQL("SELECT 1 FROM {award} AS held"
                   " WHERE held.user_id = {user} AND held.code = {code}").format(
        award=award.ident, user=user, code=sql.Literal(code))


def _from_items(target: Target, op: str, new_src: sql.Composable, old_src: sql.Composable,
                single_row: bool, award: AwardTable | None = None) -> sql.Composable:
    """The rows the condition runs on, aliased NEW/OLD.

    Projected form (the usual one): the changed rows reduced to the distinct combinations
    of the columns the condition reads and, when `award` is given, to users who do not
    hold the badge yet. OFFSET 0 fences that subquery: without it the planner may run the
    condition before the anti-join (it does when the award table was ANALYZEd while
    empty), evaluating the condition for every holder."""
    info, uf = target.info, target.badge.user_field
    if target.needs_old_and_new(op):
        pair = sql.SQL("{n} AS new CROSS JOIN {o} AS old") if single_row else sql.SQL(
            "{n} AS new JOIN {o} AS old ON {on}")
        on = sql.SQL(" AND ").join(
            sql.SQL("new.{c} = old.{c}").format(c=sql.Identifier(c)) for c in target.primary_key)
        return pair.format(n=new_src, o=old_src, on=on)
    alias = _alias(op)
    src = new_src if alias == "new" else old_src
    whole = info.whole_new if alias == "new" else info.whole_old
    if single_row or whole:
        return sql.SQL("{src} AS {a}").format(src=src, a=sql.Identifier(alias))
    cols = info.new_columns if alias == "new" else info.old_columns
    wanted = list(dict.fromkeys([uf, *sorted(cols)]))
    rows = sql.SQL("SELECT DISTINCT {cols} FROM {src}") if not target.volatile else sql.SQL(
        "SELECT {cols} FROM {src}")  # a volatile condition runs once per row
    rows = rows.format(cols=sql.SQL(", ").join(map(sql.Identifier, wanted)), src=src)
    if award is not None:
        user = sql.SQL("changed.{}").format(sql.Identifier(uf))
        rows = sql.SQL("SELECT * FROM ({rows}) AS changed WHERE {user} IS NOT NULL"
                       " AND {lacks} OFFSET 0").format(
            rows=rows, user=user, lacks=_lacks(award, user, target.badge.code))
    return sql.SQL("({rows}) AS {a}").format(rows=rows, a=sql.Identifier(alias))


def rows_op(target: Target) -> str | None:
    """The operation whose condition judges rows that exist now (backfill, reconcile's
    re-check): insert, else update; None for a delete badge or an OLD/NEW comparison
    without a primary key to pair them."""
    ops = target.badge.operations
    op = "insert" if "insert" in ops else "update" if "update" in ops else None
    if op is not None and target.needs_old_and_new(op) and not target.primary_key:
        return None
    return op


ROWS_ALIAS = "bc_rows"


def rows_where(table: sql.Composable, condition: sql.Composable) -> sql.Composed:
    """The table's rows that meet `condition` (on alias bc_rows), as a from-item usable
    both as `{src} AS new` and as `FROM {src}`: a join with a zero-column row exposes
    exactly the table's columns and needs no alias (a subquery needs one before PG 16)."""
    return sql.SQL("({t} AS {r} JOIN (SELECT) AS bc_all ON {cond})").format(
        t=table, r=sql.Identifier(ROWS_ALIAS), cond=condition)


def _user(target: Target, op: str) -> sql.Composed:
    return sql.SQL("{a}.{uf}").format(a=sql.Identifier(_alias(op)),
                                      uf=sql.Identifier(target.badge.user_field))


def _fenced(target: Target, op: str, single_row: bool) -> bool:
    """True when _from_items already skips holders (the projected form)."""
    alias = _alias(op)
    whole = target.info.whole_new if alias == "new" else target.info.whole_old
    return not (target.needs_old_and_new(op) or single_row or whole)


def winners_query(target: Target, op: str, award: AwardTable | None,
                  new_src: sql.Composable, old_src: sql.Composable,
                  single_row: bool = False) -> sql.Composed:
    """Distinct users that would earn the badge from these rows (skipping holders)."""
    if target.inline and not (single_row or target.needs_old_and_new(op)):
        return _inline_winners(target, op, award, new_src if _alias(op) == "new" else old_src)
    b = target.badge
    user = _user(target, op)
    fenced = award is not None and _fenced(target, op, single_row)
    held = sql.SQL("") if award is None or fenced else sql.SQL(
        "\n    AND {}").format(_lacks(award, user, b.code))
    return sql.SQL(
        "SELECT DISTINCT {user} AS user_id\n  FROM {src}\n  WHERE {user} IS NOT NULL{held}"
        "\n    AND ({cond})").format(
        user=user, src=_from_items(target, op, new_src, old_src, single_row,
                                   award if fenced else None),
        held=held, cond=target.condition)


def _inline_winners(target: Target, op: str, award: AwardTable | None,
                    src: sql.Composable) -> sql.Composed:
    """An inline condition filters the rows first; only the distinct users left are
    probed for the badge (OFFSET 0 keeps the probe after the de-duplication)."""
    user = _user(target, op)
    rows = sql.SQL("SELECT DISTINCT {user} AS user_id FROM {src} AS {a}"
                   " WHERE {user} IS NOT NULL AND ({cond})").format(
        user=user, src=src, a=sql.Identifier(_alias(op)), cond=target.condition)
    if award is None:
        return rows
    return sql.SQL("SELECT user_id FROM ({rows} OFFSET 0) AS changed\n  WHERE {lacks}").format(
        rows=rows, lacks=_lacks(award, sql.SQL("changed.user_id"), target.badge.code))


def award_query(target: Target, op: str, award: AwardTable, channel: str,
                new_src: sql.Composable, old_src: sql.Composable, *, op_label: str | None = None,
                single_row: bool = False, into: str | None = None,
                events: bool = True) -> sql.Composed:
    """Insert the winners' awards and notify each one; yields the number awarded."""
    return _grant(target, op, award, channel,
                  winners_query(target, op, award, new_src, old_src, single_row),
                  op_label=op_label, into=into, events=events)


def _grant(target: Target, op: str, award: AwardTable, channel: str, winners: sql.Composable,
           *, op_label: str | None = None, into: str | None = None,
           events: bool = True) -> sql.Composed:
    """Insert an award for each user_id `winners` yields and notify each one granted."""
    b = target.badge
    return grant_query(award, channel, winners, code=b.code, name=b.name,
                       table=target.table.display, op=op_label or op, into=into, events=events)


def grant_query(award: AwardTable, channel: str, winners: sql.Composable, *, code: str,
                name: str, table: str | None, op: str | None, event: str = "award",
                into: str | None = None, events: bool = True) -> sql.Composed:
    """Awards for the users `winners` yields (ON CONFLICT DO NOTHING), each recorded as an
    event and notified; yields how many were granted. events=False (only to plan a check
    before the events table exists) notifies without recording."""
    stamp = sql.SQL(", awarded_at") if award.has_awarded_at else sql.SQL(", now() AS awarded_at")
    granted = sql.SQL(
        "WITH winners AS (\n  {winners}\n), granted AS (\n"
        "  INSERT INTO {award} (user_id, name, code)\n"
        "  SELECT user_id, {name}, {code} FROM winners{alive}\n"
        "  ON CONFLICT DO NOTHING\n  RETURNING id, user_id, code, name{stamp}\n)").format(
        winners=winners, award=award.ident, name=sql.Literal(name), code=sql.Literal(code),
        stamp=stamp, alive=_user_exists(award))
    return _notified(granted, "granted", channel, event, table, op, into, events)


def revoke_query(award: AwardTable, channel: str, award_ids: sql.Composable, *,
                 op: str) -> sql.Composed:
    """Delete the awards whose ids `award_ids` yields, each recorded as a "revoke" event and
    notified; yields how many were revoked."""
    stamp = sql.SQL("a.awarded_at") if award.has_awarded_at else sql.SQL("NULL::timestamptz")
    gone = sql.SQL(
        "WITH gone AS (\n  DELETE FROM {award} AS a WHERE a.id IN ({ids})\n"
        "  RETURNING a.id, a.user_id, a.code, a.name, {stamp} AS awarded_at\n)").format(
        award=award.ident, ids=award_ids, stamp=stamp)
    return _notified(gone, "gone", channel, "revoke", None, op, None, True)


def _notified(changes: sql.Composable, rows: str, channel: str, event: str, table: str | None,
              op: str | None, into: str | None, events: bool) -> sql.Composed:
    """`changes` (a WITH whose CTE `rows` returns award rows), then: record each as an event
    and notify its payload in the same transaction; the count of them."""
    into_sql = sql.SQL(" INTO {}").format(sql.Identifier(into)) if into else sql.SQL("")
    table_sql, op_sql = sql.Literal(table), sql.Literal(op)
    if not events:
        payload = sql.SQL(
            "json_build_object('id', id, 'user_id', user_id, 'code', code, 'name', name,"
            " 'awarded_at', awarded_at, 'table', {table}, 'op', {op}, 'event', {event})::text"
        ).format(table=table_sql, op=op_sql, event=sql.Literal(event))
        return sql.SQL("{changes}\nSELECT count(pg_notify({channel}, {payload})){into} FROM {rows}"
                       ).format(changes=changes, channel=sql.Literal(channel), payload=payload,
                                into=into_sql, rows=sql.Identifier(rows))
    return sql.SQL(
        "{changes}, logged AS (\n"
        "  INSERT INTO {events} (event, award_id, user_id, code, name, awarded_at, tbl, op)\n"
        "  SELECT {event}, id, to_jsonb(user_id), code, name, awarded_at, {table}::text,"
        " {op}::text FROM {rows}\n  RETURNING *\n)\n"
        "SELECT count(pg_notify({channel}, {payload})){into} FROM logged AS e").format(
        changes=changes, events=sql.Identifier(SCHEMA, EVENTS), event=sql.Literal(event),
        table=table_sql, op=op_sql, rows=sql.Identifier(rows), channel=sql.Literal(channel),
        payload=event_payload("e"), into=into_sql)


def unqualified_query(target: Target, op: str, holders: sql.Composable) -> sql.Composed:
    """Of the award rows `holders` yields (id, user_id), those whose user no longer
    satisfies the condition over today's rows, evaluated set-based as backfill does (each
    row as if just written by `op`) but only on the rows of those users."""
    uf = sql.Identifier(ROWS_ALIAS, target.badge.user_field)
    src = rows_where(sql.Identifier(*target.table.parts),
                     sql.SQL("{uf} IN (SELECT user_id FROM holders)").format(uf=uf))
    return sql.SQL(
        "WITH holders AS MATERIALIZED ({holders})\n"
        "SELECT h.id, h.user_id FROM holders AS h\n"
        "WHERE NOT EXISTS (SELECT 1 FROM ({winners}) AS q WHERE q.user_id = h.user_id)").format(
        holders=holders, winners=winners_query(target, op, None, src, src))


def _user_exists(award: AwardTable) -> sql.Composable:
    """Only users still in the table the award table's user_id references (cascading deletes)."""
    if award.users is None:
        return sql.SQL("")
    schema, table, column = award.users
    return sql.SQL(" WHERE EXISTS (SELECT 1 FROM {users} AS u WHERE u.{col} = winners.user_id)"
                   ).format(users=sql.Identifier(schema, table), col=sql.Identifier(column))


def dollar_quote(body: str) -> str:
    tag, n = "badge", 0
    while f"${tag}$" in body:
        n += 1
        tag = f"badge{n}"
    return f"${tag}$\n{body}${tag}$"


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
    index (see _lacks) and generic plans. bench/trigger_overhead.py measures their cost."""
    path = sql.SQL(", ").join(map(sql.Identifier, [*search_path, "pg_temp"]))
    return sql.SQL("LANGUAGE plpgsql SECURITY DEFINER SET search_path = {}\n"
                   "SET enable_seqscan = off SET plan_cache_mode = force_generic_plan").format(path)


def paused_check(code: str) -> sql.Composed:
    """True while this badge, or every badge ('*'), is paused (the kill switch, no DDL)."""
    return sql.SQL("EXISTS (SELECT 1 FROM {s}.paused WHERE code IN ({code}, '*'))").format(
        s=sql.Identifier(SCHEMA), code=sql.Literal(code))


def _log_error(target: Target) -> sql.Composed:
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
        s=sql.Identifier(SCHEMA), code=sql.Literal(target.badge.code),
        max=sql.Literal(MAX_ERRORS))


def _skips_errors(target: Target) -> bool:
    return target.badge.on_error == "skip"


def _guarded(target: Target, statements: sql.Composable) -> sql.Composed:
    """on_error skip: one subtransaction around the evaluation, errors go to error_log."""
    if not _skips_errors(target):
        return sql.SQL("{};\n").format(statements)
    return recorded_errors(target, statements)


def recorded_errors(target: Target, statements: sql.Composable) -> sql.Composed:
    """A subtransaction around `statements` whose errors go to error_log (reconcile uses it
    whatever on_error says: no application write is at stake there)."""
    return sql.SQL("  BEGIN\n{q};\n  EXCEPTION WHEN OTHERS THEN\n    {log}\n  END;\n").format(
        q=statements, log=_log_error(target))


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
    user = sql.SQL("{}.{}").format(_record(op), sql.Identifier(b.user_field))
    grant = _grant(target, op, award, channel, sql.SQL("SELECT {} AS user_id").format(user),
                   into="n_awarded")
    check = sql.SQL("{user} IS NOT NULL\n     AND NOT EXISTS ({held})").format(
        user=user, held=held_probe(award, user, b.code))
    if not pause_checked:
        check = sql.SQL("NOT {} AND {}").format(paused_check(b.code), check)
    if target.inline and not target.locks:
        return sql.SQL("  IF {cond} THEN\n  IF {check} THEN\n{grant};\n  END IF;\n  END IF").format(
            cond=target.condition, check=check, grant=grant)
    return sql.SQL("  IF {check}\n     AND {locked} THEN\n  IF ({cond}) THEN\n{grant};\n"
                   "  END IF;\n  END IF").format(
        check=check, locked=_locked_or_queued(target, op, user), cond=target.condition,
        grant=grant)


def _locked_or_queued(target: Target, op: str, user: sql.Composable) -> sql.Composed:
    """True once this transaction holds the (badge, user) lock: at once when free (the usual
    case, no wait), else within LOCK_WAIT; false after queueing the row for reconcile.
    The condition must run in a later statement, whose snapshot sees what the lock's last
    holder committed."""
    b = target.badge
    key, ukey = sql.Literal(lock_key(b.code)), user_lock_key(user)
    new = sql.SQL("to_jsonb(NEW)") if op != "delete" else sql.SQL("NULL")
    old = sql.SQL("to_jsonb(OLD)") if op == "delete" or target.needs_old_and_new(op) \
        else sql.SQL("NULL")
    return sql.SQL(
        "(pg_try_advisory_xact_lock({key}, {ukey})\n"
        "          OR {s}.lock_within({key}, {ukey}, clock_timestamp() + {wait}::interval)\n"
        "          OR {s}.enqueue({code}, {op}, ({user})::text, {new}, {old}))").format(
        key=key, ukey=ukey, s=sql.Identifier(SCHEMA), wait=sql.Literal(LOCK_WAIT),
        code=sql.Literal(b.code), op=sql.Literal(op), user=user, new=new, old=old)


def _lock_or_queue_set(target: Target, op: str, award: AwardTable) -> sql.Composed:
    """Set-based: take the lock of every changed user who lacks the badge, waiting for all
    of them together at most LOCK_WAIT; the rows of users whose lock could not be had are
    queued for reconcile (the award query after this statement judges the rest)."""
    b = target.badge
    uf = sql.Identifier(b.user_field)
    changed = sql.Identifier(OLD_TABLE if op == "delete" else NEW_TABLE)
    user = sql.SQL("changed.{}").format(uf)
    key = sql.Literal(lock_key(b.code))
    ukey = user_lock_key(sql.SQL("c.u"))
    if target.needs_old_and_new(op):
        rows = sql.SQL("{n} AS n JOIN {o} AS o ON {on}").format(
            n=sql.Identifier(NEW_TABLE), o=sql.Identifier(OLD_TABLE), on=sql.SQL(" AND ").join(
                sql.SQL("n.{c} = o.{c}").format(c=sql.Identifier(c)) for c in target.primary_key))
        new, old, row_user = sql.SQL("to_jsonb(n)"), sql.SQL("to_jsonb(o)"), sql.SQL("n.{}").format(uf)
    elif op == "delete":
        rows = sql.SQL("{} AS o").format(changed)
        new, old, row_user = sql.SQL("NULL"), sql.SQL("to_jsonb(o)"), sql.SQL("o.{}").format(uf)
    else:
        rows = sql.SQL("{} AS n").format(changed)
        new, old, row_user = sql.SQL("to_jsonb(n)"), sql.SQL("NULL"), sql.SQL("n.{}").format(uf)
    return sql.SQL(
        "  bc_deadline := clock_timestamp() + {wait}::interval;\n"
        "  SELECT array_agg(c.u::text) INTO bc_contended\n"
        "    FROM (SELECT DISTINCT {user} AS u FROM {changed} AS changed\n"
        "          WHERE {user} IS NOT NULL AND {lacks} OFFSET 0) AS c\n"
        "    WHERE NOT (pg_try_advisory_xact_lock({key}, {ukey})\n"
        "               OR {s}.lock_within({key}, {ukey}, bc_deadline));\n"
        "  IF bc_contended IS NOT NULL THEN\n"
        "    INSERT INTO {s}.queue (code, op, user_id, new_row, old_row)\n"
        "      SELECT {code}, {op}, ({row_user})::text, {new}, {old} FROM {rows}\n"
        "      WHERE ({row_user})::text = ANY (bc_contended);\n"
        "  END IF;\n").format(
        wait=sql.Literal(LOCK_WAIT), user=user, changed=changed,
        lacks=_lacks(award, user, b.code), key=key, ukey=ukey, s=sql.Identifier(SCHEMA),
        code=sql.Literal(b.code), op=sql.Literal(op), row_user=row_user, new=new, old=old,
        rows=rows)


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
    return sql.SQL("{}{}").format(_pause_first(target), _guarded(
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
    skip = _skips_errors(target)
    failed = _log_error(target) if skip else sql.SQL("RAISE;")
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
        first=_pause_first(target), row=_record(op), changed=changed, pair=pair,
        recheck=sql.SQL("") if target.inline else sql.SQL("{}\n     OR ").format(
            paused_check(b.code)),
        one_row=_one_row_check(target, op, award, channel, target.inline), failed=failed,
        others=others, user=user, lacks=_lacks(award, user, b.code),
        lock=_lock_or_queue_set(target, op, award) if target.locks else sql.SQL(""),
        guarded=_guarded(target, query))


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
