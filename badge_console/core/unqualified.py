"""Revoke the awards of users who no longer satisfy their badge's condition.

A condition fixed after it awarded too many users (a threshold raised, a buggy query
corrected), rows deleted since, or time passing for a time-based badge: some holders
would not earn the badge today. This finds them set-based over today's rows, through the
generator backfill uses (sqlgen_winners.unqualified_query: each of a holder's rows judged as if
just written, the condition once per distinct combination), and revokes them.

- `preview_unqualified` counts them (and a sample) in a READ ONLY transaction that is
  rolled back: nothing changes.
- `revoke_unqualified` walks each badge's holders by award id in batches, each batch its
  own short transaction that re-checks its holders before deleting (a user who qualified
  meanwhile keeps the badge); every revocation is a "revoke" event, notified.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import psycopg
from psycopg import sql

from .awards import award_table
from .backfill import BATCH_TIMEOUTS, evaluated_op
from .batch_sizes import REVOKE_HOLDERS
from .definitions import BadgeFile
from .errors import DefinitionError, UnknownBadge
from .feed import read_feed_settings
from .resolve import resolve
from .sqlgen import AwardTable, Target
from .sqlgen_events import revoke_query
from .sqlgen_winners import unqualified_query
from .topology import require_primary
from .waits import READS, bounded

SAMPLE = 10
OP_LABEL = "unqualified"  # the op of these revoke events


@dataclass
class UnqualifiedItem:
    code: str
    name: str
    applicable: bool
    reason: str = ""  # why not, when not applicable
    holders: int = 0
    unqualified: int = 0  # preview
    sample: list = field(default_factory=list)
    revoked: int = 0  # run


@dataclass
class Unqualified:
    award_table: str
    items: list[UnqualifiedItem]
    dry_run: bool
    cancelled: bool = False

    @property
    def unqualified(self) -> int:
        return sum(i.unqualified for i in self.items)

    @property
    def revoked(self) -> int:
        return sum(i.revoked for i in self.items)

    def as_dict(self) -> dict:
        return {"award_table": self.award_table, "dry_run": self.dry_run,
                "cancelled": self.cancelled, "unqualified": self.unqualified,
                "revoked": self.revoked, "badges": [asdict(i) for i in self.items]}


@dataclass(frozen=True)
class RevokeProgress:
    code: str
    done: int  # holders checked so far
    holders: int
    revoked: int


def _holders(award: AwardTable, code: str, after: int | None = None,
             upto: int | None = None) -> sql.Composed:
    terms = [sql.SQL("code = {}").format(sql.Literal(code))]
    if after is not None:
        terms.append(sql.SQL("id > {}").format(sql.Literal(after)))
    if upto is not None:
        terms.append(sql.SQL("id <= {}").format(sql.Literal(upto)))
    return sql.SQL("SELECT id, user_id FROM {t} WHERE {w}").format(
        t=award.ident, w=sql.SQL(" AND ").join(terms))


def _prepare(conn, bf: BadgeFile, code: str | None):
    """Resolve badge.json (READ ONLY, rolled back); what each badge gets: (item, target, op)."""
    if code is not None and code not in {b.code for _, b in bf.each_badge()}:
        raise UnknownBadge(code)
    with bounded(conn, READS, read_only=True):
        res = resolve(conn, bf)
        award = award_table(conn, bf)
        channel = read_feed_settings(conn, bf).channel
        raise psycopg.Rollback()
    if res.problems:
        raise DefinitionError(str(bf.path or "badge.json"), res.problems)
    targets = {t.badge.code: t for t in res.targets}
    plan = []
    for badge in res.badges:
        if code is not None and badge.code != code:
            continue
        target = targets.get(badge.code)  # none for a disabled badge that no longer resolves
        op, reason = evaluated_op(target) if target else (None, "")
        if not badge.enabled:
            op, reason = None, "not applicable: disabled in badge.json"
        plan.append((UnqualifiedItem(badge.code, badge.name, op is not None, reason),
                     target, op))
    return award, channel, plan


def _count_holders(conn, award: AwardTable, code: str) -> int:
    return conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE code = %s").format(
        award.ident), (code,)).fetchone()[0]


def preview_unqualified(conn: psycopg.Connection, bf: BadgeFile, code: str | None = None,
                        sample: int = SAMPLE) -> Unqualified:
    """Per badge: how many holders no longer qualify, and some of them; writes nothing."""
    award, _, plan = _prepare(conn, bf, code)
    with bounded(conn, READS, read_only=True):
        for item, target, op in plan:
            item.holders = _count_holders(conn, award, item.code)
            if op is None:
                continue
            rows = conn.execute(sql.SQL(
                "SELECT u.user_id, count(*) OVER () FROM ({q}) AS u ORDER BY u.user_id"
                " LIMIT {n}").format(q=unqualified_query(target, op, _holders(award, item.code)),
                                     n=sql.Literal(sample))).fetchall()
            item.unqualified = rows[0][1] if rows else 0
            item.sample = [r[0] for r in rows]
        raise psycopg.Rollback()
    return Unqualified(award.display, [i for i, _, _ in plan], dry_run=True)


def _batch_end(conn, award: AwardTable, code: str, after: int, size: int) -> int | None:
    row = conn.execute(sql.SQL(
        "SELECT id FROM {t} WHERE code = %s AND id > %s ORDER BY id OFFSET %s LIMIT 1").format(
        t=award.ident), (code, after, size - 1)).fetchone()
    return row[0] if row else None


def _revoke_badge(conn, award: AwardTable, channel: str, item: UnqualifiedItem,
                  target: Target, op: str, size: int, report, cancelled) -> bool:
    """Batches of one badge's holders; False when cancelled between batches."""
    after, done = 0, 0
    report(RevokeProgress(item.code, 0, item.holders, 0))
    while True:
        if cancelled():
            return False
        with bounded(conn, BATCH_TIMEOUTS, [award.display, target.table.display],
                     mode="RowExclusiveLock"):
            upto = _batch_end(conn, award, item.code, after, size)
            doomed = unqualified_query(target, op, _holders(award, item.code, after, upto))
            item.revoked += conn.execute(revoke_query(
                award, channel, sql.SQL("SELECT d.id FROM ({}) AS d").format(doomed),
                op=OP_LABEL)).fetchone()[0]
        done = item.holders if upto is None else min(done + size, item.holders)
        report(RevokeProgress(item.code, done, item.holders, item.revoked))
        if upto is None:
            return True
        after = upto


def revoke_unqualified(conn: psycopg.Connection, bf: BadgeFile, code: str | None = None, *,
                       batch_size: int = REVOKE_HOLDERS,
                       progress: Callable[[RevokeProgress], None] | None = None,
                       cancel=None) -> Unqualified:
    """Revoke every holder who no longer qualifies, `batch_size` holders per transaction.

    `cancel`: a threading.Event or a callable checked between batches; what was committed
    stays, and a later run finds the rest."""
    require_primary(conn, "awards revoke-unqualified")
    award, channel, plan = _prepare(conn, bf, code)
    cancelled = (cancel.is_set if hasattr(cancel, "is_set") else cancel) or (lambda: False)
    report = progress or (lambda p: None)
    result = Unqualified(award.display, [i for i, _, _ in plan], dry_run=False)
    for item, target, op in plan:
        with conn.transaction():
            item.holders = _count_holders(conn, award, item.code)
        if op is not None and not _revoke_badge(conn, award, channel, item, target, op,
                                                max(1, batch_size), report, cancelled):
            result.cancelled = True
            break
    return result
