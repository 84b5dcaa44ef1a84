"""The one-row path of a table's trigger function (generator 8): every badge of the table
and operation decided for the one changed row held in NEW/OLD.

Statements, each paid once whatever the number of badges:
1. one read of the pause state (all paused codes: the table is small; '*' returns);
2. one PL/pgSQL expression, no query: the candidate codes (a user, not paused, and for a
   plain-expression condition the condition itself);
3. one holder lookup (per user field, usually one): the codes the user holds, removed;
4. one lock statement for the remaining conditions that read other rows, taking each
   (badge, user) advisory lock as generator 7 did, else queueing the row (sqlgen_locks);
5. one query per distinct value: badges whose conditions differ only in the threshold
   (levels) compare each threshold against one evaluation; a later statement than the
   lock, so READ COMMITTED shows what the lock's previous holder committed;
6. one insert of all the awards (event and NOTIFY each).
Code sets are joined as relations (unnest ... JOIN VALUES) rather than tested element by
element, so 500 badges do not cost 500 x 500 comparisons.

When anything in the batch fails, the function runs it again for each badge alone
(bc_only, see sqlgen_table), so the failing badge logs (and auto-pauses) alone and the
others still award.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import SCHEMA, AwardTable, Target, row_record
from .sqlgen_events import grant_query
from .sqlgen_locks import LOCK_WAIT, target_lock_key, user_lock_key

BADGE_COLUMNS = "code, name, locks, user_id, ufi, grp, bkey, pairs"


def read_pauses() -> sql.Composed:
    """All paused codes into bc_paused; return at once while every badge is paused."""
    return sql.SQL(
        "  SELECT coalesce(array_agg(code), '{{}}') INTO bc_paused FROM {s}.paused;\n"
        "  IF '*' = ANY (bc_paused) THEN\n    RETURN NULL;\n  END IF;\n").format(
        s=sql.Identifier(SCHEMA))


def user_fields(unit) -> list[str]:
    return list(dict.fromkeys(t.badge.user_field for t in unit.targets))


def groups(unit) -> list[list[Target]]:
    """The unit's conditions that read other rows, grouped by the value they compute."""
    found: dict[str, list[Target]] = {}
    for t in unit.targets:
        if t.locks:
            found.setdefault(t.info.value_sql or t.info.select_sql, []).append(t)
    return list(found.values())


def badges_values(unit) -> sql.Composed:
    """The unit's badges as a relation (BADGE_COLUMNS) for the row in NEW/OLD: joined with
    a set of codes instead of testing each code."""
    rec, fields = row_record(unit.op), user_fields(unit)
    grp = {t.badge.code: i for i, g in enumerate(groups(unit)) for t in g}
    rows = []
    for t in unit.targets:
        b = t.badge
        rows.append(sql.SQL("({code}::text, {name}::text, {locks}, {rec}.{uf}, {ufi}, {grp},"
                            " {bkey}, {pairs})").format(
            code=sql.Literal(b.code), name=sql.Literal(b.name), locks=sql.Literal(t.locks),
            rec=rec, uf=sql.Identifier(b.user_field), ufi=sql.Literal(fields.index(b.user_field)),
            grp=sql.Literal(grp.get(b.code, -1)), bkey=sql.Literal(target_lock_key(t)),
            pairs=sql.Literal(unit.op == "delete" or t.needs_old_and_new(unit.op))))
    return sql.SQL("(VALUES {}) AS b({})").format(sql.SQL(", ").join(rows),
                                                  sql.SQL(BADGE_COLUMNS))


def active(code: sql.Composable) -> sql.Composed:
    """This badge is judged now: not paused, and in this pass (bc_only: the redo's one)."""
    return sql.SQL("NOT {c} = ANY (bc_paused) AND (bc_only IS NULL OR {c} = ANY (bc_only))"
                   ).format(c=code)


def _candidates(unit) -> sql.Composed:
    rec = row_record(unit.op)
    cases = []
    for t in unit.targets:
        code = sql.Literal(t.badge.code)
        test = sql.SQL("{rec}.{uf} IS NOT NULL AND {active}").format(
            rec=rec, uf=sql.Identifier(t.badge.user_field), active=active(code))
        if not t.locks:
            test = sql.SQL("{} AND ({})").format(test, t.condition)
        cases.append(sql.SQL("CASE WHEN {} THEN {} END").format(test, code))
    return sql.SQL("  bc_cand := array_remove(ARRAY[{}]::text[], NULL);\n").format(
        sql.SQL(",\n    ").join(cases))


def _not_held(unit, award: AwardTable) -> sql.Composed:
    """The badge b is not held by its user: one lookup of the user's awards per user field."""
    rec, fields = row_record(unit.op), user_fields(unit)

    def held(uf: str) -> sql.Composed:
        return sql.SQL("b.code <> ALL (ARRAY(SELECT held.code::text FROM {award} AS held"
                       " WHERE held.user_id = {rec}.{uf}))").format(
            award=award.ident, rec=rec, uf=sql.Identifier(uf))
    if len(fields) == 1:
        return held(fields[0])
    return sql.SQL("CASE b.ufi {} END").format(sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(i), held(uf))
        for i, uf in enumerate(fields)))


def _lock(unit, badges: sql.Composable) -> sql.Composed:
    """Take the lock of each distinct (value or badge, user) the remaining conditions that
    read other rows need, all within one LOCK_WAIT; queue the row for each badge whose lock
    another transaction holds (n_awarded only receives the count). Both CTEs are
    materialized so each lock is tried once, after the join."""
    new = sql.SQL("to_jsonb(NEW)") if unit.op != "delete" else sql.SQL("NULL")
    old = sql.SQL("CASE WHEN cand.pairs THEN to_jsonb(OLD) END")
    ukey = user_lock_key(sql.SQL("k.user_id"))
    return sql.SQL(
        "    bc_deadline := clock_timestamp() + {wait}::interval;\n"
        "    WITH cand AS MATERIALIZED (\n"
        "      SELECT b.* FROM unnest(bc_cand) AS c(code) JOIN {badges} ON b.code = c.code\n"
        "    ), keys AS MATERIALIZED (\n"
        "      SELECT k.bkey, k.user_id, (pg_try_advisory_xact_lock(k.bkey, {ukey})\n"
        "             OR {s}.lock_within(k.bkey, {ukey}, bc_deadline)) AS got\n"
        "        FROM (SELECT DISTINCT bkey, user_id FROM cand) AS k\n"
        "    )\n"
        "    SELECT coalesce(array_agg(cand.code) FILTER (WHERE keys.got), '{{}}'),\n"
        "           coalesce(array_agg(DISTINCT cand.grp) FILTER (WHERE keys.got), '{{}}'),\n"
        "           count(*) FILTER (WHERE NOT keys.got AND NOT {s}.enqueue(\n"
        "             cand.code, {op}, (cand.user_id)::text, {new}, {old}))\n"
        "      INTO bc_cand, bc_groups, n_awarded\n"
        "      FROM cand JOIN keys ON keys.bkey = cand.bkey AND keys.user_id = cand.user_id;\n"
        ).format(wait=sql.Literal(LOCK_WAIT), badges=badges, ukey=ukey,
                 s=sql.Identifier(SCHEMA), op=sql.Literal(unit.op), new=new, old=old)


def group_value(group: list[Target]) -> tuple[sql.Composable, list[sql.Composed]]:
    """The group's value (a SELECT) and, per badge, `CASE WHEN <test on q.v> THEN code END`:
    each threshold compared to the one value, or a condition of its own as the value."""
    info = group[0].info
    if info.value_sql is not None:
        return sql.SQL(info.value_sql), [
            sql.SQL("CASE WHEN q.v {op} {at} THEN {code}::text END").format(
                op=sql.SQL(t.info.comparison), at=sql.SQL(t.info.threshold),
                code=sql.Literal(t.badge.code)) for t in group]
    return sql.SQL(info.select_sql), [
        sql.SQL("CASE WHEN q.v THEN {}::text END").format(sql.Literal(t.badge.code))
        for t in group]


def _group_query(index: int, group: list[Target]) -> sql.Composed:
    """One evaluation of the group's value: the codes it awards, appended to bc_win."""
    value, tests = group_value(group)
    return sql.SQL(
        "    IF {i} = ANY (bc_groups) THEN\n"
        "      SELECT bc_win || array_remove(ARRAY[{tests}]::text[], NULL) INTO bc_win\n"
        "        FROM (SELECT ({value}) AS v OFFSET 0) AS q;  -- once, not per use\n"
        "    END IF;\n").format(
        i=sql.Literal(index), tests=sql.SQL(", ").join(tests), value=value)


def one_row_batch(unit, award: AwardTable, channel: str) -> sql.Composed:
    """Every badge of the unit for the row in NEW/OLD, in the fewest statements."""
    badges = badges_values(unit)
    winners = sql.SQL(
        "SELECT b.user_id, b.code, b.name FROM unnest(bc_win) AS w(code) JOIN {badges}"
        " ON b.code = w.code\n    WHERE NOT b.locks OR b.code = ANY (bc_cand)").format(
        badges=badges)
    grant = grant_query(award, channel, winners, code=None, name=None,
                        table=unit.table.display, op=unit.op, into="n_awarded")
    gs = groups(unit)
    locked = sql.SQL("") if not gs else sql.SQL(
        "    IF cardinality(bc_cand) > 0 THEN\n{lock}{groups}    END IF;\n").format(
        lock=_lock(unit, badges),
        groups=sql.SQL("").join(_group_query(i, g) for i, g in enumerate(gs)))
    return sql.SQL(
        "{pauses}{cand}  IF cardinality(bc_cand) > 0 THEN\n"
        "    SELECT coalesce(array_agg(b.code) FILTER (WHERE NOT b.locks), '{{}}'),\n"
        "           coalesce(array_agg(b.code) FILTER (WHERE b.locks), '{{}}')\n"
        "      INTO bc_win, bc_cand\n"
        "      FROM unnest(bc_cand) AS c(code) JOIN {badges} ON b.code = c.code\n"
        "      WHERE {not_held};\n{locked}"
        "    IF cardinality(bc_win) > 0 THEN\n{grant};\n    END IF;\n  END IF;\n").format(
        pauses=read_pauses(), cand=_candidates(unit), badges=badges,
        not_held=_not_held(unit, award), locked=locked, grant=grant)
