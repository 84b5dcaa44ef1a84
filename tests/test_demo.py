"""The zero-setup demo: no DSN at all starts the embedded server, fills it once, stops it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT


def run_cli(*args, env):
    return subprocess.run([sys.executable, "-m", "badge_console.cli", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.fixture
def demo_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["BADGE_CONSOLE_DATA_DIR"] = str(tmp_path / "data")
    yield env
    pgdata = tmp_path / "data" / "pgdata"
    if (pgdata / "postmaster.pid").exists():  # never leave a server behind a failed test
        from pgserver import pg_ctl
        pg_ctl(["-w", "stop", "-m", "immediate"], pgdata=pgdata,
               user="pgserver" if os.geteuid() == 0 else None)


def test_no_dsn_starts_the_demo_reuses_it_and_stops_it(demo_env, tmp_path):
    first = run_cli("plan", "--json", env=demo_env)
    assert first.returncode == 0, first.stderr
    doc = json.loads(first.stdout)
    assert doc["database"] == "embedded demo (badge_demo)"
    assert {b["code"]: b["status"] for b in doc["badges"]} == {
        "pionner": "installed", "collector": "installed", "star": "installed",
        "spring_cleaning": "installed"}
    pgdata = tmp_path / "data" / "pgdata"
    assert not (pgdata / "postmaster.pid").exists()  # stopped cleanly on exit
    second = run_cli("validate", env=demo_env)  # reuses the same data directory
    assert second.returncode == 0 and "embedded demo" in second.stdout


def test_database_url_is_used_without_dsn(demo_env, admin_dsn, dsn):
    env = dict(demo_env, DATABASE_URL=dsn)
    result = run_cli("plan", "--json", env=env)
    doc = json.loads(result.stdout)
    assert result.returncode == 1
    assert doc["database"] != "embedded demo (badge_demo)"
    assert {b["status"] for b in doc["badges"]} == {"invalid"}  # empty db: no demo tables


def test_demo_schema_scales_past_a_thousand_users(dsn):
    import psycopg

    from badge_console.core.demo import create_demo_schema

    with psycopg.connect(dsn) as conn:
        create_demo_schema(conn, users=2000, sketches=10)
        assert conn.execute("SELECT count(DISTINCT username) FROM auth_user").fetchone()[0] == 2000
        assert conn.execute("SELECT username FROM auth_user WHERE id = 7").fetchone()[0] == \
            "user0007"
