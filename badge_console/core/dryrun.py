"""Dry run: what a badge would do to sample rows, in transactions that are always rolled back.

Evaluate mode runs in a READ ONLY transaction with statement and lock timeouts: for each
sample row (chosen by a WHERE filter, or typed by hand as JSON) the user, whether they
hold the badge already, and the value of the condition exactly as the generator embeds
it (`ConditionInfo.select_sql`, with the row aliased as NEW/OLD), each row in its own
savepoint so one failing row does not stop the others.

Fire mode then installs the generated trigger as `install` would (schema, award table,
function, trigger) inside a REPEATABLE READ transaction, applies the sample write, reads
the awards written by that transaction and rolls everything back. Decisions:
- Double firing: an installed trigger of this badge (or a django-pg-badges one) on the
  table is switched off with ALTER TABLE ... DISABLE TRIGGER inside the rolled-back
  transaction: SHARE ROW EXCLUSIVE, the lock CREATE TRIGGER takes anyway, so readers are
  never blocked. DROP TRIGGER would take ACCESS EXCLUSIVE; session_replication_role
  needs superuser and would also switch off foreign-key checks. The dry-run trigger then
  gets the installed name plus `_dry`.
- Key collisions: copies are inserted without identity, serial (nextval default) and
  generated columns, so defaults and sequences give them new keys; other unique columns
  (a username) can still collide, which is reported as the write's error.
- Deferred constraints are checked (SET CONSTRAINTS ALL IMMEDIATE) before rolling back.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby

import psycopg
from psycopg import sql

from . import catalog
from .browse import check_filter, FilterError
from .definitions import Badge, BadgeFile
from .errors import BadgeConsoleError, DefinitionError, OperationFailed
from .install import legacy_trigger_names, read_paused
from .resolve import Resolution, resolve
from .sqlgen import (SCHEMA, Target, award_table_ddl, create_trigger_ddl,
                     function_name, schema_ddl, trigger_function_ddl, trigger_name,
                     winners_query)

MODES = ("eval", "fire")
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_STATEMENT_TIMEOUT = "5s"
LARGE_TABLE = 10_000  # rows; a condition scanning a bigger table gets a warning


class SampleError(BadgeConsoleError):
    """The sample (rows JSON, changes, limit, mode, code) is not usable; exit code 1."""


@dataclass
class Sample:
    where: str | None = None  # WHERE filter on the trigger table
    limit: int = DEFAULT_LIMIT
    rows: list[dict] | None = None  # typed by hand: column -> value
    changes: dict | None = None  # update badges: NEW is the row with these changes


def parse_json_rows(text: str) -> list[dict]:
    """`--rows`: one JSON object or a list of them."""
    doc = _json(text, "--rows")
    rows = [doc] if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise SampleError("--rows must be a JSON object or a non-empty list of objects "
                          "(column: value).")
    return rows


def parse_json_changes(text: str) -> dict:
    doc = _json(text, "--set")
    if not isinstance(doc, dict):
        raise SampleError("--set must be a JSON object (column: new value).")
    return doc


def _json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SampleError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                          f"column {exc.colno}.") from None


@dataclass
class RowResult:
    index: int
    user: str | None
    holds: bool | None  # already holds the badge
    value: bool | None  # the condition's value (None: NULL or not evaluated)
    error: str | None
    would_award: bool
    row: dict  # NEW (insert, update) or OLD (delete)


@dataclass
class FireResult:
    written: int = 0
    awarded: list[dict] = field(default_factory=list)  # user_id, name, code
    trigger_errors: list[str] = field(default_factory=list)  # recorded by on_error skip
    error: str | None = None  # the write itself failed
    disabled: list[str] = field(default_factory=list)  # installed triggers switched off


@dataclass
class DryRunResult:
    code: str
    name: str
    table: str
    op: str
    mode: str
    award_table: str
    rows: list[RowResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    explain: str | None = None
    fire: FireResult | None = None

    @property
    def winners(self) -> list[str]:
        return list(dict.fromkeys(r.user for r in self.rows if r.would_award))

    @property
    def summary(self) -> str:
        text = (f"Would award {len(self.winners)} distinct user(s) out of "
                f"{len(self.rows)} row(s).")
        if self.fire is not None:
            f = self.fire
            text += (f" Fired: {f.written} row(s) written, the trigger awarded "
                     f"{len(f.awarded)} user(s)" + (f", write failed: {f.error}" if f.error
                                                    else "") + "; rolled back.")
        return text

    def as_dict(self) -> dict:
        return asdict(self) | {"summary": self.summary, "would_award": self.winners}


@dataclass
class _Row:
    text: str  # the sample row as jsonb text (OLD for update/delete, NEW for insert)
    ctid: str | None = None
    tableoid: int | None = None
    typed: tuple = ()  # hand-typed rows: the columns the operator gave


def _message(exc: psycopg.Error, timeout: str = "") -> str:
    diag = exc.diag
    text = (diag.message_primary or str(exc).splitlines()[0]).rstrip(".")
    if diag.sqlstate == "57014":
        return f"stopped at the statement timeout ({timeout}); the condition is too slow"
    if diag.sqlstate == "25006":
        return (f"tried to write ({text}); a dry run's evaluation is read only and a "
                "badge condition must not write")
    if diag.sqlstate == "55P03":
        return "could not get a table lock in time (the table is busy); retry or raise " \
               "--lock-timeout"
    return text


def _raw(text: str) -> sql.SQL:
    """SQL text taken from a checked parse tree, with % doubled for psycopg's placeholders."""
    return sql.SQL(text.replace("%", "%%"))


def _timeouts(conn, lock_timeout: str, statement_timeout: str) -> None:
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true),"
                         " set_config('statement_timeout', %s, true)",
                         (lock_timeout, statement_timeout))
    except psycopg.Error as exc:
        raise SampleError(f"Invalid timeout: {_message(exc)}.") from None


def _resolve(conn, bf: BadgeFile, badge: Badge | str) -> tuple[Target, Resolution]:
    if isinstance(badge, str):
        found = bf.by_code(badge)
        if found is None:
            codes = ", ".join(str(b.code) for b in bf.badges) or "none"
            raise SampleError(f"No badge with code '{badge}' in {bf.path or 'badge.json'} "
                              f"(codes: {codes}).")
        badge = found
    index = next((i for i, b in enumerate(bf.badges) if b.code == badge.code), None)
    alone = BadgeFile(badges=[badge], award_table=bf.award_table, channel=bf.channel,
                      path=bf.path, setting_problems=bf.setting_problems)
    res = resolve(conn, alone)
    if res.problems or not res.targets:
        problems = [replace(p, index=index) if p.index == 0 and index is not None else p
                    for p in res.problems]
        raise DefinitionError(str(bf.path or "badge.json"), problems)
    return res.targets[0], res


def _sources(target: Target, op: str) -> tuple[sql.Composable, sql.Composable]:
    """NEW and OLD of one row as from-items; parameters %(row)s and %(set)s."""
    t = sql.Identifier(*target.table.parts)
    row = sql.SQL("jsonb_populate_record(NULL::{}, %(row)s::jsonb)").format(t)
    if op == "update":
        return sql.SQL("jsonb_populate_record(NULL::{}, %(row)s::jsonb || %(set)s::jsonb)"
                       ).format(t), row
    return row, row


def _from(target: Target, op: str) -> sql.Composable:
    new, old = _sources(target, op)
    if op == "update":
        return sql.SQL("{} AS old CROSS JOIN {} AS new").format(old, new)
    return sql.SQL("{} AS {}").format(new if op == "insert" else old,
                                      sql.Identifier("new" if op == "insert" else "old"))


def _check_columns(conn, target: Target, rows: list[dict], what: str) -> None:
    cols = {c.name for c in catalog.columns(conn, target.table)}
    for i, row in enumerate(rows, 1):
        unknown = [k for k in row if k not in cols]
        if unknown:
            where = f"row {i} of {what}" if what == "--rows" else what
            raise SampleError(f"In {where}, {', '.join(unknown)} is not a column of "
                              f"{target.table.display}.")


def _typed_rows(conn, target: Target, rows: list[dict], skip: set[str]) -> list[_Row]:
    """Hand-typed rows with the column defaults PostgreSQL would fill in (keys stay NULL)."""
    _check_columns(conn, target, rows, "--rows")
    defaults = [(n, e) for n, e in conn.execute(
        "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute"
        " a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = %s"
        " AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum",
        (target.table.oid,)) if n not in skip]
    out = []
    for row in rows:
        text, missing = json.dumps(row), [(n, e) for n, e in defaults if n not in row]
        if missing:  # default expressions come from the catalog, not from the operator
            pairs = sql.SQL(", ").join(sql.SQL("%s::text, ({})").format(_raw(e))
                                       for _, e in missing)
            try:
                with conn.transaction():
                    text = conn.execute(sql.SQL(
                        "SELECT (jsonb_build_object({}) || %s::jsonb)::text").format(pairs),
                        [n for n, _ in missing] + [text]).fetchone()[0]
            except psycopg.Error:  # a default that writes cannot run read-only: keep NULL
                pass
        out.append(_Row(text, typed=tuple(row)))
    return out


def _pick_sample(conn, target: Target, sample: Sample, where: str | None,
                 skip: set[str]) -> list[_Row]:
    if sample.rows is not None:
        return _typed_rows(conn, target, sample.rows, skip)
    t = sql.Identifier(*target.table.parts)
    query = sql.SQL("SELECT ctid::text, tableoid::int, to_jsonb({}.*)::text FROM {}").format(
        t, t)
    if where:
        query += sql.SQL(" WHERE ({})").format(_raw(where))
    if target.primary_key:
        query += sql.SQL(" ORDER BY {}").format(
            sql.SQL(", ").join(map(sql.Identifier, target.primary_key)))
    query += sql.SQL(" LIMIT {}").format(sql.Literal(sample.limit))
    try:
        with conn.transaction():
            found = conn.execute(query).fetchall()
    except psycopg.Error as exc:
        if where and exc.diag.sqlstate != "57014":
            raise FilterError(f"PostgreSQL rejects the --where filter: {_message(exc)}.") \
                from None
        raise OperationFailed(f"Reading sample rows failed: {_message(exc)}.") from None
    return [_Row(text, ctid, oid) for ctid, oid, text in found]


def _evaluate(conn, target: Target, op: str, res: Resolution, rows: list[_Row],
              changes: str, hand: bool, timeout: str) -> list[RowResult]:
    b = target.badge
    alias = sql.Identifier("old" if op == "delete" else "new")
    user = sql.SQL("{}.{}").format(alias, sql.Identifier(b.user_field))
    held = sql.SQL("EXISTS (SELECT 1 FROM {} AS held WHERE held.user_id = {} AND held.code = "
                   "%(code)s)").format(res.award.ident, user) if res.award_exists \
        else sql.SQL("false")
    who = sql.SQL("SELECT {}::text, {} FROM {}").format(user, held, _from(target, op))
    cond = sql.SQL("SELECT ({}) FROM {}").format(_raw(target.info.select_sql),
                                                  _from(target, op))
    out, stopped = [], None
    for i, r in enumerate(rows, 1):
        params = {"row": r.text, "set": changes, "code": b.code}
        shown = json.loads(r.text) | (json.loads(changes) if op == "update" else {})
        try:
            with conn.transaction():
                uid, holds = conn.execute(who, params).fetchone()
        except psycopg.Error as exc:
            what = f"row {i} of --rows" if hand else "the --set changes"
            raise SampleError(f"PostgreSQL rejects {what}: {_message(exc)}.") from None
        value = error = None
        if stopped:
            error = f"not evaluated: {stopped}"
        else:
            try:
                with conn.transaction():
                    value = conn.execute(cond, params).fetchone()[0]
            except psycopg.Error as exc:
                error = _message(exc, timeout)
                if exc.diag.sqlstate == "57014":
                    stopped = f"row {i} hit the statement timeout"
        out.append(RowResult(i, uid, holds, value, error,
                             bool(value) and uid is not None and not holds, shown))
    return out


def _explain(conn, target: Target, op: str, res: Resolution, row: _Row, changes: str,
             code: str) -> tuple[str, list[str]]:
    """EXPLAIN of the trigger's query for one row, and warnings about big sequential scans."""
    info = target.info
    escaped = replace(target, info=replace(
        info, select_sql=info.select_sql.replace("%", "%%"),
        expression_sql=info.expression_sql and info.expression_sql.replace("%", "%%")))
    new, old = _sources(target, op)
    query = winners_query(escaped, op, res.award if res.award_exists else None, new, old,
                          single_row=True)
    params = {"row": row.text, "set": changes, "code": code}
    with conn.transaction():
        text = "\n".join(r[0] for r in conn.execute(sql.SQL("EXPLAIN {}").format(query),
                                                    params))
        plan = conn.execute(sql.SQL("EXPLAIN (FORMAT JSON, VERBOSE) {}").format(query),
                            params).fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack += node.get("Plans", [])
        if node.get("Node Type") == "Seq Scan" and "Relation Name" in node:
            scans.append((node["Schema"], node["Relation Name"]))
    warnings = []
    for schema, name in dict.fromkeys(scans):
        est = conn.execute("SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n"
                           " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                           (schema, name)).fetchone()
        if est and est[0] >= LARGE_TABLE:
            warnings.append(f"The condition scans all of {schema}.{name} (~{est[0]:,} rows) "
                            "on every write; an index on the columns it filters on would help.")
    return text, warnings


def dry_run(conn: psycopg.Connection, bf: BadgeFile, badge: Badge | str, sample: Sample, *,
            mode: str = "eval", op: str | None = None, explain: bool = False,
            lock_timeout: str = DEFAULT_LOCK_TIMEOUT,
            statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT) -> DryRunResult:
    """Evaluate (and in fire mode fire) one badge, saved (code) or a draft Badge, on samples."""
    if mode not in MODES:
        raise SampleError(f"Unknown mode '{mode}'; use eval or fire.")
    if sample.rows is not None and sample.where:
        raise SampleError("Give either a WHERE filter or rows typed by hand, not both.")
    if not isinstance(sample.limit, int) or not 1 <= sample.limit <= MAX_LIMIT \
            or len(sample.rows or ()) > MAX_LIMIT:
        raise SampleError(f"The limit must be between 1 and {MAX_LIMIT} rows.")
    where = check_filter(sample.where or "")
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise OperationFailed("A dry run needs a connection outside any open transaction.")
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        _timeouts(conn, lock_timeout, statement_timeout)
        target, res = _resolve(conn, bf, badge)
        b = target.badge
        op = op or b.operations[0]
        if op not in b.operations:
            raise SampleError(f"Badge {b.code} is not triggered by {op}; it is triggered by "
                              f"{', '.join(b.operations)}.")
        if sample.changes is not None and op != "update":
            raise SampleError("Changes (--set) apply to update badges only.")
        changes = json.dumps(sample.changes or {})
        _check_columns(conn, target, [sample.changes or {}], "--set")
        result = DryRunResult(b.code, b.name, target.table.display, op, mode,
                              res.award.display)
        skip = _key_columns(conn, target)
        rows = _pick_sample(conn, target, sample, where, skip)
        result.rows = _evaluate(conn, target, op, res, rows, changes,
                                sample.rows is not None, statement_timeout)
        if explain and rows:
            try:
                result.explain, warnings = _explain(conn, target, op, res, rows[0], changes,
                                                    b.code)
                result.notes += warnings
            except psycopg.Error as exc:
                result.notes.append(f"EXPLAIN failed: {_message(exc, statement_timeout)}.")
        raise psycopg.Rollback()
    result.notes += _eval_notes(b, op, sample, rows)
    if mode == "fire" and rows:
        result.fire = _fire(conn, target, op, res, bf, rows, changes, skip,
                            lock_timeout, statement_timeout, result.notes)
    result.notes.append("Everything was rolled back: no rows, awards, notifications or DDL "
                        "were left behind.")
    return result


def _eval_notes(b: Badge, op: str, sample: Sample, rows: list[_Row]) -> list[str]:
    return [note for when, note in (
        (not rows, "No sample rows: the filter matched nothing."),
        (not b.is_enabled, "This badge is disabled in badge.json: install skips it."),
        (op == "update" and not sample.changes,
         "No changes given: NEW equals OLD, like an UPDATE that changes nothing."),
        (op == "insert" and sample.rows is None,
         "Evaluate mode reads table rows as if each had just been inserted: the condition "
         "sees the table with the row in it."),
        (sample.rows is not None,
         "Hand-typed rows are not in the table during evaluation: a condition that reads the "
         "trigger table does not see them (fire mode inserts them); omitted columns take "
         "their defaults, key columns stay NULL.")) if when]


def _key_columns(conn, target: Target) -> set[str]:
    """Columns a copy must not carry: identity, generated, or defaulting to nextval()."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a LEFT JOIN pg_attrdef d"
        " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " AND (a.attidentity <> '' OR a.attgenerated <> ''"
        "      OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%')",
        (target.table.oid,)).fetchall()
    return {r[0] for r in rows}


def _insert(conn, target: Target, rows: list[_Row], skip: set[str]) -> list:
    """Insert copies (hand-typed rows with the columns typed); (ctid, tableoid) of each."""
    t = sql.Identifier(*target.table.parts)
    order = [c.name for c in catalog.columns(conn, target.table) if c.name not in skip]
    made = []
    for typed, group in groupby(rows, key=lambda r: r.typed):
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in order if c in typed or not typed)
        texts = "[" + ",".join(r.text for r in group) + "]"
        made += conn.execute(sql.SQL(
            "INSERT INTO {t} ({c}) SELECT {c} FROM jsonb_populate_recordset(NULL::{t},"
            " %s::jsonb) RETURNING ctid::text, tableoid::int").format(t=t, c=cols),
            (texts,)).fetchall()
    return made


def _write(conn, target: Target, op: str, rows: list[_Row], changes: str,
           skip: set[str]) -> int:
    t = sql.Identifier(*target.table.parts)
    if op == "insert":
        return len(_insert(conn, target, rows, skip))
    keys = [(r.ctid, r.tableoid) for r in rows if r.ctid] or _insert(conn, target, rows, skip)
    match = sql.SQL("x.ctid = ANY(%(tids)s::tid[]) AND (x.tableoid, x.ctid) IN"
                    " (SELECT * FROM unnest(%(oids)s::oid[], %(tids)s::tid[]))")
    params = {"tids": [k[0] for k in keys], "oids": [k[1] for k in keys], "set": changes}
    if op == "delete":
        return conn.execute(sql.SQL("DELETE FROM {} AS x WHERE ").format(t) + match,
                            params).rowcount
    changed = list(json.loads(changes))
    if changed:
        query = sql.SQL("UPDATE {t} AS x SET {sets} FROM jsonb_populate_record(NULL::{t},"
                        " %(set)s::jsonb) AS s WHERE ").format(
            t=t, sets=sql.SQL(", ").join(sql.SQL("{c} = s.{c}").format(c=sql.Identifier(c))
                                         for c in changed))
    else:  # touch the rows: SET user_field = itself
        query = sql.SQL("UPDATE {t} AS x SET {c} = x.{c} WHERE ").format(
            t=t, c=sql.Identifier(target.badge.user_field))
    return conn.execute(query + match, params).rowcount


def _disable_installed(conn, target: Target) -> list[str]:
    """Switch off this badge's installed (or legacy) triggers on the table, in this transaction."""
    b, table = target.badge, target.table
    ours = {function_name(b.code, op) for op in ("insert", "update", "delete")}
    found = [t.name for t in catalog.table_triggers(conn)
             if (t.schema, t.table) == table.parts and t.enabled
             and ((t.function_schema == SCHEMA and t.function in ours)
                  or (t.function_schema != SCHEMA and t.name in legacy_trigger_names(b)))]
    for name in found:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
            sql.Identifier(*table.parts), sql.Identifier(name)))
    return found


def _install_for_test(conn, target: Target, op: str, res: Resolution, channel: str) -> list[str]:
    for stmt in schema_ddl():
        conn.execute(stmt)
    if not res.award_exists:
        conn.execute(award_table_ddl(res.award, res.user_type))
    disabled = _disable_installed(conn, target)
    name = trigger_name(target.badge.code, op)
    exists = conn.execute("SELECT 1 FROM pg_trigger WHERE tgrelid = %s AND tgname = %s",
                          (target.table.oid, name)).fetchone()
    conn.execute(trigger_function_ddl(target, op, res.award, channel, res.search_path))
    create = create_trigger_ddl(target, op)
    if exists:  # the installed trigger (now disabled) has the name: same DDL, name + _dry
        create = sql.Composed([sql.Identifier(f"{name}_dry") if part == sql.Identifier(name)
                               else part for part in create])
    conn.execute(create)
    return disabled


def _fire(conn, target: Target, op: str, res: Resolution, bf: BadgeFile, rows: list[_Row],
          changes: str, skip: set[str], lock_timeout: str, statement_timeout: str,
          notes: list[str]) -> FireResult:
    b, fired = target.badge, FireResult()
    channel = bf.channel if isinstance(bf.channel, str) else "badge_awarded"
    try:
        with conn.transaction():
            # REPEATABLE READ: every award row this snapshot sees with an xmin at or after
            # our own transaction id (age <= 0) was written by this transaction.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            _timeouts(conn, lock_timeout, statement_timeout)
            fired.disabled = _install_for_test(conn, target, op, res, channel)
            if read_paused(conn) & {b.code, "*"}:
                notes.append("The badge is paused: its trigger ran and awarded nothing.")
            try:
                with conn.transaction():
                    fired.written = _write(conn, target, op, rows, changes, skip)
                    conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            except psycopg.Error as exc:
                fired.error = _message(exc, statement_timeout)
            found = conn.execute(sql.SQL(
                "SELECT user_id::text, name, code FROM {} WHERE code = %s AND age(xmin) <= 0"
                " ORDER BY id").format(res.award.ident), (b.code,)).fetchall()
            fired.awarded = [{"user_id": u, "name": n, "code": c} for u, n, c in found]
            fired.trigger_errors = [f"{s}: {m}" for s, m in conn.execute(sql.SQL(
                "SELECT sqlstate, message FROM {} WHERE code = %s AND age(xmin) <= 0"
                " ORDER BY id").format(sql.Identifier(SCHEMA, "error_log")), (b.code,))]
            raise psycopg.Rollback()
    except psycopg.Error as exc:
        raise OperationFailed(f"Fire mode could not install the trigger for the test, nothing "
                              f"was changed: {_message(exc, statement_timeout)}.") from None
    notes.append(f"Fire mode took a brief SHARE ROW EXCLUSIVE lock on {target.table.display} "
                 f"(writers waited; lock_timeout {lock_timeout}).")
    if fired.disabled:
        notes.append("The installed trigger(s) " + ", ".join(fired.disabled) + " were disabled "
                     "inside the rolled-back transaction so the badge did not fire twice.")
    if op == "insert" or not rows[0].ctid:
        cols = ", ".join(sorted(skip)) or "none"
        notes.append(f"Rows were inserted as copies without key columns ({cols}): defaults "
                     "and sequences gave them new keys.")
    notes.append("Sequence values consumed by the test (new row ids, award ids) are not "
                 "returned: PostgreSQL cannot roll sequences back.")
    if fired.written < len(rows) and not fired.error:
        notes.append(f"Only {fired.written} of {len(rows)} row(s) were written: the others "
                     "changed since they were sampled.")
    return fired
