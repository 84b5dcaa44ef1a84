"""The generator's part for concurrent writers (SPEC section 7, "No award is lost").

A condition that reads other rows (Target.locks) is judged only under a transaction
advisory lock per (badge, user), taken before the condition and held to commit, the
condition running in a later statement so that READ COMMITTED shows it what the lock's
previous holder committed. The lock is tried without waiting first (the usual case); else
waited for at most LOCK_WAIT; else the changed row is queued in badge_console.queue in the
same transaction and reconcile (sqlgen_reconcile) judges it later. bench/concurrency.py
measures it.
"""

from __future__ import annotations

import hashlib

from psycopg import sql

from .sqlgen import NEW_TABLE, OLD_TABLE, SCHEMA, Target

# The longest a trigger waits for another transaction writing for the same badge and user
# (it holds their lock until it commits); after that the (badge, user) is queued for
# reconcile instead. Far below deadlock_timeout (1s), so a lock cycle ends as a timeout.
LOCK_WAIT = "30 ms"


def lock_key(code: str) -> int:
    """The badge's half of its advisory lock key (pg_advisory_xact_lock(int, int))."""
    return int.from_bytes(hashlib.sha256(code.encode()).digest()[:4], "big", signed=True)


def target_lock_key(target: Target) -> int:
    """The badge's half of its lock: from the value its condition computes when it has one
    (levels, thresholds of one value), else from its code. Badges sharing a value share
    the lock, since what must be read after the other writer's commit is that value: a
    write takes one lock per value and user, not one per badge (500 levels of one count
    would otherwise take 500 locks per user and can exhaust the lock table in bulk)."""
    return lock_key(target.info.value_sql or target.badge.code)


def user_lock_key(user: sql.Composable) -> sql.Composed:
    """The user's half: any user type, through its text form."""
    return sql.SQL("hashtext(({})::text)").format(user)


def lock_or_queue_set(targets: list[Target], op: str, lacks,
                      codes: sql.Composable) -> sql.Composed:
    """Set-based, for badges sharing one lock key (one, or the levels of one value): take
    the lock of every changed user for whom `lacks(user)` holds, waiting for all of them
    together at most LOCK_WAIT; the rows of users whose lock could not be had are queued
    for reconcile, for each badge of `codes` (a text[] expression: those judged now; the
    award query after this statement judges the rest)."""
    target = targets[0]
    b = target.badge
    uf = sql.Identifier(b.user_field)
    changed = sql.Identifier(OLD_TABLE if op == "delete" else NEW_TABLE)
    user = sql.SQL("changed.{}").format(uf)
    key = sql.Literal(target_lock_key(target))
    ukey = user_lock_key(sql.SQL("c.u"))
    if target.needs_old_and_new(op):
        rows = sql.SQL("{n} AS n JOIN {o} AS o ON {on}").format(
            n=sql.Identifier(NEW_TABLE), o=sql.Identifier(OLD_TABLE), on=sql.SQL(" AND ").join(
                sql.SQL("n.{c} = o.{c}").format(c=sql.Identifier(c)) for c in target.primary_key))
        new, old, row_user = sql.SQL("to_jsonb(n)"), sql.SQL("to_jsonb(o)"), sql.SQL("n.{}").format(uf)
    elif op == "delete":
        rows = sql.SQL("{} AS o").format(changed)
        new, old, row_user = sql.SQL("NULL"), sql.SQL("to_jsonb(o)"), sql.SQL("o.{}").format(uf)
    else:
        rows = sql.SQL("{} AS n").format(changed)
        new, old, row_user = sql.SQL("to_jsonb(n)"), sql.SQL("NULL"), sql.SQL("n.{}").format(uf)
    return sql.SQL(
        "  bc_deadline := clock_timestamp() + {wait}::interval;\n"
        "  SELECT array_agg(c.u::text) INTO bc_contended\n"
        "    FROM (SELECT c.u FROM (SELECT DISTINCT {user} AS u FROM {changed} AS changed) AS c\n"
        "          WHERE c.u IS NOT NULL AND {lacks} OFFSET 0) AS c\n"
        "    WHERE NOT (pg_try_advisory_xact_lock({key}, {ukey})\n"
        "               OR {s}.lock_within({key}, {ukey}, bc_deadline));\n"
        "  IF bc_contended IS NOT NULL THEN\n"
        "    INSERT INTO {s}.queue (code, op, user_id, new_row, old_row)\n"
        "      SELECT q.code, {op}, ({row_user})::text, {new}, {old} FROM {rows}\n"
        "      CROSS JOIN unnest({codes}::text[]) AS q(code)\n"
        "      WHERE ({row_user})::text = ANY (bc_contended);\n"
        "  END IF;\n").format(
        wait=sql.Literal(LOCK_WAIT), user=user, changed=changed,
        lacks=lacks(sql.SQL("c.u")), key=key, ukey=ukey, s=sql.Identifier(SCHEMA),
        codes=codes, op=sql.Literal(op), row_user=row_user, new=new, old=old,
        rows=rows)
