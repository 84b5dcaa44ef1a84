"""Backfill per distinct user: the SQL that walks a table's users instead of its rows.

A condition that reads NEW only through the user field has one value per user, whatever
the row. Walking the table by primary key judges a user again in every batch that holds
one of their rows (a user with 50 rows spread over the table is judged up to 50 times,
and judged again each time when they do not qualify). Walking it by ranges of the user
field, in the order of an index that leads with it, puts each user's rows in exactly one
batch, so the generator's projected form (sqlgen_winners) judges each user once. A
condition that aggregates the user's own rows (grouped_condition) is asked for a whole
batch as one GROUP BY (grouped_winners), which reads each row once instead of probing the
rows of each user in turn.
"""

from __future__ import annotations

from psycopg import sql

from .grouped_condition import GroupedCondition
from .sqlgen import AwardTable, Target, row_alias
from .sqlgen_winners import ROWS_ALIAS, lacks_badge, rows_where


def judged_per_user(target: Target, op: str) -> bool:
    """True when the condition's value depends on the row only through the user field:
    it reads no other NEW column, not NEW as a whole and not OLD, calls nothing volatile
    (that must run once per row) and is not a plain expression (those are cheaper
    evaluated inline on every row than grouped)."""
    info = target.info
    return (row_alias(op) == "new" and not target.volatile and not target.inline
            and not target.needs_old_and_new(op) and not info.whole_new
            and info.new_columns <= {target.badge.user_field})


def _user(target: Target) -> sql.Identifier:
    return sql.Identifier(ROWS_ALIAS, target.badge.user_field)


def _after(target: Target, last) -> sql.Composed:
    """Rows of users after `last` (None: from the first user; rows without one never
    earn anything and are skipped)."""
    if last is None:
        return sql.SQL("{u} IS NOT NULL").format(u=_user(target))
    return sql.SQL("{u} > {v}").format(u=_user(target), v=sql.Literal(last))


def next_users(target: Target, last, users: int) -> sql.Composed:
    """The batch after `last`: one row (last, users, rows) naming its last user, how many
    users follow `last` (capped at users + 1: more than `users` means this batch is not
    the final one) and how many rows the batch holds; no row when no user follows.

    GROUP BY … ORDER BY … LIMIT on the user field reads the index leading with it in
    order and stops after users + 1 of them; max() is not used because some user types
    (uuid) have none."""
    table = sql.Identifier(*target.table.parts)
    return sql.SQL(
        "SELECT u AS last, users, rows FROM (\n"
        "  SELECT u, row_number() OVER w AS k, count(*) OVER () AS users,"
        " sum(n) OVER w AS rows FROM (\n"
        "    SELECT {u} AS u, count(*) AS n FROM {t} AS {r} WHERE {after}\n"
        "    GROUP BY 1 ORDER BY 1 LIMIT {more}) AS ahead\n"
        "  WINDOW w AS (ORDER BY u)) AS batch\n"
        "WHERE k = least(users, {users})").format(
        u=_user(target), t=table, r=sql.Identifier(ROWS_ALIAS), after=_after(target, last),
        more=sql.Literal(users + 1), users=sql.Literal(users))


def users_between(target: Target, last, upto) -> sql.Composed:
    """The rows of the users after `last` up to `upto` included (None: no upper bound, the
    final batch, which also takes users whose rows were written meanwhile), as a
    from-item for the winners query."""
    cond = _after(target, last)
    if upto is not None:
        cond = sql.SQL("{after} AND {u} <= {v}").format(after=cond, u=_user(target),
                                                        v=sql.Literal(upto))
    return rows_where(sql.Identifier(*target.table.parts), cond)


GROUPS = "bc_groups"


def empty_value(grouped: GroupedCondition) -> sql.Composed:
    """The condition's value for a user without rows: one row (the aggregate over no
    rows) when the condition is an aggregate, no row when it is not (then it is no
    per-user aggregate at all)."""
    return sql.SQL("SELECT ({value}) AS qualifies FROM {source} WHERE false").format(
        value=sql.SQL(grouped.value), source=sql.SQL(grouped.source))


def grouped_winners(target: Target, grouped: GroupedCondition, award: AwardTable | None,
                    last, upto) -> sql.Composed:
    """The users after `last` up to `upto` (None: no bound) whose group of rows satisfies
    the condition, holders skipped: the condition's aggregate grouped by the user column,
    which reads each row once instead of probing the rows of each user. Only valid when
    the empty value is not true (a user without rows would then qualify with no group)."""
    key = sql.SQL(grouped.key)
    within = [sql.SQL("{k} > {v}").format(k=key, v=sql.Literal(last)) if last is not None
              else sql.SQL("{k} IS NOT NULL").format(k=key)]
    if upto is not None:
        within.append(sql.SQL("{k} <= {v}").format(k=key, v=sql.Literal(upto)))
    within += [sql.SQL("({})").format(sql.SQL(f)) for f in grouped.filters]
    user = sql.SQL("{g}.user_id").format(g=sql.Identifier(GROUPS))
    held = sql.SQL("") if award is None else sql.SQL(" AND {}").format(
        lacks_badge(award, user, target.badge.code))
    return sql.SQL(
        "SELECT {user} AS user_id FROM (\n"
        "    SELECT {key} AS user_id, ({value}) AS qualifies FROM {source}\n"
        "    WHERE {within} GROUP BY 1) AS {g}\n"
        "  WHERE {g}.qualifies{held}").format(
        user=user, key=key, value=sql.SQL(grouped.value), source=sql.SQL(grouped.source),
        within=sql.SQL(" AND ").join(within), g=sql.Identifier(GROUPS), held=held)
