"""The generator's events part: how an award, a manual grant or a revocation is stored,
recorded and notified.

Every award, manual grant and revoke is a row of the append-only events table (nothing
here updates or deletes it), notified with the same JSON the feed's catch-up reads back
from that table (event_payload), so a feed can catch up revocations too.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import EVENTS, SCHEMA, AwardTable


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


def grant_query(award: AwardTable, channel: str, winners: sql.Composable, *,
                code: str | None, name: str | None, table: str | None, op: str | None,
                event: str = "award", into: str | None = None,
                events: bool = True) -> sql.Composed:
    """Awards for the users `winners` yields (ON CONFLICT DO NOTHING), each recorded as an
    event and notified; yields how many were granted. With code and name None, `winners`
    yields (user_id, code, name): one statement awards several badges (a table's trigger).
    events=False (only to plan a check before the events table exists) notifies without
    recording."""
    name_sql = sql.SQL("name") if name is None else sql.Literal(name)
    code_sql = sql.SQL("code") if code is None else sql.Literal(code)
    stamp = sql.SQL(", awarded_at") if award.has_awarded_at else sql.SQL(", now() AS awarded_at")
    granted = sql.SQL(
        "WITH winners AS (\n  {winners}\n), granted AS (\n"
        "  INSERT INTO {award} (user_id, name, code)\n"
        "  SELECT user_id, {name}, {code} FROM winners{alive}\n"
        "  ON CONFLICT DO NOTHING\n  RETURNING id, user_id, code, name{stamp}\n)").format(
        winners=winners, award=award.ident, name=name_sql, code=code_sql,
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


def _user_exists(award: AwardTable) -> sql.Composable:
    """Only users still in the table the award table's user_id references (cascading deletes)."""
    if award.users is None:
        return sql.SQL("")
    schema, table, column = award.users
    return sql.SQL(" WHERE EXISTS (SELECT 1 FROM {users} AS u WHERE u.{col} = winners.user_id)"
                   ).format(users=sql.Identifier(schema, table), col=sql.Identifier(column))
