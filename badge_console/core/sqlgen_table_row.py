"""The one-row path of a table's trigger function (generator 8): every badge of the table
and operation decided for the one changed row held in NEW/OLD.

A write pays for every statement it runs, each simple PL/pgSQL expression included
(PostgreSQL sets each one up anew in every transaction), so the path runs as few as it
can, whatever the number of badges (bench/badges_per_table.py, trigger_overhead.py):
1. one state statement: the paused codes and, when conditions read other rows, the codes
   the user holds and one (value, user) advisory lock per value group (a condition that
   reads other rows, or the levels of one value) the user can still earn from;
2. one PL/pgSQL expression, no query, for the plain-expression conditions while nothing
   is paused and this is no redo (families of thresholds as one width_bucket,
   sqlgen_thresholds); else '*' returns, and they are judged behind their pause tests;
3. one query per locked value group: its thresholds against one evaluation, in a later
   statement than the lock, so READ COMMITTED shows what the lock's previous holder
   committed; a contended group's row is queued for reconcile instead (sqlgen_locks);
4. one insert of all the awards (event and NOTIFY each), only when some badge was won;
   whether the user holds a plain-expression badge is probed there, for those won only.

When anything in the batch fails, the function runs it again for each badge alone
(bc_only, see sqlgen_table), so the failing badge logs (and auto-pauses) alone and the
others still award.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import NEW_TABLE, OLD_TABLE, SCHEMA, AwardTable, Target, row_alias, row_record
from .sqlgen_events import grant_query
from .sqlgen_locks import LOCK_WAIT, target_lock_key, user_lock_key
from .sqlgen_thresholds import codes_met, families
from .sqlgen_winners import lacks_badge

PAUSED = sql.SQL("bc_paused")


def read_pauses() -> sql.Composed:
    """All paused codes into bc_paused; return at once while every badge is paused."""
    return sql.SQL(
        "  SELECT coalesce(array_agg(code), '{{}}') INTO bc_paused FROM {s}.paused;\n"
        "{star}").format(s=sql.Identifier(SCHEMA), star=_all_paused())


def _all_paused() -> sql.SQL:
    return sql.SQL("  IF '*' = ANY (bc_paused) THEN\n    RETURN NULL;\n  END IF;\n")


def user_fields(unit) -> list[str]:
    return list(dict.fromkeys(t.badge.user_field for t in unit.targets))


def groups(unit) -> list[list[Target]]:
    """The unit's conditions that read other rows, grouped by the value they compute."""
    found: dict[str, list[Target]] = {}
    for t in unit.targets:
        if t.locks:
            found.setdefault(t.info.value_sql or t.info.select_sql, []).append(t)
    return list(found.values())


def active(code: sql.Composable, paused: sql.Composable = PAUSED) -> sql.Composed:
    """This badge is judged now: not paused, and in this pass (bc_only: the redo's one)."""
    return sql.SQL("NOT {c} = ANY ({p}) AND (bc_only IS NULL OR {c} = ANY (bc_only))"
                   ).format(c=code, p=paused)


def some_active(codes: sql.Composable, paused: sql.Composable) -> sql.Composed:
    """One of `codes` (a text[]) is judged now; one expression whatever their number
    (bc_only, the redo's pass, holds one code)."""
    return sql.SQL("CASE WHEN bc_only IS NULL THEN NOT {c} <@ {p}"
                   " ELSE {c} && bc_only AND NOT bc_only <@ {p} END").format(c=codes, p=paused)


def group_value(group: list[Target]) -> sql.SQL:
    """The group's value: a SELECT (the levels' value, or a condition of its own)."""
    info = group[0].info
    return sql.SQL(info.value_sql if info.value_sql is not None else info.select_sql)


def group_test(v: sql.Composable):
    """Per badge of a group, its test on the group's value `v` (for
    sqlgen_thresholds.codes_met): its threshold compared, or, for a condition of its own,
    the value itself."""
    def test(t: Target) -> sql.Composable:
        if t.info.value_sql is None:
            return v
        return sql.SQL("{} {} {}").format(v, sql.SQL(t.info.comparison),
                                          sql.SQL(t.info.threshold))
    return test


def _held(unit, award: AwardTable) -> sql.Composed:
    """The codes the user (each user field's) holds; `i:code` with several fields."""
    rec, fields = row_record(unit.op), user_fields(unit)
    parts = [sql.SQL("ARRAY(SELECT {p}held.code::text FROM {award} AS held"
                     " WHERE held.user_id = {rec}.{uf})").format(
        p=sql.SQL("") if len(fields) == 1 else sql.SQL("{}::text || ':' || ").format(
            sql.Literal(i)), award=award.ident, rec=rec, uf=sql.Identifier(uf))
        for i, uf in enumerate(fields)]
    return sql.SQL(" || ").join(parts)


def _not_held(unit, group: list[Target], code: sql.Composable) -> sql.Composed:
    fields = user_fields(unit)
    if len(fields) > 1:  # as _held_keys spells it
        code = sql.SQL("({}::text || ':' || {})").format(
            sql.Literal(fields.index(group[0].badge.user_field)), code)
    return sql.SQL("NOT {} = ANY (bc_held)").format(code)


def _has_user(unit, user_field: str) -> sql.Composed:
    return sql.SQL("{}.{} IS NOT NULL").format(row_record(unit.op), sql.Identifier(user_field))


def _won(unit, early: list[Target], checked: bool) -> sql.Composed:
    """text[]: the plain-expression badges won; `checked` puts each condition behind its
    badge's pause and redo test, so that only the badges judged now are computed."""
    def test(t):
        judged = sql.SQL("{} AND ").format(active(sql.Literal(t.badge.code))) \
            if checked else sql.SQL("")
        return sql.SQL("{}{} AND ({})").format(
            judged, _has_user(unit, t.badge.user_field), t.condition)

    def guard(f):
        judged = sql.SQL(" AND {}").format(some_active(sql.Literal(f.codes), PAUSED)) \
            if checked else sql.SQL("")
        return sql.SQL("{}{}").format(_has_user(unit, f.user_field), judged)
    return codes_met(early, lambda f: f.value, test, guard)


def changed_rows(unit) -> sql.Composed:
    """The transition table(s) as they are, under the aliases the conditions use (new,
    old or both)."""
    new, old = sql.Identifier(NEW_TABLE), sql.Identifier(OLD_TABLE)
    if unit.pairs and unit.op == "update":
        pk = unit.targets[0].primary_key
        return sql.SQL("{n} AS new JOIN {o} AS old ON {on}").format(
            n=new, o=old, on=sql.SQL(" AND ").join(
                sql.SQL("new.{c} = old.{c}").format(c=sql.Identifier(c)) for c in pk))
    alias = row_alias(unit.op)
    return sql.SQL("{} AS {}").format(old if alias == "old" else new, sql.Identifier(alias))


def alone(early: list[Target], statement) -> sql.Composed:
    """The text of `statement(t)` for the badge of the redo's pass (bc_code), among the
    plain-expression badges: run by EXECUTE, so that PostgreSQL plans it only in that
    pass. A condition that no longer plans (its column dropped) then fails its own pass,
    not the expression every sibling shares; and the function keeps one statement for
    them all (a statement each made a new session's first write 3x dearer at 250 plain
    badges: each new session compiles the function)."""
    return sql.SQL("({texts}::text[])[array_position({codes}::text[], bc_code)]").format(
        texts=sql.Literal([statement(t).as_string(None) for t in early]),
        codes=sql.Literal([t.badge.code for t in early]))


def _alone_source(unit) -> tuple[sql.Composable, sql.Composable]:
    """(FROM, USING) of the redo's dynamic statement: the transition table's one row, or
    a row trigger's NEW/OLD passed as $1, $2."""
    if not unit.row_level:
        return changed_rows(unit), sql.SQL("")
    if unit.op == "update" and unit.pairs:
        return (sql.SQL("(SELECT ($1).*) AS new, (SELECT ($2).*) AS old"),
                sql.SQL(" USING NEW, OLD"))
    return (sql.SQL("(SELECT ($1).*) AS {}").format(sql.Identifier(row_alias(unit.op))),
            sql.SQL(" USING {}").format(row_record(unit.op)))


def _won_alone(unit, t: Target) -> sql.Composed:
    """bc_win's value when this badge alone is judged on the row."""
    alias = sql.Identifier(row_alias(unit.op))
    return sql.SQL("SELECT CASE WHEN {a}.{uf} IS NOT NULL AND ({cond}) THEN ARRAY[{code}::text]"
                   " END FROM {rows}").format(
        a=alias, uf=sql.Identifier(t.badge.user_field), cond=t.condition,
        code=sql.Literal(t.badge.code), rows=_alone_source(unit)[0])


def _judge_alone(unit, early: list[Target]) -> sql.Composed:
    """The redo's pass: the one badge bc_code names, unless paused or a value group's."""
    return sql.SQL(
        "    IF bc_code = ANY ({codes}::text[]) AND NOT bc_code = ANY (bc_paused) THEN\n"
        "      EXECUTE {text} INTO bc_win{using};\n    END IF;\n").format(
        codes=sql.Literal([t.badge.code for t in early]), text=alone(
            early, lambda t: _won_alone(unit, t)), using=_alone_source(unit)[1])


def _early(unit, early: list[Target]) -> sql.Composed:
    """bc_win := the plain-expression badges won: one PL/pgSQL expression, no query, while
    nothing is paused and this is no redo; else, unless every badge is paused, each
    condition behind its pause test (the redo's pass of one of several: that badge's
    alone, _judge_alone). Not in the state statement: a condition PostgreSQL can no
    longer plan (a dropped column) must not fail a write while paused."""
    if not early:  # '*' leaves every value group unlocked (_locked): nothing to judge
        return sql.SQL("")
    checked = sql.SQL("    bc_win := ARRAY(SELECT c FROM unnest({}) AS c\n      WHERE {});\n"
                      ).format(_won(unit, early, True), active(sql.SQL("c")))
    if len(early) > 1:
        checked = sql.SQL("  IF bc_only IS NULL THEN\n{}  ELSE\n{}  END IF;\n").format(
            checked, _judge_alone(unit, early))
    return sql.SQL(
        "  IF cardinality(bc_paused) = 0 AND bc_only IS NULL THEN\n    bc_win := {fast};\n"
        "  ELSE\n  {star}{checked}  END IF;\n").format(
        fast=_won(unit, early, False), star=_all_paused(), checked=checked)


def _held_probed_at_award(unit) -> bool:
    """One user field: codes the user holds may stay in bc_win, since the award statement
    runs only when bc_win holds one they lack and probes each (no filter per write)."""
    return len(user_fields(unit)) == 1


def _held_keys(unit, group: list[Target]) -> list[str]:
    """The group's codes as bc_held spells them (`i:code` with several user fields)."""
    fields = user_fields(unit)
    prefix = "" if len(fields) == 1 else f"{fields.index(group[0].badge.user_field)}:"
    return [prefix + t.badge.code for t in group]


def _locked(unit, gs: list[list[Target]], paused: sql.Composable) -> sql.Composed:
    """int[]: per value group, its index when this transaction now holds the group's
    (value, user) lock, -1 - its index when another transaction holds it past the deadline
    (`s.deadline`; the row is queued then), nothing when the group is not tried:
    no user, no badge of it judged now, or the user (`s.held`: what the user holds)
    holds them all. Expressions only (CASE keeps the order): no plan node is set up for
    what a write seldom needs."""
    rec = row_record(unit.op)
    cases = []
    for i, g in enumerate(gs):
        user = sql.SQL("{}.{}").format(rec, sql.Identifier(g[0].badge.user_field))
        key, ukey = sql.Literal(target_lock_key(g[0])), user_lock_key(user)
        cases.append(sql.SQL(
            "CASE WHEN {user} IS NOT NULL AND NOT '*' = ANY ({p}) AND {some}\n"
            "        AND NOT {held}::text[] <@ s.held THEN\n"
            "        CASE WHEN pg_try_advisory_xact_lock({key}, {ukey})\n"
            "          OR {s}.lock_within({key}, {ukey}, s.deadline) THEN {i} ELSE {n} END END"
        ).format(user=user, p=paused, some=some_active(
            sql.Literal([t.badge.code for t in g]), paused),
            held=sql.Literal(_held_keys(unit, g)), key=key, ukey=ukey,
            s=sql.Identifier(SCHEMA), i=sql.Literal(i), n=sql.Literal(-1 - i)))
    return sql.SQL("array_remove(ARRAY[{}]::int[], NULL)").format(
        sql.SQL(",\n      ").join(cases))


def _queue_contended(unit, group: list[Target]) -> sql.Composed:
    """The row queued for reconcile for each badge judged now of a group whose lock
    another transaction held too long."""
    rec = row_record(unit.op)
    new = sql.SQL("to_jsonb(NEW)") if unit.op != "delete" else sql.SQL("NULL")
    pairs = unit.op == "delete" or any(t.needs_old_and_new(unit.op) for t in group)
    return sql.SQL(
        "    PERFORM {s}.enqueue(c, {op}, ({rec}.{uf})::text, {new}, {old})  -- reconcile judges\n"
        "      FROM unnest({codes}::text[]) AS c WHERE {active};\n").format(
        s=sql.Identifier(SCHEMA), op=sql.Literal(unit.op), rec=rec,
        uf=sql.Identifier(group[0].badge.user_field), new=new,
        old=sql.SQL("to_jsonb(OLD)") if pairs else sql.SQL("NULL"),
        codes=sql.Literal([t.badge.code for t in group]), active=active(sql.SQL("c")))


def _state(unit, award: AwardTable, gs: list[list[Target]]) -> sql.Composed:
    """One statement for what every badge shares: the paused codes and, when conditions
    read other rows, the codes the user holds and the value locks taken for the groups
    that can still award."""
    if not gs:
        return sql.SQL(
            "  SELECT coalesce(array_agg(code), '{{}}') INTO bc_paused FROM {s}.paused;\n"
        ).format(s=sql.Identifier(SCHEMA))
    paused = sql.SQL("s.paused")
    return sql.SQL(
        "  SELECT s.paused, s.held, {locked}\n    INTO bc_paused, bc_held, bc_groups\n"
        "    FROM (SELECT (SELECT coalesce(array_agg(code), '{{}}') FROM {s}.paused) AS paused,\n"
        "      {held} AS held, clock_timestamp() + {wait}::interval AS deadline\n"
        "      OFFSET 0) AS s;  -- each once, not per use\n").format(
        wait=sql.Literal(LOCK_WAIT), held=_held(unit, award), locked=_locked(unit, gs, paused),
        s=sql.Identifier(SCHEMA))


def _judge_group(unit, index: int, group: list[Target]) -> sql.Composed:
    """When the group's lock is held (`index` in bc_groups): the codes its value awards
    (threshold met, judged now, not held), appended to bc_win, in one evaluation of the
    value. One badge: its own test, in one query (its lock was tried only because it is
    judged now and not held). Several: while nothing is paused and this is no redo (and,
    with several user fields, the user holds none of them), the codes met go to bc_win
    with no filter to set up; that test shares the lock's IF (a nested IF cost a write
    13-18 us more, bench ladder)."""
    locked = sql.SQL("{} = ANY (bc_groups)").format(sql.Literal(index))
    value = group_value(group)
    if len(group) == 1:  # locked: so judged now and not held (_locked)
        t = group[0]
        return sql.SQL("  IF {locked} THEN\n    IF {test} THEN\n"
                       "      bc_win := bc_win || {code}::text;\n    END IF;\n").format(
            locked=locked, test=group_test(sql.SQL("({})").format(value))(t),
            code=sql.Literal(t.badge.code))
    folded, rest = families(group)
    fenced = len(folded) + len(rest) > 1  # the value is used more than once
    v = sql.SQL("q.v") if fenced else sql.SQL("({})").format(value)
    met = codes_met(group, lambda f: v, group_test(v))
    source = sql.SQL("\n      FROM (SELECT ({value}) AS v OFFSET 0) AS q;  -- once, not per use"
                     ).format(value=value) if fenced else sql.SQL(";")
    held_ok = sql.SQL("") if _held_probed_at_award(unit) else sql.SQL(
        " AND NOT bc_held && {}::text[]").format(sql.Literal(_held_keys(unit, group)))
    return sql.SQL(
        "  IF {locked} AND cardinality(bc_paused) = 0 AND bc_only IS NULL{held_ok} THEN\n"
        "    SELECT bc_win || {met} INTO bc_win{source}\n"
        "  ELSIF {locked} THEN\n"
        "    SELECT bc_win || ARRAY(SELECT c FROM unnest({met}) AS c\n"
        "      WHERE {active} AND {not_held}) INTO bc_win{source}\n").format(
        locked=locked, held_ok=held_ok, met=met, source=source, active=active(sql.SQL("c")),
        not_held=_not_held(unit, group, sql.SQL("c")))


def _group_query(unit, index: int, group: list[Target]) -> sql.Composed:
    """The group judged when its lock is held, its row queued when contended."""
    return sql.SQL("{judge}  ELSIF {n} = ANY (bc_groups) THEN\n{queue}  END IF;\n").format(
        judge=_judge_group(unit, index, group), n=sql.Literal(-1 - index),
        queue=_queue_contended(unit, group))


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
    parts = [_state(unit, award, gs), _early(unit, early)]
    parts += [_group_query(unit, i, g) for i, g in enumerate(gs)]
    winners = sql.SQL("SELECT b.user_id, b.code, b.name FROM unnest(bc_win) AS w(code)"
                      " JOIN {names} ON b.code = w.code WHERE {lacks}").format(
        names=_names(unit), lacks=lacks_badge(award, sql.SQL("b.user_id"), sql.SQL("b.code")))
    lacks_one = sql.SQL(" AND NOT bc_win <@ bc_held") \
        if gs and _held_probed_at_award(unit) else sql.SQL("")
    grant = grant_query(award, channel, winners, code=None, name=None,
                        table=unit.table.display, op=unit.op, into="n_awarded")
    parts.append(sql.SQL("  IF cardinality(bc_win) > 0{} THEN\n{};\n  END IF;\n").format(
        lacks_one, grant))
    return sql.SQL("").join(parts)
