"""Badges that differ only in a number (levels, or `NEW.hit_views >= 950`, `>= 960`, ...)
decided by one comparison against their sorted thresholds instead of one test each.

A write pays for every expression it compiles: PostgreSQL builds the evaluation steps of
each expression anew in every transaction (PL/pgSQL's simple expressions and every
query's target list alike), so forty `CASE WHEN v >= T` tests cost a one-row write about
forty times one. `width_bucket(v, thresholds)` counts the sorted thresholds <= v, and the
first that many codes are the ones met: one expression whatever the number of badges
(SPEC §7, levels: "one query per write decides all levels"). Only `>=` against number
literals is folded, where that count is exactly the comparison; any other test stays a
test of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from psycopg import sql

from .condition import PREFIX
from .sqlgen import Target


@dataclass(frozen=True)
class Family:
    """Badges of one user field comparing one value `>=` to number thresholds."""

    value_sql: str  # "SELECT <value> ..." as ConditionInfo.value_sql prints it
    user_field: str
    targets: tuple[Target, ...]  # by threshold, smallest first

    @property
    def codes(self) -> list[str]:
        return [t.badge.code for t in self.targets]

    @property
    def value(self) -> sql.SQL:
        """The bare value of a plain-expression family (its SELECT has nothing else)."""
        return sql.SQL(self.value_sql[len(PREFIX):])

    def met(self, value: sql.Composable) -> sql.Composed:
        """text[]: the codes whose threshold `value` reaches (NULL when value is NULL)."""
        return sql.SQL("({codes}::text[])[1:width_bucket({v}, ARRAY[{ths}])]").format(
            codes=sql.Literal(self.codes), v=value,
            ths=sql.SQL(", ").join(sql.SQL(t.info.threshold) for t in self.targets))


def _number(target: Target) -> Decimal | None:
    info = target.info
    if info.value_sql is None or info.comparison != ">=" or info.threshold is None:
        return None
    try:
        return Decimal(info.threshold)
    except InvalidOperation:  # a string, a typed literal, NULL: compared one by one
        return None


def families(targets) -> tuple[list[Family], list[Target]]:
    """The targets that fold into families of two or more, and the rest, in their order."""
    found: dict[tuple[str, str], list[Target]] = {}
    for t in targets:
        if _number(t) is not None:
            found.setdefault((t.info.value_sql, t.badge.user_field), []).append(t)
    folded = [Family(v, uf, tuple(sorted(ts, key=_number)))
              for (v, uf), ts in found.items() if len(ts) > 1]
    inside = {t.badge.code for f in folded for t in f.targets}
    return folded, [t for t in targets if t.badge.code not in inside]


def codes_met(targets, value, test, guard=None) -> sql.Composed:
    """text[] of the codes among `targets` whose condition holds, never NULL: each
    family's thresholds against `value(family)`, each other badge by `test(target)`
    (which guards its own condition); `guard(family)`, when given, is tested before a
    family's value is computed (its user is known, one of its badges is judged now: a
    redo for one badge must not compute another's failing value)."""
    folded, rest = families(targets)
    parts = []
    for f in folded:
        met = f.met(value(f))
        parts.append(met if guard is None else
                     sql.SQL("CASE WHEN {} THEN {} END").format(guard(f), met))
    if rest:
        parts.append(sql.SQL("array_remove(ARRAY[{}]::text[], NULL)").format(
            sql.SQL(",\n      ").join(sql.SQL("CASE WHEN {} THEN {} END").format(
                test(t), sql.Literal(t.badge.code)) for t in rest)))
    return sql.SQL("coalesce({}, '{{}}')").format(sql.SQL(" || ").join(parts))
