"""The set-based path of a table's trigger function (generator 8): a statement that
changed several rows.

Plain-expression badges share one projection of the transition table: the changed rows
reduced to the distinct combinations of the columns any of them reads, each combination
giving the codes whose condition holds (one LATERAL list), holders skipped by the index
probe, all awarded by one insert. That batch runs in one subtransaction; when it fails,
each of those badges is redone alone (generator 7's award_query, guarded) so the failing
one only logs its own error. Conditions that read other rows keep generator 7's per-badge
set path (lock or queue every changed user, then the projected award query), with the
pause read once for all.
"""

from __future__ import annotations

from psycopg import sql

from .sqlgen import NEW_TABLE, OLD_TABLE, AwardTable, row_alias
from .sqlgen_events import grant_query
from .sqlgen_kill_switch import guarded
from .sqlgen_locks import lock_or_queue_set
from .sqlgen_table_row import read_pauses
from .sqlgen_winners import award_query, lacks_badge


def _rows(unit, early) -> sql.Composed:
    """The changed rows under the aliases the conditions use (new, old or both)."""
    new, old = sql.Identifier(NEW_TABLE), sql.Identifier(OLD_TABLE)
    if unit.pairs and unit.op == "update":
        pk = unit.targets[0].primary_key
        return sql.SQL("{n} AS new JOIN {o} AS old ON {on}").format(
            n=new, o=old, on=sql.SQL(" AND ").join(
                sql.SQL("new.{c} = old.{c}").format(c=sql.Identifier(c)) for c in pk))
    alias = row_alias(unit.op)
    src = old if alias == "old" else new
    infos = [t.info for t in early]
    whole = any(i.whole_old if alias == "old" else i.whole_new for i in infos)
    if whole:
        return sql.SQL("{} AS {}").format(src, sql.Identifier(alias))
    cols = set().union(*(i.old_columns if alias == "old" else i.new_columns for i in infos))
    wanted = list(dict.fromkeys([*(t.badge.user_field for t in early), *sorted(cols)]))
    distinct = sql.SQL("") if any(t.volatile for t in early) else sql.SQL("DISTINCT ")
    return sql.SQL("(SELECT {d}{cols} FROM {src}) AS {a}").format(
        d=distinct, cols=sql.SQL(", ").join(map(sql.Identifier, wanted)), src=src,
        a=sql.Identifier(alias))


def _early_batch(unit, early, award: AwardTable, channel: str) -> sql.Composed:
    alias = sql.Identifier(row_alias(unit.op))
    pairs = sql.SQL(", ").join(
        sql.SQL("({a}.{uf}, CASE WHEN NOT {code} = ANY (bc_paused) AND ({cond})"
                " THEN {code}::text END)").format(
            a=alias, uf=sql.Identifier(t.badge.user_field), code=sql.Literal(t.badge.code),
            cond=t.condition) for t in early)
    names = sql.SQL(", ").join(sql.SQL("({}::text, {}::text)").format(
        sql.Literal(t.badge.code), sql.Literal(t.badge.name)) for t in early)
    winners = sql.SQL(
        "SELECT cand.user_id, cand.code, b.name FROM (\n"
        "    SELECT DISTINCT c.user_id, c.code FROM {rows}\n"
        "      CROSS JOIN LATERAL (VALUES {pairs}) AS c(user_id, code)\n"
        "      WHERE c.code IS NOT NULL AND c.user_id IS NOT NULL OFFSET 0) AS cand\n"
        "    JOIN (VALUES {names}) AS b(code, name) ON b.code = cand.code\n"
        "    WHERE {lacks}").format(
        rows=_rows(unit, early), pairs=pairs, names=names,
        lacks=lacks_badge(award, sql.SQL("cand.user_id"), sql.SQL("cand.code")))
    return grant_query(award, channel, winners, code=None, name=None,
                       table=unit.table.display, op=unit.op, into="n_awarded")


def _per_badge(target, op: str, award: AwardTable, channel: str) -> sql.Composed:
    return award_query(target, op, award, channel, sql.Identifier(NEW_TABLE),
                       sql.Identifier(OLD_TABLE), into="n_awarded")


def _locked(target, op: str, award: AwardTable, channel: str) -> sql.Composed:
    """Generator 7's set path of one condition that reads other rows."""
    b = target.badge
    changed = sql.Identifier(OLD_TABLE if op == "delete" else NEW_TABLE)
    user = sql.SQL("changed.{}").format(sql.Identifier(b.user_field))
    return sql.SQL(
        "  IF NOT {code} = ANY (bc_paused) AND EXISTS (SELECT 1 FROM {changed} AS changed\n"
        "      WHERE {user} IS NOT NULL AND {lacks}) THEN\n{lock}{award}  END IF;\n").format(
        code=sql.Literal(b.code), changed=changed, user=user,
        lacks=lacks_badge(award, user, b.code), lock=lock_or_queue_set(target, op, award),
        award=guarded(target, _per_badge(target, op, award, channel)))


def set_based(unit, award: AwardTable, channel: str) -> sql.Composed:
    early = [t for t in unit.targets if not t.locks]
    parts = [read_pauses()]
    if early:
        redo = sql.SQL("").join(
            sql.SQL("    IF NOT {code} = ANY (bc_paused) THEN\n{q}    END IF;\n").format(
                code=sql.Literal(t.badge.code),
                q=guarded(t, _per_badge(t, unit.op, award, channel))) for t in early)
        parts.append(sql.SQL(
            "  BEGIN\n{batch};\n  EXCEPTION WHEN OTHERS THEN\n    n_changed := -2;\n  END;\n"
            "  IF n_changed = -2 THEN  -- redo badge by badge\n{redo}  END IF;\n").format(
            batch=_early_batch(unit, early, award, channel), redo=redo))
    parts += [_locked(t, unit.op, award, channel) for t in unit.targets if t.locks]
    return sql.SQL("").join(parts)
