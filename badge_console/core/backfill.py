"""Backfill: award the users who already satisfy a badge's condition over today's rows.

A trigger only sees rows as they change; users who qualified before the badge was
installed hold nothing. Backfill evaluates an insert or update badge's condition over the
rows that exist now, as if each row had just been inserted (or updated to itself: OLD and
NEW are the same row), through the same generated SQL the triggers run. Delete badges are
earned by deleting a row, so there is nothing to backfill for them.

- `preview_backfill` counts the winners (and a sample) in a READ ONLY transaction that is
  rolled back: nothing is written.
- `run_backfill` walks the table in batches by primary key range (or by block range of
  ctid for a table without one), each batch its own short transaction, so a long backfill
  never holds locks for long. A condition that reads NEW only through the user field is
  walked by ranges of users instead, when an index leads with that field: each user is
  then judged once, not once per batch holding their rows, and an aggregate of the
  user's own rows is asked as one GROUP BY per batch (backfill_batches). Progress is
  reported and cancellation checked between batches. Awards are inserted ON CONFLICT DO
  NOTHING and holders are skipped, so running it twice (or alongside the live triggers)
  awards nobody twice. Every award is notified like a trigger's, with op "backfill".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import psycopg
from psycopg import sql
from psycopg.rows import namedtuple_row, scalar_row

from .backfill_batches import table_batches, table_winners
from .batch_sizes import BACKFILL_ROWS, BACKFILL_USERS
from .bookkeeping import read_paused
from .definitions import BadgeFile
from .errors import BackfillStopped, DefinitionError, OperationFailed, primary_message
from .resolve import Resolution, resolve
from .sqlgen import Target
from .sqlgen_winners import grant_winners, rows_op
from .topology import require_primary
from .waits import READS, Timeouts, bound, bounded, tables_of

SAMPLE = 10
BATCH_TIMEOUTS = Timeouts(lock="5s", statement="120s")  # one batch of rows


@dataclass
class BackfillItem:
    code: str
    name: str
    table: str
    op: str | None  # the operation whose condition is evaluated: insert or update
    applicable: bool
    reason: str = ""  # why not, when not applicable
    would_award: int = 0  # preview
    sample: list = field(default_factory=list)  # preview: some of those users
    awarded: int = 0  # run
    batches: int = 0  # run


@dataclass
class Backfill:
    award_table: str
    channel: str
    items: list[BackfillItem]
    dry_run: bool
    cancelled: bool = False

    @property
    def would_award(self) -> int:
        return sum(i.would_award for i in self.items)

    @property
    def awarded(self) -> int:
        return sum(i.awarded for i in self.items)

    def as_dict(self) -> dict:
        return {"award_table": self.award_table, "channel": self.channel,
                "dry_run": self.dry_run, "cancelled": self.cancelled,
                "would_award": self.would_award, "awarded": self.awarded,
                "badges": [asdict(i) for i in self.items]}


@dataclass(frozen=True)
class BackfillProgress:
    code: str
    badge_index: int  # 0-based among the applicable badges
    badges: int  # how many applicable badges
    rows_done: int
    rows_total: int  # estimate for the table
    awarded: int  # for this badge so far


def evaluated_op(target: Target) -> tuple[str | None, str]:
    """The operation to evaluate, or None with the reason it cannot be backfilled."""
    op = rows_op(target)
    if op is not None:
        return op, ""
    if set(target.badge.operations) == {"delete"}:
        return None, ("not applicable: a delete badge is earned when a row is deleted, "
                      "not by rows that exist")
    return None, (f"not applicable: the condition compares OLD with NEW and "
                  f"{target.table.display} has no primary key to pair them")


def _prepare(conn: psycopg.Connection, bf: BadgeFile
             ) -> tuple[Resolution, str, list[tuple[BackfillItem, Target | None]]]:
    """Resolve badge.json (READ ONLY, rolled back) and decide what each badge gets."""
    with bounded(conn, READS, tables_of(bf), read_only=True):
        res = resolve(conn, bf)
        paused = read_paused(conn)
        raise psycopg.Rollback()
    if res.problems:
        raise DefinitionError(str(bf.path or "badge.json"), res.problems)
    channel = bf.settings.channel
    targets = {t.badge.code: t for t in res.targets}
    plan = []
    for badge in res.badges:
        target = targets.get(badge.code)  # none for a disabled badge that no longer resolves
        op, reason = evaluated_op(target) if target else (None, "")
        if not badge.enabled:
            op, reason = None, "not applicable: disabled in badge.json"
        elif "*" in paused or badge.code in paused:
            op, reason = None, "not applicable: paused (resume it first)"
        table = target.table.display if target else badge.trigger_table
        item = BackfillItem(badge.code, badge.name, table, op, op is not None, reason)
        plan.append((item, target if op else None))
    return res, channel, plan


def preview_backfill(conn: psycopg.Connection, bf: BadgeFile, sample: int = SAMPLE) -> Backfill:
    """How many users each badge would award, and who, without writing anything."""
    res, channel, plan = _prepare(conn, bf)
    with bounded(conn, READS, tables_of(bf), read_only=True):
        for item, target in plan:
            if target is None:
                continue
            winners = table_winners(conn, target, item.op,
                                    res.award if res.award_exists else None)
            with conn.cursor(row_factory=namedtuple_row) as cur:
                # MATERIALIZED: planned for all its rows, as counting them needs; under
                # the LIMIT the planner walked the whole table in user order, by index
                rows = cur.execute(sql.SQL(
                    "WITH w AS MATERIALIZED ({winners})\n"
                    "SELECT w.user_id, (SELECT count(*) FROM w) AS winners FROM w"
                    " ORDER BY w.user_id LIMIT {n}").format(
                    winners=winners, n=sql.Literal(sample))).fetchall()
            item.would_award = rows[0].winners if rows else 0
            item.sample = [r.user_id for r in rows]
        raise psycopg.Rollback()
    return Backfill(res.award.display, channel, [i for i, _ in plan], dry_run=True)


def _cancel_check(cancel) -> Callable[[], bool]:
    if cancel is None:
        return lambda: False
    return cancel.is_set if hasattr(cancel, "is_set") else cancel


def run_backfill(conn: psycopg.Connection, bf: BadgeFile, *, batch_size: int = BACKFILL_ROWS,
                 users_per_batch: int = BACKFILL_USERS,
                 progress: Callable[[BackfillProgress], None] | None = None,
                 cancel=None) -> Backfill:
    """Award every user who qualifies now; batches of `batch_size` rows (or of
    `users_per_batch` users, for a condition judged per user), each committed.

    `cancel`: a threading.Event or a callable, checked between batches; what was committed
    stays (a later run continues where this one stopped, awarding nobody twice).
    """
    require_primary(conn, "backfill")
    res, channel, plan = _prepare(conn, bf)
    if not res.award_exists:
        raise OperationFailed(f"The award table {res.award.display} does not exist yet; "
                              "run install first.")
    cancelled = _cancel_check(cancel)
    report = progress or (lambda p: None)
    todo = [(item, target) for item, target in plan if target is not None]
    result = Backfill(res.award.display, channel, [i for i, _ in plan], dry_run=False)
    try:
        for index, (item, target) in enumerate(todo):
            with bounded(conn, BATCH_TIMEOUTS, [target.table.display]):
                batches = table_batches(conn, target, item.op, res.award, batch_size,
                                        users_per_batch)
            lo, done = batches.first(), 0
            report(BackfillProgress(item.code, index, len(todo), 0, batches.total, 0))
            while True:
                if cancelled():
                    result.cancelled = True
                    return result
                with conn.transaction(), conn.cursor(row_factory=scalar_row) as cur:
                    bound(conn, BATCH_TIMEOUTS)
                    winners, lo, rows = batches.next(lo)
                    query = grant_winners(target, item.op, res.award, channel, winners,
                                          op_label="backfill")
                    item.awarded += cur.execute(query).fetchone()
                item.batches += 1
                done = batches.total if lo is None else min(done + (rows or batches.size),
                                                            batches.total)
                report(BackfillProgress(item.code, index, len(todo), done, batches.total,
                                        item.awarded))
                if lo is None:
                    break
    except psycopg.Error as exc:
        raise BackfillStopped(primary_message(exc), result.awarded,
                              lock=isinstance(exc, psycopg.errors.LockNotAvailable)) from None
    return result
