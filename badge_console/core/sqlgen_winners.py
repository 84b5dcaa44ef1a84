"""The generator's winners part: which users earn a badge from a set of rows (changed rows
in a trigger; today's rows for backfill, reconcile's re-check and revoke-unqualified), and
the query that awards them.

The changed rows are projected to the columns the condition reads and de-duplicated,
holders are skipped by an index probe (lacks_badge), and the condition runs once per
remaining combination; a plain-expression condition filters the rows first instead.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import AwardTable, Target, row_alias
from .sqlgen_events import grant_query


def lacks_badge(award: AwardTable, user: sql.Composable,
                code: str | sql.Composable) -> sql.Composed:
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


def held_probe(award: AwardTable, user: sql.Composable,
               code: str | sql.Composable) -> sql.Composed:
    """The award-table probe: a row when this user holds the badge (a code, or an
    expression yielding one)."""
    return sql.SQL("SELECT 1 FROM {award} AS held"
                   " WHERE held.user_id = {user} AND held.code = {code}").format(
        award=award.ident, user=user,
        code=sql.Literal(code) if isinstance(code, str) else code)


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
    alias = row_alias(op)
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
            rows=rows, user=user, lacks=lacks_badge(award, user, target.badge.code))
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
    return sql.SQL("{a}.{uf}").format(a=sql.Identifier(row_alias(op)),
                                      uf=sql.Identifier(target.badge.user_field))


def _fenced(target: Target, op: str, single_row: bool) -> bool:
    """True when _from_items already skips holders (the projected form)."""
    alias = row_alias(op)
    whole = target.info.whole_new if alias == "new" else target.info.whole_old
    return not (target.needs_old_and_new(op) or single_row or whole)


def winners_query(target: Target, op: str, award: AwardTable | None,
                  new_src: sql.Composable, old_src: sql.Composable,
                  single_row: bool = False) -> sql.Composed:
    """Distinct users that would earn the badge from these rows (skipping holders)."""
    if target.inline and not (single_row or target.needs_old_and_new(op)):
        return _inline_winners(target, op, award, new_src if row_alias(op) == "new" else old_src)
    b = target.badge
    user = _user(target, op)
    fenced = award is not None and _fenced(target, op, single_row)
    held = sql.SQL("") if award is None or fenced else sql.SQL(
        "\n    AND {}").format(lacks_badge(award, user, b.code))
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
        user=user, src=src, a=sql.Identifier(row_alias(op)), cond=target.condition)
    if award is None:
        return rows
    return sql.SQL("SELECT user_id FROM ({rows} OFFSET 0) AS changed\n  WHERE {lacks}").format(
        rows=rows, lacks=lacks_badge(award, sql.SQL("changed.user_id"), target.badge.code))


def award_query(target: Target, op: str, award: AwardTable, channel: str,
                new_src: sql.Composable, old_src: sql.Composable, *, op_label: str | None = None,
                single_row: bool = False, into: str | None = None,
                events: bool = True) -> sql.Composed:
    """Insert the winners' awards and notify each one; yields the number awarded."""
    return grant_winners(target, op, award, channel,
                         winners_query(target, op, award, new_src, old_src, single_row),
                         op_label=op_label, into=into, events=events)


def grant_winners(target: Target, op: str, award: AwardTable, channel: str,
                  winners: sql.Composable, *, op_label: str | None = None,
                  into: str | None = None, events: bool = True) -> sql.Composed:
    """Insert an award for each user_id `winners` yields and notify each one granted."""
    b = target.badge
    return grant_query(award, channel, winners, code=b.code, name=b.name,
                       table=target.table.display, op=op_label or op, into=into, events=events)


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
