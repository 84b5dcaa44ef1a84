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

from .sqlgen import NEW_TABLE, OLD_TABLE, SCHEMA, AwardTable, Target
from .sqlgen_winners import lacks_badge

# The longest a trigger waits for another transaction writing for the same badge and user
# (it holds their lock until it commits); after that the (badge, user) is queued for
# reconcile instead. Far below deadlock_timeout (1s), so a lock cycle ends as a timeout.
LOCK_WAIT = "30 ms"


def lock_key(code: str) -> int:
    """The badge's half of its advisory lock key (pg_advisory_xact_lock(int, int))."""
    return int.from_bytes(hashlib.sha256(code.encode()).digest()[:4], "big", signed=True)


def user_lock_key(user: sql.Composable) -> sql.Composed:
    """The user's half: any user type, through its text form."""
    return sql.SQL("hashtext(({})::text)").format(user)


def locked_or_queued(target: Target, op: str, user: sql.Composable) -> sql.Composed:
    """True once this transaction holds the (badge, user) lock: at once when free (the usual
    case, no wait), else within LOCK_WAIT; false after queueing the row for reconcile.
    The condition must run in a later statement, whose snapshot sees what the lock's last
    holder committed."""
    b = target.badge
    key, ukey = sql.Literal(lock_key(b.code)), user_lock_key(user)
    new = sql.SQL("to_jsonb(NEW)") if op != "delete" else sql.SQL("NULL")
    old = sql.SQL("to_jsonb(OLD)") if op == "delete" or target.needs_old_and_new(op) \
        else sql.SQL("NULL")
    return sql.SQL(
        "(pg_try_advisory_xact_lock({key}, {ukey})\n"
        "          OR {s}.lock_within({key}, {ukey}, clock_timestamp() + {wait}::interval)\n"
        "          OR {s}.enqueue({code}, {op}, ({user})::text, {new}, {old}))").format(
        key=key, ukey=ukey, s=sql.Identifier(SCHEMA), wait=sql.Literal(LOCK_WAIT),
        code=sql.Literal(b.code), op=sql.Literal(op), user=user, new=new, old=old)


def lock_or_queue_set(target: Target, op: str, award: AwardTable) -> sql.Composed:
    """Set-based: take the lock of every changed user who lacks the badge, waiting for all
    of them together at most LOCK_WAIT; the rows of users whose lock could not be had are
    queued for reconcile (the award query after this statement judges the rest)."""
    b = target.badge
    uf = sql.Identifier(b.user_field)
    changed = sql.Identifier(OLD_TABLE if op == "delete" else NEW_TABLE)
    user = sql.SQL("changed.{}").format(uf)
    key = sql.Literal(lock_key(b.code))
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
        "    FROM (SELECT DISTINCT {user} AS u FROM {changed} AS changed\n"
        "          WHERE {user} IS NOT NULL AND {lacks} OFFSET 0) AS c\n"
        "    WHERE NOT (pg_try_advisory_xact_lock({key}, {ukey})\n"
        "               OR {s}.lock_within({key}, {ukey}, bc_deadline));\n"
        "  IF bc_contended IS NOT NULL THEN\n"
        "    INSERT INTO {s}.queue (code, op, user_id, new_row, old_row)\n"
        "      SELECT {code}, {op}, ({row_user})::text, {new}, {old} FROM {rows}\n"
        "      WHERE ({row_user})::text = ANY (bc_contended);\n"
        "  END IF;\n").format(
        wait=sql.Literal(LOCK_WAIT), user=user, changed=changed,
        lacks=lacks_badge(award, user, b.code), key=key, ukey=ukey, s=sql.Identifier(SCHEMA),
        code=sql.Literal(b.code), op=sql.Literal(op), row_user=row_user, new=new, old=old,
        rows=rows)
