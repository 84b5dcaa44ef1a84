"""Checks of badge.json against the live database, producing generator Targets.

Everything here runs inside the caller's transaction with a savepoint per badge, so a
badge whose condition PostgreSQL rejects is one Problem among others, not an abort.
`validate_against_database` wraps it in a READ ONLY transaction that is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from . import catalog
from .condition import check_condition
from .definitions import CODE_RE, BadgeFile, check_definitions
from .errors import OperationFailed, Problem
from .sqlgen import EVENTS, SCHEMA, AwardTable, Target, award_query, winners_query

CHECK_TIMEOUT = "5s"


@dataclass
class Resolution:
    award: AwardTable
    award_exists: bool
    user_type: str  # type for user_id when the award table must be created
    targets: list[Target] = field(default_factory=list)  # valid, enabled or not
    problems: list[Problem] = field(default_factory=list)
    search_path: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _award_table(conn, bf: BadgeFile, problems: list[Problem]) -> tuple[AwardTable, bool]:
    name = bf.award_table if isinstance(bf.award_table, str) else "badges_badge"
    ref = catalog.resolve_table(conn, name)
    if ref is None:
        schema, _, table = name.rpartition(".") if "." in name else ("", "", name)
        schema = schema or conn.execute("SELECT current_schema()").fetchone()[0]
        return AwardTable(schema, table, True), False
    cols = {c.name for c in catalog.columns(conn, ref)}
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
    return AwardTable(ref.schema, ref.name, "awarded_at" in cols), True


def _explain(conn, query: sql.Composable, what: str) -> str | None:
    """PostgreSQL's objection to a query, or None when it plans.

    A lock or statement timeout says nothing about the condition: it is raised as an
    operation failure instead of being blamed on the badge.
    """
    try:
        with conn.transaction():
            conn.execute(sql.SQL("EXPLAIN (COSTS OFF) {}").format(query))
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled) as exc:
        reason = "a lock (the table is busy)" if isinstance(
            exc, psycopg.errors.LockNotAvailable) else "the statement timeout"
        raise OperationFailed(f"Checking {what} gave up waiting for {reason}; nothing was "
                              "changed, retry later.") from None
    except psycopg.errors.InsufficientPrivilege as exc:
        return (f"{(exc.diag.message_primary or str(exc)).rstrip('.')} for role "
                f"{conn.info.user}; install as the tables' owner or grant SELECT")
    except psycopg.Error as exc:
        diag = exc.diag
        return (diag.message_primary or str(exc)).rstrip(".")
    return None


def resolve(conn: psycopg.Connection, bf: BadgeFile) -> Resolution:
    """File checks, then database checks for every badge the file check passed."""
    problems = check_definitions(bf)
    award, award_exists = _award_table(conn, bf, problems)
    res = Resolution(award=award, award_exists=award_exists, user_type="bigint",
                     problems=problems, search_path=catalog.search_path(conn))
    broken = {p.index for p in problems if p.index is not None}
    user_type = None
    events = catalog.relation_exists(conn, SCHEMA, EVENTS)  # else planned without recording
    for index, badge in enumerate(bf.badges):
        if index in broken:
            continue
        code = badge.code if CODE_RE.fullmatch(badge.code) else None

        def add(key, kind, message):
            problems.append(Problem(index, code, key, kind, message))

        table = catalog.resolve_table(conn, badge.trigger_table)
        if table is None:
            add("trigger_table", "unknown-table",
                f"table '{badge.trigger_table}' not found (search_path: "
                f"{', '.join(res.search_path) or 'empty'}); create it or qualify it as "
                "schema.table")
            continue
        if table.kind not in ("r", "p", "f"):
            add("trigger_table", "not-a-table",
                f"{table.display} is a view or materialized view; badges need a table")
            continue
        cols = {c.name: c for c in catalog.columns(conn, table)}
        if badge.user_field not in cols:
            add("user_field", "unknown-column",
                f"column '{badge.user_field}' not in {table.display}; "
                f"columns are {', '.join(cols)}")
            continue
        user_type = user_type or cols[badge.user_field].type
        info = check_condition(badge.condition, badge.operations)
        unknown = sorted((info.new_columns | info.old_columns) - set(cols))
        if unknown:
            add("condition", "unknown-column",
                f"uses {', '.join(unknown)}, not column(s) of {table.display}")
            continue
        volatile, not_scalar = catalog.function_traits(conn, info.functions)
        target = Target(badge, info, table, tuple(catalog.primary_key(conn, table)),
                        bool(volatile), info.expression_sql is not None and not not_scalar)
        objection = None
        for op in badge.operations:
            src = sql.Identifier(*table.parts)
            single = target.row_level(op)
            query = award_query(target, op, award, "x", src, src, single_row=single,
                                events=events) \
                if award_exists else winners_query(target, op, None, src, src, single)
            objection = _explain(conn, query, f"badge {badge.code} on {table.display}")
            if objection:
                add("condition", "plan", f"PostgreSQL rejects it: {objection}")
                break
        if objection is None:
            res.targets.append(target)
    res.user_type = user_type or "bigint"
    return res


def validate_against_database(conn: psycopg.Connection, bf: BadgeFile) -> Resolution:
    """resolve() in a READ ONLY transaction with a statement timeout, always rolled back."""
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
            sql.Literal(CHECK_TIMEOUT)))
        res = resolve(conn, bf)
        raise psycopg.Rollback()
    return res
