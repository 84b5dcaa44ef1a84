"""Small helpers shared by the engine tests (no database mocks: these run real SQL)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from badge_console.core.definitions import load_badge_file, parse_badge_file
from badge_console.core.install import install

ROOT = Path(__file__).resolve().parent.parent
DEMO_BADGES = json.loads((ROOT / "badge.json").read_text())["badges"]


def demo_badge(code: str, **changes) -> dict:
    badge = dict(next(b for b in DEMO_BADGES if b["code"] == code))
    badge.update(changes)
    return badge


def install_badges(dsn: str, badges: list[dict], **settings):
    """Install these badges (object form) and return the Plan that was applied."""
    bf = parse_badge_file(json.dumps({"badges": badges, **settings}))
    with psycopg.connect(dsn) as conn:
        return install(conn, bf)


def install_file(dsn: str, path):
    with psycopg.connect(dsn) as conn:
        return install(conn, load_badge_file(path))


def awards(dsn: str, code: str | None = None, table: str = "badges_badge") -> list[tuple]:
    """(user_id, code) of every award, sorted."""
    with psycopg.connect(dsn) as conn:
        query = f"SELECT user_id, code FROM {table}"  # test-owned constant table names
        rows = conn.execute(query + (" WHERE code = %s" if code else "") + " ORDER BY 1, 2",
                            (code,) if code else None).fetchall()
    return rows


def run(dsn: str, *statements, params=None) -> None:
    with psycopg.connect(dsn) as conn:
        for statement in statements:
            conn.execute(statement, params)


def insert_sketches(dsn: str, rows, one_at_a_time: bool) -> None:
    """(user_id, hit_views) rows into dummy_sketch: a statement each (the triggers'
    one-row path) or all in one (their set-based path)."""
    if one_at_a_time:
        for user, views in rows:
            run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (%s, 'x', %s)",
                params=(user, views))
    else:
        run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
                 " SELECT u, 'x', v FROM unnest(%s::int[], %s::int[]) AS r(u, v)",
            params=([u for u, _ in rows], [v for _, v in rows]))
