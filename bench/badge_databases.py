"""Scratch databases for bench/badges_per_table.py, identical but for their triggers.

Each holds the demo schema (dummy_sketch with its index on user_id), the users and the
award table, built as bench/trigger_overhead.py builds its own (its USERS, its reset,
its install_seed for the 2016 design); "ours" is whatever core.install.install creates
on the branch the bench runs on.
"""

from __future__ import annotations

from contextlib import ExitStack

import psycopg

from badge_console.core.demo import create_demo_schema, scratch_database
from badge_console.core.install import install
from badge_console.core.sqlgen_setup import award_table_ddl
from badge_sets import badge_file
from trigger_overhead import AWARD, USERS, Sizes, awards, install_seed, reset


def prepared(stack: ExitStack, admin_dsn: str, label: str, users: int) -> str:
    """A new database (dropped when `stack` closes) with the schema, `users` users and
    the empty award table; returns its DSN."""
    dsn = stack.enter_context(scratch_database(admin_dsn, f"bc_bpt_{label}"))
    with psycopg.connect(dsn) as conn:
        create_demo_schema(conn, users=0, sketches=0)
        conn.execute(USERS, {"users": users})
        conn.execute(award_table_ddl(AWARD, "integer"))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE auth_user")
    return dsn


def configure(dsn: str, design: str, badges: list[dict]) -> None:
    """Install `badges` the way `design` does: none, 2016 (one row trigger per badge) or
    ours (the project's install, in its own transaction)."""
    if design == "none":
        return
    bf = badge_file(badges)
    with psycopg.connect(dsn) as conn:
        if design == "2016":
            install_seed(conn, bf)
        else:
            install(conn, bf)


def empty(conn) -> None:
    """No sketches, no awards, the award table ANALYZEd while empty (the planner trap of
    PERF-NOTES.md is part of every measurement, as in trigger_overhead.py)."""
    reset(conn, "W1", Sizes())  # W1 starts from an empty table


def same_awards(conns: dict, first: str, second: str, what: str) -> int:
    """The number of awards both designs made; stops the bench when they differ, since
    a faster design that awards other users measures nothing."""
    a, b = awards(conns[first]), awards(conns[second])
    if a != b:
        raise SystemExit(f"MISMATCH in {what}: only {first} {sorted(a - b)[:5]}, "
                         f"only {second} {sorted(b - a)[:5]}")
    return len(a)


def rotated(configs: tuple[str, ...], turn: int) -> tuple[str, ...]:
    """The configurations in the order of round `turn`: each goes first in turn."""
    k = turn % len(configs)
    return configs[k:] + configs[:k]
