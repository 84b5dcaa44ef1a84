"""A badge condition read with PostgreSQL's own grammar (pglast).

The condition is the SQL that follows SELECT. We parse `SELECT <condition>`, insist on
exactly one statement yielding one value, learn which NEW/OLD columns it reads (the
trigger evaluates it once per distinct combination of them), and hand back a
normalised form re-printed by pglast: comments, trailing semicolons and quoting tricks
cannot survive into generated DDL.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

from pglast import ast, parse_sql
from pglast.enums import SetOperation
from pglast.parser import ParseError
from pglast.stream import RawStream

PREFIX = "SELECT "
CLOCK_FUNCTIONS = frozenset({"now", "clock_timestamp", "statement_timestamp",
                             "transaction_timestamp", "timeofday"})
# SQLValueFunction ops 0-8: current_date, current_time[(n)], current_timestamp[(n)],
# localtime[(n)], localtimestamp[(n)]; the ops after them are current_user and the like.
LAST_CLOCK_SVFOP = 8
COMPARISONS = frozenset({">=", ">", "=", "<=", "<"})


@dataclass
class ConditionInfo:
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)
    select_sql: str | None = None  # normalised "SELECT ..." when the condition parses
    expression_sql: str | None = None  # the bare expression, when SELECT has nothing else
    new_columns: frozenset = frozenset()
    old_columns: frozenset = frozenset()
    whole_new: bool = False  # NEW used as a whole row: cannot project columns
    whole_old: bool = False
    functions: frozenset = frozenset()  # called function names, for the volatility check
    # Reads the clock (now(), current_date, one-argument age(), ...): the condition can
    # become true while nobody writes, so only a scheduled reconcile awards it in time.
    time_based: bool = False
    unqualified: tuple = ()  # columns named without a table, outside any sub-select
    # `<value> <op> <constant>` at the top: badges whose value_sql is the same (levels,
    # or thresholds written by hand) evaluate it once per write and compare each threshold.
    value_sql: str | None = None  # normalised "SELECT <value> ..." (the rest unchanged)
    comparison: str | None = None  # one of COMPARISONS
    threshold: str | None = None  # the constant, as pglast prints it

    @property
    def uses_new(self) -> bool:
        return bool(self.new_columns) or self.whole_new

    @property
    def uses_old(self) -> bool:
        return bool(self.old_columns) or self.whole_old


def _children(node):
    if isinstance(node, ast.Node):
        for name in node:
            yield getattr(node, name)
    elif isinstance(node, (list, tuple)):
        yield from node


def _walk(node, scoped: bool = False):
    """Yield (node, scoped): scoped is True inside a sub-select that has a FROM clause."""
    stack = [(node, scoped)]
    while stack:
        current, in_scope = stack.pop()
        if isinstance(current, ast.Node):
            yield current, in_scope
            if isinstance(current, ast.SelectStmt) and current.fromClause:
                in_scope = True
        for child in _children(current):
            if isinstance(child, (ast.Node, list, tuple)):
                stack.append((child, in_scope))


def _line_col(text: str, offset: int) -> str:
    before = text[:max(offset, 0)]
    return f"line {before.count(chr(10)) + 1}, column {len(before) - before.rfind(chr(10))}"


# Parsing and re-printing with pglast is most of what checking a condition costs, and
# validate checks each condition several times (the file, the database, time-based), so
# one whole badge file of a few thousand conditions has to fit.
@lru_cache(maxsize=4096)
def _read(condition: str) -> ConditionInfo:
    """What the grammar says of a condition, whatever operations its badge has."""
    info = ConditionInfo()
    add = info.problems.append
    try:
        statements = parse_sql(PREFIX + condition)
    except ParseError as exc:
        location = exc.args[1] if len(exc.args) > 1 else None
        where = _line_col(condition, location - len(PREFIX)) if location is not None \
            else "the end"
        add(("parse", f"does not parse: {exc.args[0]} (at {where}); "
                      "write one SQL expression that could follow SELECT"))
        return info
    except RecursionError:
        add(("parse", "is nested too deeply to parse; simplify the expression"))
        return info
    if len(statements) != 1:
        add(("statements", f"holds {len(statements)} statements; write one expression, "
                           "no ';'"))
        return info
    stmt = statements[0].stmt
    if not isinstance(stmt, ast.SelectStmt) or stmt.op != SetOperation.SETOP_NONE:
        add(("statements", "must be one expression after SELECT, not a UNION/INTERSECT"))
        return info
    targets = stmt.targetList or ()
    if len(targets) != 1:
        add(("values", f"yields {len(targets)} values; the condition must yield one boolean"))
        return info
    if isinstance(targets[0].val, ast.ColumnRef) and isinstance(targets[0].val.fields[-1],
                                                               ast.A_Star):
        add(("values", "yields a whole row ('*'); the condition must yield one boolean"))
        return info
    if stmt.intoClause is not None or stmt.lockingClause:
        add(("statements", "must not use INTO or FOR UPDATE; write a plain expression"))
        return info

    new_cols, old_cols, funcs, unqualified = set(), set(), set(), []
    for node, scoped in _walk(stmt):
        info.time_based = info.time_based or _reads_clock(node)
        if isinstance(node, ast.FuncCall):
            funcs.add(node.funcname[-1].sval.lower())
        if not isinstance(node, ast.ColumnRef):
            continue
        fields = node.fields
        head = fields[0].sval.lower() if isinstance(fields[0], ast.String) else None
        if head in ("new", "old"):
            target = new_cols if head == "new" else old_cols
            if len(fields) == 1 or isinstance(fields[1], ast.A_Star):
                if head == "new":
                    info.whole_new = True
                else:
                    info.whole_old = True
            elif isinstance(fields[1], ast.String):
                target.add(fields[1].sval)
        elif len(fields) == 1 and head is not None and not scoped:
            unqualified.append(fields[0].sval)
    info.new_columns, info.old_columns = frozenset(new_cols), frozenset(old_cols)
    info.functions = frozenset(funcs)
    info.unqualified = tuple(dict.fromkeys(unqualified))
    try:
        if _bare(stmt):
            info.expression_sql = RawStream()(targets[0].val)
        # Re-printing is the dearest step: a bare, unnamed expression is printed once.
        info.select_sql = PREFIX + info.expression_sql \
            if info.expression_sql is not None and targets[0].name is None \
            else RawStream()(stmt)
        _split_threshold(stmt, info)
    except Exception as exc:  # pglast cannot re-print some exotic syntax
        add(("parse", f"cannot be normalised by pglast ({exc}); simplify the expression"))
    return info


def _split_threshold(stmt: ast.SelectStmt, info: ConditionInfo) -> None:
    """Fill value_sql/comparison/threshold when the one target is `<value> <op> <const>`."""
    top = stmt.targetList[0].val
    if not (isinstance(top, ast.A_Expr) and top.kind == 0 and len(top.name) == 1
            and top.name[0].sval in COMPARISONS and isinstance(top.rexpr, ast.A_Const)
            and top.lexpr is not None):
        return
    target = stmt.targetList[0]
    target.val = top.lexpr  # printed in place (a deep copy costs more than the parse)
    try:
        info.value_sql = RawStream()(stmt)
    finally:
        target.val = top
    info.comparison, info.threshold = top.name[0].sval, RawStream()(top.rexpr)


def _reads_clock(node) -> bool:
    if isinstance(node, ast.SQLValueFunction):
        return int(node.op) <= LAST_CLOCK_SVFOP
    if isinstance(node, ast.FuncCall):
        name = node.funcname[-1].sval.lower()
        return name in CLOCK_FUNCTIONS or (name == "age" and len(node.args or ()) == 1)
    return False


def _bare(stmt: ast.SelectStmt) -> bool:
    """A SELECT of one expression and nothing else, with no sub-select inside: it can be
    evaluated inline, per row, instead of as a sub-select (see sqlgen.Target.inline)."""
    clauses = ("fromClause", "whereClause", "groupClause", "havingClause", "windowClause",
               "sortClause", "limitCount", "limitOffset", "distinctClause", "withClause",
               "valuesLists")
    return not any(getattr(stmt, c) for c in clauses) and not any(
        isinstance(node, ast.SubLink) for node, _ in _walk(stmt.targetList))


def _operation_problems(info: ConditionInfo, operations: tuple[str, ...]) -> list:
    problems = []
    for column in info.unqualified:
        alias = "OLD" if operations == ("delete",) else "NEW"
        problems.append(("unqualified", f"uses column '{column}' without a table; write "
                                        f"{alias}.{column} if the changed row was meant"))
    if info.uses_new and "delete" in operations:
        problems.append(("new-in-delete",
                         "uses NEW, which does not exist for a delete; use OLD"))
    if info.uses_old and "insert" in operations:
        problems.append(("old-in-insert",
                         "uses OLD, which does not exist for an insert; use NEW"))
    return problems


def check_condition(condition: str, operations: tuple[str, ...] = ()) -> ConditionInfo:
    """Analyse a condition; the grammar's verdict is cached (editors re-check on every
    keystroke, validate checks a condition more than once), the operations' is cheap.
    The grammar's own problems stop the analysis early, so the operations' come first."""
    info = _read(condition)
    problems = _operation_problems(info, tuple(operations))
    return replace(info, problems=problems + info.problems) if problems else info


def is_time_based(badge) -> bool:
    """The badge's condition reads the clock (False while it is not a string at all)."""
    return isinstance(badge.condition, str) and check_condition(badge.condition).time_based


TIME_BASED_NOTE = ("time-based: its condition reads the clock, so it can become true with "
                   "no write; only reconcile, run on a schedule, awards it in time")
