"""Whether PostgreSQL plans a list of queries, and its objection to each one that it does
not: the check behind "a condition that PostgreSQL rejects when planned" (SPEC §2).

A badge file holds thousands of badges; one savepoint and one EXPLAIN each cost a
round trip and a statement per badge (most of what `validate` took). Here a DO block
runs a hundred EXPLAINs, each in its own exception block (a subtransaction, as the
savepoint was), and hands back each failure's SQLSTATE and message; the blocks are
pipelined, so the whole file costs one round trip, and the server plans a block while
the client composes the next. It stays a read: EXPLAIN creates nothing and DO leaves no
object behind (a hot standby runs it); each block's result travels in a transaction-
local setting read by the statement after it, nothing is prepared on the server, so
nothing session-scoped reaches a transaction-pooling PgBouncer. The statement timeout
bounds a block, not one EXPLAIN. DO needs PL/pgSQL; a database without it, or a role
without USAGE on it, gets one EXPLAIN per query in a savepoint, as before.

A lock or statement timeout says nothing about a query: it propagates to the caller's
bounded transaction (core.waits), which names the lock, instead of being blamed on it.
"""

from __future__ import annotations

import json
from itertools import chain, islice
from typing import Iterable, Iterator

import psycopg
from psycopg import sql
from psycopg.rows import scalar_row

from . import catalog

RESULT = "badge_console.explain_errors"  # the transaction-local setting of the DO block
BLOCK = 100  # queries per DO block

# Flat text array of (position, SQLSTATE, message) per failing EXPLAIN; QUERY_CANCELED is
# never caught by OTHERS, and a lock timeout is raised again, so both end the block.
_EXPLAIN_ALL = """
DECLARE
  queries text[] := {queries};
  failed text[] := '{{}}';
  state text;
  message text;
BEGIN
  FOR i IN 1 .. cardinality(queries) LOOP
    BEGIN
      EXECUTE queries[i];
    EXCEPTION
      WHEN lock_not_available THEN RAISE;
      WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
        failed := failed || ARRAY[i::text, state, message];
    END;
  END LOOP;
  PERFORM set_config({result}, array_to_json(failed)::text, true);
END
"""


def _worded(error: type[psycopg.Error], message: str, user: str) -> str:
    """PostgreSQL's objection as validate words it: its message, and for a missing
    privilege who lacks it and what to do."""
    if issubclass(error, psycopg.errors.InsufficientPrivilege):
        return (f"{message.rstrip('.')} for role {user}; install as the tables' owner or "
                "grant SELECT")
    return message.rstrip(".")


def _error_class(sqlstate: str) -> type[psycopg.Error]:
    try:
        return psycopg.errors.lookup(sqlstate)
    except KeyError:  # a SQLSTATE this psycopg does not know: a plain error
        return psycopg.Error


def _explain_one(conn: psycopg.Connection, query: sql.Composable) -> str | None:
    try:
        with conn.transaction():
            conn.execute(sql.SQL("EXPLAIN (COSTS OFF) {}").format(query))
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
        raise
    except psycopg.Error as exc:
        return _worded(type(exc), exc.diag.message_primary or str(exc), conn.info.user)
    return None


def _do_block(conn: psycopg.Connection, queries: list[sql.Composable]) -> sql.Composed:
    texts = [sql.Literal(sql.SQL("EXPLAIN (COSTS OFF) {}").format(q).as_string(conn))
             for q in queries]
    return sql.SQL("DO {}").format(sql.Literal(sql.SQL(_EXPLAIN_ALL).format(
        queries=sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(texts)),
        result=sql.Literal(RESULT)).as_string(conn)))


def _explain_all(conn: psycopg.Connection, queries: Iterator[sql.Composable]
                 ) -> list[str | None]:
    found: list[str | None] = []
    reads = []  # (offset of the block's first query, cursor reading the block's failures)
    # In a savepoint, so that a lock timeout leaves the caller's transaction usable for
    # naming the lock (core.waits), as one EXPLAIN's savepoint did. Pipelined, so that
    # the server plans one block while the next one is still being composed.
    # (psycopg[binary], a dependency, ships a libpq with pipeline mode: 14 or later.)
    with conn.transaction(), conn.pipeline():
        while block := list(islice(queries, BLOCK)):
            conn.execute(_do_block(conn, block), prepare=False)
            reads.append((len(found), conn.cursor(row_factory=scalar_row).execute(
                sql.SQL("SELECT current_setting({}, true)").format(sql.Literal(RESULT)),
                prepare=False)))
            found += [None] * len(block)
    for offset, cur in reads:
        failed = json.loads(cur.fetchone())
        for position, sqlstate, message in zip(failed[0::3], failed[1::3], failed[2::3]):
            found[offset + int(position) - 1] = _worded(_error_class(sqlstate), message,
                                                        conn.info.user)
    return found


def objections(conn: psycopg.Connection, queries: Iterable[sql.Composable]
               ) -> list[str | None]:
    """For each query, None when it plans, else PostgreSQL's objection in one sentence.
    Runs inside the caller's transaction and leaves it as it was. `queries` may be a
    generator: the first blocks are planned while it composes the next ones."""
    queries = iter(queries)
    first = next(queries, None)
    if first is None:
        return []
    queries = chain([first], queries)
    if not catalog.language_usable(conn, "plpgsql"):
        return [_explain_one(conn, query) for query in queries]
    return _explain_all(conn, queries)
