"""The set-based path of a table's trigger function (generator 8): a statement that
changed several rows.

Plain-expression badges share one projection of the transition table: the changed rows
reduced to the distinct combinations of the columns any of them reads, each combination
giving the codes whose condition holds (one array per user field, a family of thresholds
as one width_bucket: sqlgen_thresholds), holders skipped by the index probe, all awarded
by one insert. Conditions that read other rows go by value group (the levels of one
value, or one badge): the lock of every changed user lacking one of them (sqlgen_locks,
one key per value), then the value once per distinct projected row, its thresholds
compared. The whole runs in one subtransaction; when it fails, again for each
badge alone (bc_only, see sqlgen_table) so the failing one only logs its own error. The
pause is read once for all.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import NEW_TABLE, OLD_TABLE, AwardTable, row_alias
from .sqlgen_events import grant_query
from .sqlgen_locks import lock_or_queue_set
from .sqlgen_table_row import (active, alone, changed_rows, group_test, group_value, groups,
                               read_pauses, some_active)
from .sqlgen_thresholds import codes_met, families
from .sqlgen_winners import lacks_badge


def _rows(unit, early, users: sql.Composable | None = None) -> sql.Composed:
    """The changed rows reduced to the distinct combinations of the columns the
    conditions read (the whole rows where one reads NEW or OLD as a record)."""
    alias = row_alias(unit.op)
    infos = [t.info for t in early]
    whole = any(i.whole_old if alias == "old" else i.whole_new for i in infos)
    if (unit.pairs and unit.op == "update") or whole:
        return changed_rows(unit)
    src = sql.Identifier(OLD_TABLE if alias == "old" else NEW_TABLE)
    cols = set().union(*(i.old_columns if alias == "old" else i.new_columns for i in infos))
    wanted = list(dict.fromkeys([*(t.badge.user_field for t in early), *sorted(cols)]))
    distinct = sql.SQL("") if any(t.volatile for t in early) else sql.SQL("DISTINCT ")
    rows = sql.SQL("SELECT {d}{cols} FROM {src}").format(
        d=distinct, cols=sql.SQL(", ").join(map(sql.Identifier, wanted)), src=src)
    if users is not None:  # after the de-duplication: one probe per distinct row
        rows = sql.SQL("SELECT * FROM ({rows}) AS {a} WHERE {u} OFFSET 0").format(
            rows=rows, a=sql.Identifier(alias), u=users)
    return sql.SQL("({rows}) AS {a}").format(rows=rows, a=sql.Identifier(alias))


def _grant(unit, targets, candidates: sql.Composable, award: AwardTable,
           channel: str) -> sql.Composed:
    """Award the distinct (user_id, code) pairs `candidates` yields (fenced: holders are
    probed after the de-duplication), with each badge's name; one insert, in user then
    code order (the awards of one statement keep that order in ids and events)."""
    names = sql.SQL(", ").join(sql.SQL("({}::text, {}::text)").format(
        sql.Literal(t.badge.code), sql.Literal(t.badge.name)) for t in targets)
    winners = sql.SQL(
        "SELECT w.user_id, w.code, b.name FROM ({candidates} OFFSET 0) AS w\n"
        "    JOIN (VALUES {names}) AS b(code, name) ON b.code = w.code\n"
        "    WHERE {lacks}\n    ORDER BY w.user_id, w.code").format(
        candidates=candidates, names=names,
        lacks=lacks_badge(award, sql.SQL("w.user_id"), sql.SQL("w.code")))
    return grant_query(award, channel, winners, code=None, name=None,
                       table=unit.table.display, op=unit.op, into="n_awarded")


def _judged(t) -> sql.Composed:
    """The badge's condition behind its pause and redo test (a sub-select: an InitPlan,
    run once per statement, not per row)."""
    return sql.SQL("(SELECT {}) AND ({})").format(active(sql.Literal(t.badge.code)),
                                                  t.condition)


def _won_rows(unit, early) -> sql.Composed:
    """The distinct (user_id, code) pairs the changed rows win among the plain-expression
    badges. Families only: each user's highest value (_highest_per_user); one badge: the
    rows its condition keeps; families beside other tests: an array of codes per user
    field (codes_met), unnested; else a VALUES row per badge, cheaper than building and
    unnesting arrays."""
    alias = sql.Identifier(row_alias(unit.op))
    folded, rest = families(early)
    if folded and not rest:
        return _highest_per_user(unit, folded)
    if len(early) == 1:  # judged now (bc_active); its condition filters the scan: one
        t = early[0]     # de-duplication, not two
        return sql.SQL("SELECT DISTINCT {a}.{uf} AS user_id, {code}::text AS code"
                       " FROM {rows}\n      WHERE {a}.{uf} IS NOT NULL AND {test}").format(
            a=alias, uf=sql.Identifier(t.badge.user_field), code=sql.Literal(t.badge.code),
            rows=changed_rows(unit), test=t.condition)
    if not folded:
        pairs = sql.SQL(", ").join(sql.SQL(
            "({a}.{uf}, CASE WHEN {test} THEN {code}::text END)").format(
                a=alias, uf=sql.Identifier(t.badge.user_field), test=_judged(t),
                code=sql.Literal(t.badge.code)) for t in early)
        return sql.SQL("SELECT DISTINCT w.user_id, w.code FROM {rows}\n"
                       "      CROSS JOIN LATERAL (VALUES {pairs}) AS w(user_id, code)\n"
                       "      WHERE w.code IS NOT NULL AND w.user_id IS NOT NULL").format(
            rows=_rows(unit, early), pairs=pairs)
    fields = list(dict.fromkeys(t.badge.user_field for t in early))
    won = sql.SQL(", ").join(sql.SQL("({a}.{uf}, {codes})").format(
        a=alias, uf=sql.Identifier(uf), codes=codes_met(
            [t for t in early if t.badge.user_field == uf], lambda f: f.value, _judged,
            lambda f: sql.SQL("(SELECT {})").format(
                some_active(sql.Literal(f.codes), sql.SQL("bc_paused"))))) for uf in fields)
    return sql.SQL(
        "SELECT DISTINCT c.user_id, w.code FROM {rows}\n"
        "      CROSS JOIN LATERAL (VALUES {won}) AS c(user_id, codes)\n"
        "      CROSS JOIN LATERAL unnest(c.codes) AS w(code)\n"
        "      WHERE c.user_id IS NOT NULL AND w.code = ANY (bc_active)").format(
        rows=_rows(unit, early), won=won)


def _highest_per_user(unit, folded) -> sql.Composed:
    """The (user_id, code) pairs won when every plain-expression badge belongs to a family
    of thresholds: a user's rows reach the thresholds their highest value reaches
    (width_bucket only grows with the value; max skips NULLs as the test does), so the
    changed rows reduce to one per user and user field before any threshold is looked at
    (50,000 rows of 200 users: 200 width_buckets, not 50,000). A family none of whose
    badges is judged now computes no value (FILTER: a paused one may no longer plan)."""
    alias, parts = sql.Identifier(row_alias(unit.op)), []
    for uf in dict.fromkeys(f.user_field for f in folded):
        mine = [f for f in folded if f.user_field == uf]
        highest = sql.SQL(", ").join(
            sql.SQL("max({v}) FILTER (WHERE (SELECT {judged})) AS m{i}").format(
                v=f.value, i=sql.Literal(i),
                judged=some_active(sql.Literal(f.codes), sql.SQL("bc_paused")))
            for i, f in enumerate(mine))
        codes = sql.SQL(" || ").join(f.met(sql.SQL("g.m{}").format(sql.Literal(i)))
                                     for i, f in enumerate(mine))
        parts.append(sql.SQL(
            "SELECT g.user_id, w.code FROM (SELECT {a}.{uf} AS user_id, {highest}\n"
            "        FROM {rows} WHERE {a}.{uf} IS NOT NULL GROUP BY 1) AS g\n"
            "      CROSS JOIN LATERAL unnest(coalesce({codes}, '{{}}')) AS w(code)\n"
            "      WHERE w.code = ANY (bc_active)").format(
            a=alias, uf=sql.Identifier(uf), highest=highest, rows=changed_rows(unit),
            codes=codes))
    return sql.SQL("\n      UNION ALL ").join(parts)


def _early_batch(unit, early, award: AwardTable, channel: str) -> sql.Composed:
    """The plain-expression badges judged now (bc_active, read once; none: no query): the
    codes the changed rows win (_won_rows), one insert. The redo's pass for one of several
    judges it alone (_users_alone)."""
    grant = _grant(unit, early, _won_rows(unit, early), award, channel)
    if len(early) > 1:
        grant = sql.SQL("  IF bc_only IS NULL THEN\n{grant};\n  ELSE\n"
                        "    EXECUTE {alone} INTO bc_users;\n"
                        "    IF cardinality(bc_users) > 0 THEN\n{again};\n    END IF;\n"
                        "  END IF").format(
            grant=grant, alone=alone(early, lambda t: _users_alone(unit, t)),
            again=_grant(unit, early, _redo_winners(unit, early), award, channel))
    return sql.SQL(
        "  bc_active := ARRAY(SELECT c FROM unnest({codes}::text[]) AS c WHERE {active});\n"
        "  IF cardinality(bc_active) > 0 THEN\n{grant};\n  END IF;\n").format(
        codes=sql.Literal([t.badge.code for t in early]), active=active(sql.SQL("c")),
        grant=grant)


def _users_alone(unit, t) -> sql.Composed:
    """The users (as text) whose changed rows win this badge alone (judged now: bc_active
    holds it)."""
    alias, uf = sql.Identifier(row_alias(unit.op)), sql.Identifier(t.badge.user_field)
    return sql.SQL("SELECT ARRAY(SELECT DISTINCT ({a}.{uf})::text FROM {rows}"
                   " WHERE {a}.{uf} IS NOT NULL AND ({cond}))").format(
        a=alias, uf=uf, rows=changed_rows(unit), cond=t.condition)


def _redo_winners(unit, early) -> sql.Composed:
    """The (user_id, bc_code) pairs of the users in bc_users, with their own type: the
    changed rows read again through the badge's user field."""
    alias = sql.Identifier(row_alias(unit.op))
    fields: dict[str, list[str]] = {}
    for t in early:
        fields.setdefault(t.badge.user_field, []).append(t.badge.code)
    return sql.SQL("SELECT DISTINCT w.user_id, w.code FROM ({}) AS w").format(
        sql.SQL(" UNION ALL ").join(sql.SQL(
            "SELECT {a}.{uf} AS user_id, bc_code AS code FROM {rows}"
            " WHERE bc_code = ANY ({codes}::text[]) AND ({a}.{uf})::text = ANY (bc_users)"
        ).format(a=alias, uf=sql.Identifier(uf), rows=changed_rows(unit), codes=sql.Literal(codes))
            for uf, codes in fields.items()))


def _lacks_any(award: AwardTable, user: sql.Composable) -> sql.Composed:
    """The user lacks one of the group's badges judged now (bc_active): one index probe."""
    return sql.SQL("NOT (bc_active <@ ARRAY(SELECT held.code::text FROM {award} AS held"
                   " WHERE held.user_id = {user}))").format(award=award.ident, user=user)


def _group_batch(unit, group, award: AwardTable, channel: str) -> sql.Composed:
    """The group's value once per distinct projected row of users lacking one of its
    badges, each threshold compared; not paused, not held; one insert."""
    user = sql.SQL("{}.{}").format(sql.Identifier(row_alias(unit.op)),
                                   sql.Identifier(group[0].badge.user_field))
    value, v = group_value(group), sql.SQL("q.v")
    if families(group)[0]:
        codes = sql.SQL("unnest({})").format(codes_met(group, lambda f: v, group_test(v)))
    else:  # a VALUES row per badge: no array to build and unnest
        test = group_test(v)
        codes = sql.SQL("(VALUES {})").format(sql.SQL(", ").join(
            sql.SQL("(CASE WHEN {} THEN {}::text END)").format(test(t), sql.Literal(t.badge.code))
            for t in group))
    return _grant(unit, group, sql.SQL(
        "SELECT DISTINCT {user} AS user_id, c.code FROM {rows}\n"
        "      CROSS JOIN LATERAL (SELECT ({value}) AS v OFFSET 0) AS q  -- once, not per use\n"
        "      CROSS JOIN LATERAL {codes} AS c(code)\n"
        "      WHERE c.code = ANY (bc_active)").format(
        user=user, rows=_rows(unit, group, sql.SQL("{} IS NOT NULL AND {}").format(
            user, _lacks_any(award, user))), value=value, codes=codes),
        award, channel)


def _group(unit, group, award: AwardTable, channel: str) -> sql.Composed:
    """A value group: its badges judged now (bc_active); lock (or queue) the changed users
    lacking one of them, then the group's batch."""
    codes = sql.Literal([t.badge.code for t in group])
    return sql.SQL(
        "  bc_active := ARRAY(SELECT c FROM unnest({codes}::text[]) AS c WHERE {active});\n"
        "  IF cardinality(bc_active) > 0 THEN\n{lock}{batch};\n  END IF;\n").format(
        codes=codes, active=active(sql.SQL("c")),
        lock=lock_or_queue_set(group, unit.op, lambda u: _lacks_any(award, u),
                               sql.SQL("bc_active")),
        batch=_group_batch(unit, group, award, channel))


def set_based(unit, award: AwardTable, channel: str) -> sql.Composed:
    early = [t for t in unit.targets if not t.locks]
    parts = [read_pauses()]
    if early:
        parts.append(_early_batch(unit, early, award, channel))
    parts += [_group(unit, g, award, channel) for g in groups(unit)]
    return sql.SQL("").join(parts)
