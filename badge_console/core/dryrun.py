"""Dry run: what a badge would do to sample rows, in transactions that are always rolled back.

Evaluate mode runs in a READ ONLY transaction with statement and lock timeouts: for each
sample row (chosen by a WHERE filter, or typed by hand as JSON) the user, whether they
hold the badge already, and the value of the condition exactly as the generator embeds
it (`ConditionInfo.select_sql`, with the row aliased as NEW/OLD), each row in its own
savepoint so one failing row does not stop the others.

Fire mode (fire.py) then installs the generated trigger and applies the sample write in
a transaction that is rolled back; sample_rows.py picks and types the rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import psycopg
from psycopg import sql

from .browse import check_filter
from .definitions import Badge, BadgeFile
from .errors import DefinitionError, OperationFailed, StatementTimeout
from .fire import FireResult, fire
from .resolve import Resolution, resolve
from .sample_rows import (MAX_LIMIT, Sample, SampleError, SampleRow, check_columns,
                          error_sentence, key_columns, pick_sample, raw_sql, set_timeouts)
from .sqlgen import Target
from .sqlgen_winners import held_probe, winners_query
from .waits import lock_timeout_error, tables_of

MODES = ("eval", "fire")
DEFAULT_LOCK_TIMEOUT = "2s"
DEFAULT_STATEMENT_TIMEOUT = "5s"
LARGE_TABLE = 10_000  # rows; a condition scanning a bigger table gets a warning


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
    try:
        res = resolve(conn, alone)
    except psycopg.errors.LockNotAvailable:  # its savepoint is gone, this transaction is not
        timeout = conn.execute("SHOW lock_timeout").fetchone()[0]
        raise lock_timeout_error(conn, timeout, tables_of(alone)) from None
    except psycopg.errors.QueryCanceled:
        raise StatementTimeout(conn.execute("SHOW statement_timeout").fetchone()[0]) from None
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


def _evaluate(conn, target: Target, op: str, res: Resolution, rows: list[SampleRow],
              changes: str, hand: bool, timeout: str) -> list[RowResult]:
    b = target.badge
    alias = sql.Identifier("old" if op == "delete" else "new")
    user = sql.SQL("{}.{}").format(alias, sql.Identifier(b.user_field))
    held = sql.SQL("EXISTS ({})").format(held_probe(res.award, user, b.code)) \
        if res.award_exists else sql.SQL("false")
    who = sql.SQL("SELECT {}::text, {} FROM {}").format(user, held, _from(target, op))
    cond = sql.SQL("SELECT ({}) FROM {}").format(raw_sql(target.info.select_sql),
                                                  _from(target, op))
    out, stopped = [], None
    for i, r in enumerate(rows, 1):
        params = {"row": r.text, "set": changes}
        shown = json.loads(r.text) | (json.loads(changes) if op == "update" else {})
        try:
            with conn.transaction():
                uid, holds = conn.execute(who, params).fetchone()
        except psycopg.Error as exc:
            what = f"row {i} of --rows" if hand else "the --set changes"
            raise SampleError(f"PostgreSQL rejects {what}: {error_sentence(exc)}.") from None
        value = error = None
        if stopped:
            error = f"not evaluated: {stopped}"
        else:
            try:
                with conn.transaction():
                    value = conn.execute(cond, params).fetchone()[0]
            except psycopg.Error as exc:
                error = error_sentence(exc, timeout)
                if isinstance(exc, psycopg.errors.QueryCanceled):
                    stopped = f"row {i} hit the statement timeout"
        out.append(RowResult(i, uid, holds, value, error,
                             bool(value) and uid is not None and not holds, shown))
    return out


def _explain(conn, target: Target, op: str, res: Resolution, row: SampleRow,
             changes: str) -> tuple[str, list[str]]:
    """EXPLAIN of the trigger's query for one row, and warnings about big sequential scans."""
    info = target.info
    escaped = replace(target, info=replace(
        info, select_sql=info.select_sql.replace("%", "%%"),
        expression_sql=info.expression_sql and info.expression_sql.replace("%", "%%")))
    new, old = _sources(target, op)
    query = winners_query(escaped, op, res.award if res.award_exists else None, new, old,
                          single_row=True)
    params = {"row": row.text, "set": changes}
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
        set_timeouts(conn, lock_timeout, statement_timeout)
        target, res = _resolve(conn, bf, badge)
        b = target.badge
        op = op or b.operations[0]
        if op not in b.operations:
            raise SampleError(f"Badge {b.code} is not triggered by {op}; it is triggered by "
                              f"{', '.join(b.operations)}.")
        if sample.changes is not None and op != "update":
            raise SampleError("Changes (--set) apply to update badges only.")
        changes = json.dumps(sample.changes or {})
        check_columns(conn, target, [sample.changes or {}], "--set")
        result = DryRunResult(b.code, b.name, target.table.display, op, mode,
                              res.award.display)
        skip = key_columns(conn, target)
        rows = pick_sample(conn, target, sample, where, skip)
        result.rows = _evaluate(conn, target, op, res, rows, changes,
                                sample.rows is not None, statement_timeout)
        if explain and rows:
            try:
                result.explain, warnings = _explain(conn, target, op, res, rows[0], changes)
                result.notes += warnings
            except psycopg.Error as exc:
                result.notes.append(f"EXPLAIN failed: {error_sentence(exc, statement_timeout)}.")
        raise psycopg.Rollback()
    result.notes += _eval_notes(b, op, sample, rows)
    if mode == "fire" and rows:
        result.fire = fire(conn, target, op, res, bf, rows, changes, skip,
                            lock_timeout, statement_timeout, result.notes)
    result.notes.append("Everything was rolled back: no rows, awards, notifications or DDL "
                        "were left behind.")
    return result


def _eval_notes(b: Badge, op: str, sample: Sample, rows: list[SampleRow]) -> list[str]:
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
