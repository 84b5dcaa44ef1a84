"""Awards as data an operator manages: list who holds what, grant and revoke by hand.

Both front ends call these. Every grant and revoke goes through the one generator
(sqlgen_events.grant_query / revoke_query), so it is recorded in badge_console.events and
notified with "event": "grant" or "revoke" in the same transaction, as trigger awards
are. Listing is keyset paged on the award id, newest first, so a page costs the same on
the millionth award as on the first; counts per badge come with first and last award
time where the table records one (the django-pg-badges table does not: None).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg import sql

from . import catalog
from .definitions import BadgeFile
from .errors import AwardStateConflict, AwardTableMissing, UnknownBadge, UnknownUser
from .feed import read_feed_settings
from .sqlgen import EVENTS, SCHEMA, AwardTable
from .sqlgen_events import grant_query, revoke_query
from .topology import require_primary
from .waits import READS, bounded

DEFAULT_LIMIT = 50
NOT_RECORDED = "time not recorded"


def describe_time(value: datetime | None) -> str:
    """An award time as both front ends show it; the django-pg-badges table records none."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else NOT_RECORDED


@dataclass(frozen=True)
class AwardRow:
    id: int
    user_id: object
    code: str
    name: str
    awarded_at: datetime | None  # None: the table records no time

    def as_dict(self) -> dict:
        return {"id": self.id, "user_id": self.user_id, "code": self.code, "name": self.name,
                "awarded_at": self.awarded_at.isoformat() if self.awarded_at else None}


@dataclass(frozen=True)
class BadgeCount:
    code: str
    name: str
    holders: int
    first_at: datetime | None
    last_at: datetime | None

    def as_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "holders": self.holders,
                "first_at": self.first_at.isoformat() if self.first_at else None,
                "last_at": self.last_at.isoformat() if self.last_at else None}


@dataclass
class AwardPage:
    award_table: AwardTable
    rows: list[AwardRow]
    counts: list[BadgeCount] = field(default_factory=list)
    next_before: int | None = None  # pass as `before` for the next (older) page

    def as_dict(self) -> dict:
        return {"award_table": self.award_table.display,
                "time_recorded": self.award_table.has_awarded_at,
                "awards": [r.as_dict() for r in self.rows],
                "counts": [c.as_dict() for c in self.counts], "next_before": self.next_before}


@dataclass(frozen=True)
class AwardChange:
    """What a grant or revoke did: the award row and the event that recorded it."""

    event: str
    award_id: int
    event_id: int
    user_id: object
    code: str
    name: str


def award_table(conn: psycopg.Connection, bf: BadgeFile | None = None) -> AwardTable:
    """The award table as installed (else as badge.json names it), with its layout."""
    name = read_feed_settings(conn, bf).award_table
    ref = catalog.resolve_table(conn, name)
    if ref is None:
        raise AwardTableMissing(name)
    cols = {c.name for c in catalog.columns(conn, ref)}
    return AwardTable(ref.schema, ref.name, "awarded_at" in cols)


def _filters(code: str | None, user: str | None, search: str | None) -> sql.Composable:
    terms = [sql.SQL("true")]
    if code:
        terms.append(sql.SQL("a.code = {}").format(sql.Literal(code)))
    if user:  # an untyped literal: PostgreSQL reads it as the user_id column's type
        terms.append(sql.SQL("a.user_id = {}").format(sql.Literal(user)))
    if search:
        pattern = sql.Literal(f"%{search}%")
        terms.append(sql.SQL("(a.code ILIKE {p} OR a.name ILIKE {p})").format(p=pattern))
    return sql.SQL(" AND ").join(terms)


def _typed_user(conn, award: AwardTable, user: str) -> sql.Composed:
    """The user id as a value of the award table's user_id type (UnknownUser if it cannot
    be one), checked before any query uses it."""
    ref = catalog.resolve_table(conn, award.display)
    typ = {c.name: c.type for c in catalog.columns(conn, ref)}["user_id"]
    value = sql.SQL("{}::{}").format(sql.Literal(user), sql.SQL(typ))  # type from the catalog
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SELECT {}").format(value))
    except psycopg.errors.DataError:
        raise UnknownUser(user, None, typ) from None
    return value


def list_awards(conn: psycopg.Connection, bf: BadgeFile | None = None, *,
                code: str | None = None, user: str | None = None, search: str | None = None,
                limit: int = DEFAULT_LIMIT, before: int | None = None,
                counts: bool = True) -> AwardPage:
    """One page of awards, newest first (ids below `before`), and counts per badge for
    the same filters; read in a READ ONLY transaction."""
    with bounded(conn, READS, read_only=True):
        award = award_table(conn, bf)
        if user:
            _typed_user(conn, award, user)
        where = _filters(code, user, search)
        stamp = sql.SQL("a.awarded_at") if award.has_awarded_at else sql.SQL("NULL::timestamptz")
        page = sql.SQL("{w} AND a.id < {b}").format(w=where, b=sql.Literal(before)) \
            if before is not None else where
        rows = conn.execute(sql.SQL(
            "SELECT a.id, a.user_id, a.code, a.name, {stamp} FROM {t} AS a WHERE {page}"
            " ORDER BY a.id DESC LIMIT {n}").format(
            stamp=stamp, t=award.ident, page=page, n=sql.Literal(max(1, limit) + 1))).fetchall()
        result = AwardPage(award, [AwardRow(*r) for r in rows[:max(1, limit)]])
        if len(rows) > max(1, limit):
            result.next_before = result.rows[-1].id
        if counts:
            result.counts = [BadgeCount(*r) for r in conn.execute(sql.SQL(
                "SELECT a.code, max(a.name), count(*), min({stamp}), max({stamp}) FROM {t} AS a"
                " WHERE {w} GROUP BY a.code ORDER BY count(*) DESC, a.code").format(
                stamp=stamp, t=award.ident, w=where)).fetchall()]
    return result


def _badge_name(conn, bf: BadgeFile | None, award: AwardTable, code: str) -> str:
    """The badge's name: from badge.json, else as installed, else as already awarded."""
    for _, badge in (bf.each_badge() if bf is not None else []):
        if badge.code == code:
            return badge.name
    if catalog.relation_exists(conn, SCHEMA, "installed"):
        row = conn.execute(sql.SQL("SELECT name FROM {} WHERE code = %s").format(
            sql.Identifier(SCHEMA, "installed")), (code,)).fetchone()
        if row:
            return row[0]
    row = conn.execute(sql.SQL("SELECT max(name) FROM {} WHERE code = %s").format(
        award.ident), (code,)).fetchone()
    if row[0] is None:
        raise UnknownBadge(code)
    return row[0]


def _check_user(conn, award: AwardTable, user: str) -> sql.Composed:
    """The typed user id; UnknownUser when a foreign key says which users exist and this
    one is not among them."""
    value = _typed_user(conn, award, user)
    ref = catalog.resolve_table(conn, award.display)
    target = catalog.referenced_column(conn, ref, "user_id")
    if target is None:  # no foreign key: nothing says which users exist
        return value
    schema, table, column = target[:3]
    found = conn.execute(sql.SQL("SELECT 1 FROM {t} WHERE {c} = {u}").format(
        t=sql.Identifier(schema, table), c=sql.Identifier(column), u=value)).fetchone()
    if found is None:
        raise UnknownUser(user, f"{schema}.{table}")
    return value


def _held_id(conn, award: AwardTable, who: sql.Composable, code: str) -> int | None:
    row = conn.execute(sql.SQL("SELECT id FROM {award} WHERE user_id = {u} AND code = {c}")
                       .format(award=award.ident, u=who, c=sql.Literal(code))).fetchone()
    return row[0] if row else None


def _change(conn, bf: BadgeFile | None, code: str, user: str, grant: bool) -> AwardChange:
    event = "grant" if grant else "revoke"
    require_primary(conn, f"awards {event}")
    tables: list[str] = []  # for a lock wait's diagnosis
    with bounded(conn, READS, tables, mode="RowExclusiveLock"):
        award = award_table(conn, bf)
        tables.append(award.display)
        name = _badge_name(conn, bf, award, code)
        who = _check_user(conn, award, user)
        channel = read_feed_settings(conn, bf).channel
        held = _held_id(conn, award, who, code)
        if grant == (held is not None):
            raise AwardStateConflict(code, user, held=held is not None)
        if grant:
            query = grant_query(award, channel, sql.SQL("SELECT {} AS user_id").format(who),
                                code=code, name=name, table=None, op=event, event=event)
        else:
            query = revoke_query(award, channel, sql.Literal(held), op=event)
        if conn.execute(query).fetchone()[0] != 1:  # a concurrent change won the race
            raise AwardStateConflict(code, user, held=grant)
        award_id = held if held is not None else _held_id(conn, award, who, code)
        event_id, user_id = conn.execute(sql.SQL(
            "SELECT id, user_id FROM {} WHERE award_id = %s AND event = %s"
            " ORDER BY id DESC LIMIT 1").format(sql.Identifier(SCHEMA, EVENTS)),
            (award_id, event)).fetchone()
    return AwardChange(event, award_id, event_id, user_id, code, name)


def grant_award(conn: psycopg.Connection, bf: BadgeFile | None, code: str,
                user: str) -> AwardChange:
    """Award `code` to `user` by hand; one transaction, one "grant" event and notification."""
    return _change(conn, bf, code, user, grant=True)


def revoke_award(conn: psycopg.Connection, bf: BadgeFile | None, code: str,
                 user: str) -> AwardChange:
    """Take `code` away from `user`; one transaction, one "revoke" event and notification."""
    return _change(conn, bf, code, user, grant=False)
