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
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import namedtuple_row, scalar_row

from . import catalog
from .browse import check_filter
from .condition import check_condition
from .definitions import Badge, BadgeFile
from .errors import (ChangesNeedUpdate, DefinitionError, OperationFailed, SampleError,
                     SampleRejected, StatementFailure, StatementTimeout, Wording)
from .fire import FireResult, fire
from .model import ValidBadge
from .resolve import Resolution, resolve
from .sample_rows import (MAX_LIMIT, Sample, SampleRow, check_columns, pick_sample, raw_sql,
                          set_timeouts, statement_failure)
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
    error: StatementFailure | None
    would_award: bool
    row: dict  # NEW (insert, update) or OLD (delete)
    # A series: its value on this row, and (level code, reached) for each level; `holds`
    # and `value` are then its first level's.
    amount: Any = None
    levels: list[tuple[str, bool | None]] = field(default_factory=list)

    def reached(self) -> str:
        """A series row in words both front ends show: value 57 → bronze ✓ silver ✗."""
        shown = "NULL" if self.amount is None else self.amount
        return f"value {shown} →" + "".join(f" {code} {'✓' if hit else '✗'}"
                                            for code, hit in self.levels)


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
    series: list[str] = field(default_factory=list)  # a series' level codes, in order

    @property
    def winners(self) -> list[str]:
        return list(dict.fromkeys(r.user for r in self.rows if r.would_award))

    def summary(self, word: Wording = str) -> str:
        """One sentence; `word` is how the front end words a failed write."""
        text = (f"Would award {len(self.winners)} distinct user(s) out of "
                f"{len(self.rows)} row(s).")
        if self.fire is not None:
            f = self.fire
            text += (f" Fired: {f.written} row(s) written, the trigger awarded "
                     f"{len(f.awarded)} user(s)" + (f", write failed: {word(f.error)}"
                                                    if f.error else "") + "; rolled back.")
        return text

    def as_dict(self, word: Wording = str) -> dict:
        """The result as JSON, failures worded by `word`."""
        doc = asdict(self) | {"summary": self.summary(word), "would_award": self.winners}
        for row, shown in zip(self.rows, doc["rows"]):
            shown["error"] = row.error and word(row.error)
        if self.fire is not None:
            doc["fire"]["error"] = self.fire.error and word(self.fire.error)
        return doc


def _resolve(conn, bf: BadgeFile, badge: Badge | str
             ) -> tuple[list[Target], Resolution, Badge | None]:
    """The badge's targets (one per level for a series, which comes back too; a level's
    code alone is dry-run as a badge of its own)."""
    if isinstance(badge, str):
        found = bf.by_code(badge) or next(
            (b for _, b in bf.each_badge() if b.code == badge), None)
        if found is None:
            codes = ", ".join(str(b.code) for b in bf.badges) or "none"
            raise SampleError(f"No badge with code '{badge}' in {bf.path or 'badge.json'} "
                              f"(codes: {codes}).")
        badge = found
    index = next((i for i, b in [*enumerate(bf.badges), *bf.each_badge()]
                  if b.code == badge.code), None)
    alone = BadgeFile(badges=[badge], award_table=bf.award_table, channel=bf.channel,
                      path=bf.path, setting_problems=bf.setting_problems)
    try:
        res = resolve(conn, alone)
    except psycopg.errors.LockNotAvailable:  # its savepoint is gone, this transaction is not
        timeout = catalog.setting(conn, "lock_timeout")
        raise lock_timeout_error(conn, timeout, tables_of(alone)) from None
    except psycopg.errors.QueryCanceled:
        raise StatementTimeout(catalog.setting(conn, "statement_timeout")) from None
    if res.problems or not res.targets:
        problems = [replace(p, index=index) if p.index == 0 and index is not None else p
                    for p in res.problems]
        raise DefinitionError(str(bf.path or "badge.json"), problems)
    return res.targets, res, badge if badge.is_series else None


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
    who = sql.SQL("SELECT {}::text AS user_id, {} AS holds FROM {}").format(
        user, held, _from(target, op))
    cond = sql.SQL("SELECT ({}) FROM {}").format(raw_sql(target.info.select_sql),
                                                  _from(target, op))
    out, stopped = [], None
    for i, r in enumerate(rows, 1):
        params = {"row": r.text, "set": changes}
        shown = json.loads(r.text) | (json.loads(changes) if op == "update" else {})
        try:
            with conn.transaction(), conn.cursor(row_factory=namedtuple_row) as cur:
                found = cur.execute(who, params).fetchone()
        except psycopg.Error as exc:
            raise SampleRejected("rows" if hand else "changes", i if hand else None,
                                 statement_failure(exc)) from None
        value = error = None
        if stopped:
            error = StatementFailure("skipped", row=stopped)
        else:
            try:
                with conn.transaction(), conn.cursor(row_factory=scalar_row) as cur:
                    value = cur.execute(cond, params).fetchone()
            except psycopg.Error as exc:
                error = statement_failure(exc, timeout)
                if isinstance(exc, psycopg.errors.QueryCanceled):
                    stopped = i
        out.append(RowResult(i, found.user_id, found.holds, value, error,
                             bool(value) and found.user_id is not None and not found.holds,
                             shown))
    return out


def _levels(conn, targets: list[Target], op: str, res: Resolution, rows: list[SampleRow],
            changes: str, value: str, found: list[RowResult], timeout: str) -> None:
    """A series on each evaluated row: its value, each level reached or not (by the
    level's condition, as the generator embeds it), awarded when a level reached is not
    held yet. A row whose first level failed (its error is shown) is left as it is."""
    op_from = _from(targets[0], op)
    amount = sql.SQL("SELECT ({}) FROM {}").format(
        raw_sql(check_condition(value).select_sql), op_from)
    user = sql.SQL("{}.{}").format(sql.Identifier("old" if op == "delete" else "new"),
                                   sql.Identifier(targets[0].badge.user_field))
    reached = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(
        sql.SQL("({}), {}").format(raw_sql(t.info.select_sql), sql.SQL("EXISTS ({})").format(
            held_probe(res.award, user, t.badge.code)) if res.award_exists
            else sql.SQL("false")) for t in targets), op_from)
    for r, result in zip(rows, found):
        if result.error is not None:
            continue
        params = {"row": r.text, "set": changes}
        try:
            with conn.transaction(), conn.cursor() as cur:
                result.amount = cur.execute(amount, params).fetchone()[0]
                got = cur.execute(reached, params).fetchone()
        except psycopg.Error as exc:
            result.error, result.would_award = statement_failure(exc, timeout), False
            continue
        result.levels = [(t.badge.code, got[2 * i]) for i, t in enumerate(targets)]
        result.would_award = result.user is not None and any(
            got[2 * i] and not got[2 * i + 1] for i in range(len(targets)))


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
    with conn.transaction(), conn.cursor(row_factory=scalar_row) as cur:
        text = "\n".join(cur.execute(sql.SQL("EXPLAIN {}").format(query), params).fetchall())
        plan = cur.execute(sql.SQL("EXPLAIN (FORMAT JSON, VERBOSE) {}").format(query),
                           params).fetchone()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        stack += node.get("Plans", [])
        if node.get("Node Type") == "Seq Scan" and "Relation Name" in node:
            scans.append((node["Schema"], node["Relation Name"]))
    warnings = []
    for schema, name in dict.fromkeys(scans):
        rows = catalog.estimated_rows(conn, schema, name)
        if rows is not None and rows >= LARGE_TABLE:
            warnings.append(f"The condition scans all of {schema}.{name} (~{rows:,} rows) "
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
        targets, res, series = _resolve(conn, bf, badge)
        target = targets[0]
        b = target.badge
        if series is not None and mode == "fire":
            raise SampleError(f"Fire mode runs one badge; pick a level of {series.code} ("
                              f"{', '.join(t.badge.code for t in targets)}).")
        op = op or b.operations[0]
        if op not in b.operations:
            raise SampleError(f"Badge {b.code} is not triggered by {op}; it is triggered by "
                              f"{', '.join(b.operations)}.")
        if sample.changes is not None and op != "update":
            raise ChangesNeedUpdate(op)
        changes = json.dumps(sample.changes or {})
        check_columns(conn, target, [sample.changes or {}], "changes")
        result = DryRunResult(b.code, b.name, target.table.display, op, mode,
                              res.award.display)
        skip = catalog.key_columns(conn, target.table)
        rows = pick_sample(conn, target, sample, where, skip)
        result.rows = _evaluate(conn, target, op, res, rows, changes,
                                sample.rows is not None, statement_timeout)
        if series is not None:
            result.code, result.name = series.code, series.name
            result.series = [t.badge.code for t in targets]
            _levels(conn, targets, op, res, rows, changes, series.value, result.rows,
                    statement_timeout)
        if explain and rows:
            try:
                result.explain, warnings = _explain(conn, target, op, res, rows[0], changes)
                result.notes += warnings
            except psycopg.Error as exc:
                result.notes.append(
                    f"EXPLAIN failed: {statement_failure(exc, statement_timeout)}.")
        raise psycopg.Rollback()
    result.notes += _eval_notes(b, op, sample, rows)
    if mode == "fire" and rows:
        result.fire = fire(conn, target, op, res, bf, rows, changes, skip,
                            lock_timeout, statement_timeout, result.notes)
    result.notes.append("Everything was rolled back: no rows, awards, notifications or DDL "
                        "were left behind.")
    return result


def _eval_notes(b: ValidBadge, op: str, sample: Sample, rows: list[SampleRow]) -> list[str]:
    return [note for when, note in (
        (not rows, "No sample rows: the filter matched nothing."),
        (not b.enabled, "This badge is disabled in badge.json: install skips it."),
        (op == "update" and not sample.changes,
         "No changes given: NEW equals OLD, like an UPDATE that changes nothing."),
        (op == "insert" and sample.rows is None,
         "Evaluate mode reads table rows as if each had just been inserted: the condition "
         "sees the table with the row in it."),
        (sample.rows is not None,
         "Hand-typed rows are not in the table during evaluation: a condition that reads the "
         "trigger table does not see them (fire mode inserts them); omitted columns take "
         "their defaults, key columns stay NULL.")) if when]
