"""The one-row path of a table's trigger function (generator 8): every badge of the table
and operation decided for the one changed row held in NEW/OLD.

Statements, each paid once whatever the number of badges:
1. one read of the pause state (all paused codes: the table is small; '*' returns);
2. one PL/pgSQL expression, no query, for every plain-expression condition: the codes won
   (with nothing paused and no redo, the pause tests are left out altogether); whether
   the user holds them is probed only for those, in the award statement (most writes
   meet no plain condition and pay no holder lookup);
3. for conditions that read other rows, one holder lookup (per user field, usually one):
   the codes the user holds;
4. one lock statement for the value groups (a condition that reads other rows, or the
   levels of one value): one (value, user) advisory lock each, else the row is queued for
   each badge of the group (sqlgen_locks);
5. one query per value: each threshold compared against one evaluation, in a later
   statement than the lock, so READ COMMITTED shows what the lock's previous holder
   committed;
6. one insert of all the awards (event and NOTIFY each).

When anything in the batch fails, the function runs it again for each badge alone
(bc_only, see sqlgen_table), so the failing badge logs (and auto-pauses) alone and the
others still award.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import SCHEMA, AwardTable, Target, row_record
from .sqlgen_events import grant_query
from .sqlgen_locks import LOCK_WAIT, target_lock_key, user_lock_key
from .sqlgen_winners import lacks_badge



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


def active(code: sql.Composable) -> sql.Composed:
    """This badge is judged now: not paused, and in this pass (bc_only: the redo's one)."""
    return sql.SQL("NOT {c} = ANY (bc_paused) AND (bc_only IS NULL OR {c} = ANY (bc_only))"
                   ).format(c=code)


def group_value(group: list[Target]) -> tuple[sql.Composable, list[sql.Composed]]:
    """The group's value (a SELECT) and, per badge, its test on that value `q.v`: its
    threshold compared, or, for a condition of its own, the value itself."""
    info = group[0].info
    if info.value_sql is not None:
        return sql.SQL(info.value_sql), [
            sql.SQL("q.v {op} {at}").format(op=sql.SQL(t.info.comparison),
                                            at=sql.SQL(t.info.threshold)) for t in group]
    return sql.SQL(info.select_sql), [sql.SQL("q.v") for _ in group]


def _held(unit, award: AwardTable) -> sql.Composed:
    """bc_held: the codes the user (each user field's) holds; `i:code` with several fields."""
    rec, fields = row_record(unit.op), user_fields(unit)
    parts = [sql.SQL("ARRAY(SELECT {p}held.code::text FROM {award} AS held"
                     " WHERE held.user_id = {rec}.{uf})").format(
        p=sql.SQL("") if len(fields) == 1 else sql.SQL("{}::text || ':' || ").format(
            sql.Literal(i)), award=award.ident, rec=rec, uf=sql.Identifier(uf))
        for i, uf in enumerate(fields)]
    return sql.SQL("  bc_held := {};\n").format(sql.SQL(" || ").join(parts))


def _not_held(unit, target: Target) -> sql.Composed:
    fields = user_fields(unit)
    key = target.badge.code if len(fields) == 1 else \
        f"{fields.index(target.badge.user_field)}:{target.badge.code}"
    return sql.SQL("NOT {} = ANY (bc_held)").format(sql.Literal(key))


def _has_user(unit, target: Target) -> sql.Composed:
    return sql.SQL("{}.{} IS NOT NULL").format(row_record(unit.op),
                                               sql.Identifier(target.badge.user_field))


def _early(unit, early: list[Target], checked: bool) -> sql.Composed:
    """bc_win := the plain-expression badges won; `checked` adds the pause and redo tests."""
    cases = [sql.SQL("CASE WHEN {user}{active} AND ({cond}) THEN {code} END").format(
        user=_has_user(unit, t), cond=t.condition,
        active=sql.SQL(" AND {}").format(active(sql.Literal(t.badge.code))) if checked
        else sql.SQL(""), code=sql.Literal(t.badge.code)) for t in early]
    return sql.SQL("bc_win := array_remove(ARRAY[{}]::text[], NULL);").format(
        sql.SQL(",\n      ").join(cases))


def _groups_values(unit, gs: list[list[Target]]) -> sql.Composed:
    """The value groups as a relation: index, lock key, user, the codes, OLD needed."""
    rec = row_record(unit.op)
    rows = [sql.SQL("({i}, {key}, {rec}.{uf}, {codes}::text[], {pairs})").format(
        i=sql.Literal(i), key=sql.Literal(target_lock_key(g[0])), rec=rec,
        uf=sql.Identifier(g[0].badge.user_field),
        codes=sql.Literal([t.badge.code for t in g]),
        pairs=sql.Literal(unit.op == "delete" or any(t.needs_old_and_new(unit.op) for t in g)))
        for i, g in enumerate(gs)]
    return sql.SQL("(VALUES {}) AS g(i, k, u, codes, pairs)").format(sql.SQL(", ").join(rows))


def _lock(unit, gs: list[list[Target]]) -> sql.Composed:
    """bc_groups := the groups whose (value, user) lock this transaction now holds, each
    tried once (CASE keeps the order: only wanted groups), all within one LOCK_WAIT; for a
    group whose lock another transaction holds, the row is queued for each of its badges
    judged now."""
    wanted = sql.SQL("array_remove(ARRAY[{}]::int[], NULL)").format(sql.SQL(", ").join(
        sql.SQL("CASE WHEN {user} AND {some} THEN {i} END").format(
            user=_has_user(unit, g[0]), i=sql.Literal(i),
            some=sql.SQL(" OR ").join(sql.SQL("({})").format(active(sql.Literal(t.badge.code)))
                                     for t in g)) for i, g in enumerate(gs)))
    new = sql.SQL("to_jsonb(NEW)") if unit.op != "delete" else sql.SQL("NULL")
    ukey = user_lock_key(sql.SQL("g.u"))
    return sql.SQL(
        "  bc_groups := {wanted};\n"
        "  IF cardinality(bc_groups) > 0 THEN\n"
        "    bc_deadline := clock_timestamp() + {wait}::interval;\n"
        "    SELECT coalesce(array_agg(g.i), '{{}}') INTO bc_groups FROM {values}\n"
        "      WHERE CASE WHEN g.i = ANY (bc_groups) THEN\n"
        "        pg_try_advisory_xact_lock(g.k, {ukey})\n"
        "        OR {s}.lock_within(g.k, {ukey}, bc_deadline)\n"
        "        OR (SELECT bool_or({s}.enqueue(c, {op}, (g.u)::text, {new},\n"
        "                CASE WHEN g.pairs THEN to_jsonb(OLD) END))\n"
        "            FROM unnest(g.codes) AS c WHERE {active_c})\n"
        "        ELSE false END;\n").format(
        wanted=wanted, wait=sql.Literal(LOCK_WAIT), values=_groups_values(unit, gs), ukey=ukey,
        s=sql.Identifier(SCHEMA), op=sql.Literal(unit.op), new=new,
        active_c=active(sql.SQL("c")))


def _group_query(unit, index: int, group: list[Target]) -> sql.Composed:
    """One evaluation of the group's value: the codes it awards (threshold met, judged now,
    not held), appended to bc_win."""
    value, tests = group_value(group)
    tests = [sql.SQL("CASE WHEN ({test}) AND {active} AND {held} THEN {code} END").format(
        test=test, active=active(sql.Literal(t.badge.code)), held=_not_held(unit, t),
        code=sql.Literal(t.badge.code)) for t, test in zip(group, tests)]
    return sql.SQL(
        "    IF {i} = ANY (bc_groups) THEN\n"
        "      SELECT bc_win || array_remove(ARRAY[{tests}]::text[], NULL) INTO bc_win\n"
        "        FROM (SELECT ({value}) AS v OFFSET 0) AS q;  -- once, not per use\n"
        "    END IF;\n").format(
        i=sql.Literal(index), tests=sql.SQL(", ").join(tests), value=value)


def _names(unit) -> sql.Composed:
    """The unit's badges as a relation (code, name, user_id) for the row in NEW/OLD."""
    rec = row_record(unit.op)
    return sql.SQL("(VALUES {}) AS b(code, name, user_id)").format(sql.SQL(", ").join(
        sql.SQL("({}::text, {}::text, {}.{})").format(
            sql.Literal(t.badge.code), sql.Literal(t.badge.name), rec,
            sql.Identifier(t.badge.user_field)) for t in unit.targets))


def one_row_batch(unit, award: AwardTable, channel: str) -> sql.Composed:
    """Every badge of the unit for the row in NEW/OLD, in the fewest statements."""
    early = [t for t in unit.targets if not t.locks]
    gs = groups(unit)
    parts = [read_pauses()]
    if early:
        parts.append(sql.SQL(
            "  IF cardinality(bc_paused) = 0 AND bc_only IS NULL THEN\n    {fast}\n"
            "  ELSE\n    {checked}\n  END IF;\n").format(
            fast=_early(unit, early, False), checked=_early(unit, early, True)))
    else:
        parts.append(sql.SQL("  bc_win := '{}';\n"))
    if gs:
        parts += [_held(unit, award), _lock(unit, gs)]
        parts += [_group_query(unit, i, g) for i, g in enumerate(gs)]
        parts.append(sql.SQL("  END IF;\n"))
    winners = sql.SQL("SELECT b.user_id, b.code, b.name FROM unnest(bc_win) AS w(code)"
                      " JOIN {names} ON b.code = w.code WHERE {lacks}").format(
        names=_names(unit), lacks=lacks_badge(award, sql.SQL("b.user_id"), sql.SQL("b.code")))
    parts.append(sql.SQL("  IF cardinality(bc_win) > 0 THEN\n{};\n  END IF;\n").format(
        grant_query(award, channel, winners, code=None, name=None, table=unit.table.display,
                    op=unit.op, into="n_awarded")))
    return sql.SQL("").join(parts)
