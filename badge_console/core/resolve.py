"""Checks of badge.json against the live database, producing generator Targets.

Everything here runs inside the caller's transaction and costs round trips per table, not
per badge: the catalog is read once per table (catalog.SchemaFacts), and every badge's
queries are planned in one batch with a subtransaction each (explain.py), so a badge whose
condition PostgreSQL rejects is one Problem among others, not an abort.
`validate_against_database` wraps it in a READ ONLY transaction that is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import catalog
from .condition import check_condition
from .definitions import BadgeFile, check_definitions
from .errors import Problem
from .explain import objections
from .model import ValidBadge, valid_badges
from .sqlgen import EVENTS, SCHEMA, AwardTable, Target
from .sqlgen_winners import award_query, winners_query
from .waits import READS, Timeouts, bounded, tables_of


@dataclass
class Resolution:
    award: AwardTable
    award_exists: bool
    user_type: str  # type for user_id when the award table must be created
    # Every badge the file checks passed, enabled or not; those resolved are targets.
    badges: list[ValidBadge] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)  # valid, enabled or not
    problems: list[Problem] = field(default_factory=list)
    search_path: list[str] = field(default_factory=list)
    # Database problems of disabled badges: shown, never blocking (install drops them).
    ignored: list[Problem] = field(default_factory=list)
    # Installed badges that no longer resolve against today's schema (health.py).
    broken: list[Problem] = field(default_factory=list)
    award_user_type: str | None = None  # format_type of the award table's user_id
    award_unique_name: bool = False  # unique on (user_id, name): one award per name

    @property
    def ok(self) -> bool:
        return not self.problems


def _award_table(conn, name: str, problems: list[Problem]) -> tuple[AwardTable, bool, dict]:
    ref = catalog.resolve_table(conn, name)
    if ref is None:
        schema, _, table = name.rpartition(".") if "." in name else ("", "", name)
        schema = schema or conn.execute("SELECT current_schema()").fetchone()[0]
        return AwardTable(schema, table, True), False, {}
    columns = {c.name: c for c in catalog.columns(conn, ref)}
    cols = set(columns)
    missing = [c for c in ("id", "user_id", "name", "code") if c not in cols]
    if missing:
        problems.append(Problem(None, None, "award_table", "award-table",
                                f"table {ref.display} lacks column(s) {', '.join(missing)}; "
                                "point award_table at a badges table or a new name"))
    keys = catalog.unique_keys(conn, ref)
    if not any(set(k) in ({"user_id", "code"}, {"user_id", "name"}) for k in keys):
        problems.append(Problem(None, None, "award_table", "award-table",
                                f"table {ref.display} has no unique key on (user_id, code) or "
                                "(user_id, name); add one so a user earns a badge once"))
    fk = catalog.referenced_column(conn, ref, "user_id") if "user_id" in cols else None
    facts = {"user_type": columns["user_id"] if "user_id" in cols else None,
             "unique_name": any(set(k) == {"user_id", "name"} for k in keys)}
    return AwardTable(ref.schema, ref.name, "awarded_at" in cols,
                      users=tuple(fk[:3]) if fk else None, users_deferred=bool(fk and fk[3])
                      ), True, facts


INTEGERS = {"smallint": 1, "integer": 2, "bigint": 3}


def _user_type_problem(facts: catalog.SchemaFacts, award: AwardTable, award_col, table,
                       user_col) -> str | None:
    """Why the award table's user_id cannot hold this badge's user ids, with the fix."""
    have, need = award_col.type, user_col.type
    if have == need:
        return None
    if have in INTEGERS and need in INTEGERS:
        if INTEGERS[need] <= INTEGERS[have]:
            return None
    elif facts.castable(user_col.type_oid, award_col.type_oid):
        return None
    return (f"award table user_id is {have}, {table.display}.{user_col.name} is {need}: "
            f"ALTER TABLE {award.display} ALTER COLUMN user_id TYPE {need}, or point "
            f"user_field at a column of type {have}")


def _shared_names(bf: BadgeFile, problems: list[Problem], award: AwardTable) -> None:
    """On an award table unique on (user_id, name), two badges of one name share one award."""
    seen: dict[str, tuple[int, str]] = {}
    for index, badge in bf.each_badge():
        if not (badge.is_enabled and isinstance(badge.name, str) and isinstance(badge.code, str)):
            continue
        first = seen.setdefault(badge.name, (index, badge.code))
        if first != (index, badge.code):
            problems.append(Problem(
                index, badge.valid_code, "name", "shared-award",
                f"same name '{badge.name}' as badge #{first[0]} ({first[1]}): "
                f"{award.display} is unique on (user_id, name), so only one of {first[1]} "
                f"and {badge.code} could ever be awarded; give each badge its own name"))


@dataclass
class _Checked:
    """One badge after the catalog checks: a problem (key, kind, message), or a target
    whose queries PostgreSQL still has to plan (every badge's at once, explain.py)."""

    badge: ValidBadge
    problem: tuple[str, str, str] | None = None
    target: Target | None = None


def _check_badge(facts: catalog.SchemaFacts, res: Resolution, badge: ValidBadge,
                 award_user, traits) -> _Checked:
    checked = _Checked(badge)
    table = facts.table(badge.trigger_table)
    if table is None:
        checked.problem = ("trigger_table", "unknown-table",
                           f"table '{badge.trigger_table}' not found (search_path: "
                           f"{', '.join(res.search_path) or 'empty'}); create it or qualify "
                           "it as schema.table")
        return checked
    if table.kind not in ("r", "p", "f"):
        checked.problem = ("trigger_table", "not-a-table",
                           f"{table.display} is a view or materialized view; badges need a "
                           "table")
        return checked
    cols = {c.name: c for c in facts.columns(table)}
    if badge.user_field not in cols:
        checked.problem = ("user_field", "unknown-column",
                           f"column '{badge.user_field}' not in {table.display}; "
                           f"columns are {', '.join(cols)}")
        return checked
    res.user_type = res.user_type or cols[badge.user_field].type
    if award_user:
        wrong = _user_type_problem(facts, res.award, award_user, table, cols[badge.user_field])
        if wrong:
            checked.problem = ("user_field", "user-type", wrong)
            return checked
    info = check_condition(badge.condition, badge.operations)
    unknown = sorted((info.new_columns | info.old_columns) - set(cols))
    if unknown:
        checked.problem = ("condition", "unknown-column",
                           f"uses {', '.join(unknown)}, not column(s) of {table.display}")
        return checked
    volatile, not_scalar, user_written = (names & info.functions for names in traits)
    checked.target = Target(badge, info, table, tuple(facts.primary_key(table)),
                            bool(volatile), info.expression_sql is not None and not not_scalar,
                            calls_user_functions=bool(user_written))
    return checked


def _queries(res: Resolution, target: Target, events: bool) -> list[sql.Composed]:
    """What install would run for each operation of the badge: PostgreSQL must plan it."""
    src = sql.Identifier(*target.table.parts)
    return [award_query(target, op, res.award, "x", src, src, single_row=target.row_level(op),
                        events=events) if res.award_exists
            else winners_query(target, op, None, src, src, target.row_level(op))
            for op in target.badge.operations]


def resolve(conn: psycopg.Connection, bf: BadgeFile) -> Resolution:
    """File checks, then database checks for every badge the file check passed: the
    catalog read once per table, every condition planned by PostgreSQL in one batch."""
    problems = check_definitions(bf)
    award, award_exists, facts = _award_table(conn, bf.settings.award_table, problems)
    res = Resolution(award=award, award_exists=award_exists, user_type="",
                     problems=problems, search_path=catalog.search_path(conn),
                     award_user_type=facts["user_type"].type if facts.get("user_type") else None,
                     award_unique_name=facts.get("unique_name", False))
    if res.award_unique_name:
        _shared_names(bf, problems, award)
    res.badges = valid_badges(bf, problems)
    events = catalog.relation_exists(conn, SCHEMA, EVENTS)  # else planned without recording
    traits = catalog.function_traits(conn, set().union(
        *(check_condition(b.condition, b.operations).functions for b in res.badges)))
    schema = catalog.SchemaFacts(conn)
    checked = [_check_badge(schema, res, badge, facts.get("user_type"), traits)
               for badge in res.badges]
    # A generator: the queries are composed while the server plans the ones before.
    said = iter(objections(conn, (query for c in checked if c.target
                                  for query in _queries(res, c.target, events))))
    for c in checked:
        # The first operation PostgreSQL rejects is the one reported, as when they were
        # planned one by one (the batch plans them all).
        planned = [next(said) for _ in c.badge.operations] if c.target else []
        objection = next((o for o in planned if o), None)
        if objection:
            c.problem = ("condition", "plan", f"PostgreSQL rejects it: {objection}")
        if c.problem:
            found = problems if c.badge.enabled else res.ignored
            found.append(Problem(c.badge.index, c.badge.code, *c.problem))
        else:
            res.targets.append(c.target)
    res.user_type = res.user_type or "bigint"
    return res


def validate_against_database(conn: psycopg.Connection, bf: BadgeFile,
                              timeouts: Timeouts = READS) -> Resolution:
    """resolve() in a READ ONLY transaction with lock and statement timeouts, rolled back."""
    from .health import installed_health  # health resolves installed definitions with resolve()

    with bounded(conn, timeouts, tables_of(bf), read_only=True):
        res = resolve(conn, bf)
        res.broken = list(installed_health(conn, bf, res).values())
        raise psycopg.Rollback()
    return res
