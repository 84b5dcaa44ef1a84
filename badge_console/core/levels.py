"""Series of levels: one `value` with thresholds (bronze 5, silver 50, gold 500 sketches).

badge.json keeps a series as written (`value` and `levels` instead of `condition`); the
engine sees each level as a badge of its own, made here and only here
(`BadgeFile.each_badge`), so validate, plan, install, backfill, reconcile and dry run
handle levels with no code of their own. A level's condition is built by pglast, never
by formatting text: the value parsed as one SELECT target, wrapped in the node
`<value> >= <at>`, re-printed. Every level of a series thus carries the same printed
value, which is what lets the generator decide all of them with one query per write.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind
from pglast.parser import ParseError
from pglast.stream import RawStream

from .condition import PREFIX, check_condition
from .definitions import CODE_RE, Badge
from .errors import LevelProblem, Problem

LEVEL_KEYS = ("code", "name", "at")
INT4 = range(-2**31, 2**31)  # beyond it PostgreSQL reads an integer literal as numeric


@dataclass(frozen=True)
class LevelOf:
    """Where a level badge comes from: its series' code, its position, its threshold."""

    series: Any  # the series entry's code, as the file has it
    level: int  # 0-based position in `levels`
    at: int | float


def is_at(value: Any) -> bool:
    """A threshold: a finite JSON number (true/false are not numbers here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _constant(at: int | float) -> ast.A_Const:
    if isinstance(at, int) and at in INT4:
        return ast.A_Const(val=ast.Integer(ival=at))
    return ast.A_Const(val=ast.Float(fval=repr(at) if isinstance(at, float) else str(at)))


@lru_cache(maxsize=1024)
def level_condition(value: str, at: int | float) -> str | None:
    """`<value> >= <at>` as pglast prints it (with the value's FROM/WHERE kept), or None
    when the value is not one SELECT target (check_series says why)."""
    try:
        statements = parse_sql(PREFIX + value)
    except (ParseError, RecursionError):
        return None
    stmt = statements[0].stmt if len(statements) == 1 else None
    if not isinstance(stmt, ast.SelectStmt) or len(stmt.targetList or ()) != 1:
        return None
    target = stmt.targetList[0]
    target.val = ast.A_Expr(kind=A_Expr_Kind.AEXPR_OP, name=(ast.String(sval=">="),),
                            lexpr=target.val, rexpr=_constant(at))
    try:
        return RawStream()(stmt)[len(PREFIX):]
    except Exception:  # pglast cannot re-print some exotic syntax: check_series reports it
        return None


def _levels(entry: Badge) -> list[dict]:
    return [lv for lv in entry.levels if isinstance(lv, dict)] \
        if isinstance(entry.levels, list) else []


def expand(entry: Badge) -> list[Badge]:
    """A plain badge as itself; a series as one badge per level, inheriting the entry's
    table, operations, user field, description, enabled and on_error. A series with no
    usable level stays itself, so a plan still shows (as invalid) what the file has."""
    levels = _levels(entry) if entry.is_series else []
    if not levels:
        return [entry]
    present = (entry.present - set(("value", "levels"))) | {"name", "code", "condition"}
    out = []
    for place, level in enumerate(levels):
        at = level.get("at")
        condition = level_condition(entry.value, at) \
            if isinstance(entry.value, str) and is_at(at) else None
        out.append(entry.copy(name=level.get("name"), code=level.get("code"),
                              condition=condition, value=None, levels=None, present=present,
                              extra={}, level_of=LevelOf(entry.code, place, at)))
    return out


def series_codes(entry: Badge) -> list[str]:
    """The level codes of a series (text ones), for the file's uniqueness check."""
    return [lv["code"] for lv in _levels(entry) if isinstance(lv.get("code"), str)] \
        if entry.is_series else []


def check_series(index: int, entry: Badge, found: list[Problem]) -> list[Problem]:
    """The rules of a series: value xor condition, one parsable value, a non-empty list of
    levels with exactly code/name/at, valid codes and names, numeric ascending `at`.
    `found` are the entry's other problems (a bad trigger_condition hides value checks)."""
    problems: list[Problem] = []

    def add(key, kind, message, code=entry.valid_code):
        problems.append(Problem(index, code, key, kind, message))

    if "condition" in entry.present:
        add("value", "value-and-condition", "a badge has either a condition or a value with "
                                            "levels; remove one of them")
    for key in ("value", "levels"):
        if key not in entry.present:
            add(key, "missing-key", "missing; a series needs both value and levels")
    if "value" in entry.present:
        problems += _check_value(index, entry, found)
    if "levels" in entry.present:
        problems += _check_levels(index, entry)
    return problems


def _check_value(index: int, entry: Badge, found: list[Problem]) -> list[Problem]:
    value = entry.value
    if not isinstance(value, str) or not value.strip():
        return [Problem(index, entry.valid_code, "value", "type",
                        "must be a non-empty string: SQL that follows SELECT")]
    if any(p.key == "trigger_condition" for p in found):
        return []
    out = []
    for kind, message in check_condition(value, entry.operations).problems:
        if kind == "values":
            message = "must be one value (what follows SELECT), compared with each level's at"
        out.append(Problem(index, entry.valid_code, "value", kind, message))
    if not out and level_condition(value, 0) is None:
        out.append(Problem(index, entry.valid_code, "value", "parse",
                           "cannot be re-printed by pglast; simplify the expression"))
    return out


def _check_levels(index: int, entry: Badge) -> list[Problem]:
    levels = entry.levels
    if not isinstance(levels, list) or not levels:
        return [Problem(index, entry.valid_code, "levels", "levels-empty",
                        'must be a non-empty list of {"code", "name", "at"}')]
    out: list[Problem] = []
    last = None
    for place, level in enumerate(levels):
        code = level.get("code") if isinstance(level, dict) else None
        code = code if isinstance(code, str) and CODE_RE.fullmatch(code) else None

        def add(kind, **facts):
            out.append(LevelProblem.of(index, entry.valid_code, kind, place, code, **facts))

        if not isinstance(level, dict):
            add("level-object")
            continue
        missing = [k for k in LEVEL_KEYS if k not in level]
        unknown = [k for k in level if k not in LEVEL_KEYS]
        if missing or unknown:
            add("level-keys", detail=(f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(unknown)}" if unknown else ""))
        if "code" in level and code is None:
            add("level-code")
        if "name" in level and not (isinstance(level["name"], str) and level["name"].strip()):
            add("level-name")
        if "at" not in level:
            continue
        at = level["at"]
        if not is_at(at):
            add("level-at", at=json.dumps(at, ensure_ascii=False))
            continue
        if last is not None and at <= last:
            add("level-order", at=str(at), previous=str(last))
        last = at if last is None else max(last, at)
    return out
