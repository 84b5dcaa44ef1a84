"""A condition that aggregates the user's own rows, read as a GROUP BY (pglast).

Collector's `count(id) >= 5 from dummy_sketch where user_id = NEW.user_id`, judged once
per user, is still one index probe and one aggregate per user: with a user's rows spread
over the table that is a random heap read per row, several times the cost of one plain
`SELECT user_id FROM dummy_sketch GROUP BY user_id HAVING count(id) >= 5` over the same
rows. When the condition has exactly that shape, backfill asks it that way
(sqlgen_grouped.grouped_winners): the same aggregate over the same rows, grouped by user
instead of correlated to each one. The shape, checked on PostgreSQL's own parse tree:

- one aggregate SELECT (no GROUP BY, HAVING, DISTINCT, ORDER BY, LIMIT, WITH, window)
  over the badge's own trigger table, nothing else in FROM;
- its WHERE is `<user field> = NEW.<user field>` AND-ed with conditions that do not
  read NEW or OLD (no NEW or OLD anywhere else either);
so the rows it aggregates for user u are exactly the rows of the group u. A user with no
such row gets the aggregate over no rows; grouped, they have no group: the caller checks
that this empty value is not true (sqlgen_grouped.empty_value) before relying on it.
What is printed is pglast's re-print of the parsed condition, never the badge's text.
"""

from __future__ import annotations

from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType, SetOperation
from pglast.stream import RawStream

from .sqlgen import Target

_CLAUSES = ("groupClause", "havingClause", "windowClause", "sortClause", "limitCount",
            "limitOffset", "distinctClause", "withClause", "valuesLists", "intoClause",
            "lockingClause")


@dataclass(frozen=True)
class GroupedCondition:
    """The condition's parts, each re-printed SQL: the aggregate value, the FROM item
    (alias included), the user column as the condition names it, and the other
    conjuncts of its WHERE."""

    value: str
    source: str
    key: str
    filters: tuple[str, ...]
    schema: str | None  # the FROM table as written: the caller checks it is the trigger table
    table: str


def _nodes(node):
    """Every parse node under `node`, itself included."""
    if isinstance(node, ast.Node):
        yield node
        for name in node:
            yield from _nodes(getattr(node, name))
    elif isinstance(node, (list, tuple)):
        for child in node:
            yield from _nodes(child)


def _reads_changed_row(node) -> bool:
    return any(isinstance(n, ast.ColumnRef) and isinstance(n.fields[0], ast.String)
               and n.fields[0].sval.lower() in ("new", "old") for n in _nodes(node))


def _names(ref, column: str, aliases: set[str]) -> bool:
    """Whether the ColumnRef names `column` bare or qualified by one of `aliases`."""
    fields = ref.fields
    if not all(isinstance(f, ast.String) for f in fields):
        return False
    names = [f.sval for f in fields]
    return names == [column] or (len(names) == 2 and names[1] == column
                                 and names[0] in aliases)


def _is_new_user(node, column: str) -> bool:
    return isinstance(node, ast.ColumnRef) and _names(node, column, {"new"}) \
        and len(node.fields) == 2


def _conjuncts(node) -> list:
    if isinstance(node, ast.BoolExpr) and node.boolop == BoolExprType.AND_EXPR:
        return [c for arg in node.args for c in _conjuncts(arg)]
    return [node]


def grouped_condition(target: Target) -> GroupedCondition | None:
    """The condition as a per-user aggregate of the trigger table, or None when it has
    another shape (see the module's docstring)."""
    info, uf = target.info, target.badge.user_field
    if target.volatile or target.inline or info.select_sql is None:
        return None
    stmt = parse_sql(info.select_sql)[0].stmt
    if stmt.op != SetOperation.SETOP_NONE or any(getattr(stmt, c) for c in _CLAUSES):
        return None
    if len(stmt.fromClause or ()) != 1 or not isinstance(stmt.fromClause[0], ast.RangeVar):
        return None
    source = stmt.fromClause[0]
    if not source.inh or source.catalogname:
        return None
    aliases = {source.alias.aliasname if source.alias else source.relname}
    key, filters = None, []
    for part in _conjuncts(stmt.whereClause):
        if key is None and isinstance(part, ast.A_Expr) and part.kind == A_Expr_Kind.AEXPR_OP \
                and [n.sval for n in part.name] == ["="]:
            sides = [part.lexpr, part.rexpr]
            new = [s for s in sides if _is_new_user(s, uf)]
            own = [s for s in sides if isinstance(s, ast.ColumnRef)
                   and not _is_new_user(s, uf) and _names(s, uf, aliases)]
            if new and own:
                key = own[0]
                continue
        if part is None or _reads_changed_row(part):
            return None
        filters.append(part)
    value = stmt.targetList[0].val
    if key is None or _reads_changed_row(value):
        return None
    return GroupedCondition(_show(value), _show(source), _show(key),
                            tuple(_show(f) for f in filters), source.schemaname,
                            source.relname)


def _show(node) -> str:
    """pglast's re-print of one node (a RawStream is used once: it keeps what it wrote)."""
    return RawStream()(node)
