"""Bounded waits: with a table locked by another session, commands give up with one
sentence naming the table and the session, and a killed client leaves no backend behind.

The commands run as real processes (with a generous subprocess timeout, so a command
that hangs fails the test instead of hanging the suite).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from helpers import ROOT, install_file

BADGES = str(ROOT / "badge.json")
HANG = 90  # seconds after which a command counts as hanging (its own limit is 5s or less)


@pytest.fixture
def locked(demo):
    """dummy_sketch held in ACCESS EXCLUSIVE mode by another session; yields its pid."""
    holder = psycopg.connect(demo)
    holder.execute("LOCK dummy_sketch IN ACCESS EXCLUSIVE MODE")
    yield holder.info.backend_pid
    holder.close()


def _cli(*argv):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "badge_console.cli", *map(str, argv)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG)


@pytest.mark.parametrize("argv", [
    ["plan"], ["plan", "--json"], ["validate"], ["backfill", "--dry-run"],
    ["install", "--yes"], ["install", "--yes", "--lock-timeout", "1s"],
], ids=" ".join)
def test_a_locked_table_is_named_with_its_holder(demo, locked, argv):
    proc = _cli(*argv, "--dsn", demo, "--badges", BADGES)
    assert proc.returncode == 1, proc.stderr
    assert f"table dummy_sketch is locked by another session (pid {locked})" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "statement timeout" not in proc.stderr
    assert proc.stdout == ""


def test_install_says_which_timeout_it_gave_up_at(demo, locked):
    proc = _cli("install", "--yes", "--lock-timeout", "1s", "--dsn", demo, "--badges", BADGES)
    assert "gave up after waiting 1s" in proc.stderr


def test_uninstall_names_the_locked_table(demo):
    install_file(demo, BADGES)
    with psycopg.connect(demo) as holder:
        holder.execute("LOCK dummy_sketch IN ACCESS SHARE MODE")
        proc = _cli("uninstall", "--yes", "--lock-timeout", "1s", "--dsn", demo)
        pid = holder.info.backend_pid
    assert proc.returncode == 1
    assert f"table dummy_sketch is locked by another session (pid {pid})" in proc.stderr


def _ours(dsn) -> list[tuple]:
    """Backends of badge-console connected to this test's database."""
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, wait_event_type FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'badge-console'", (dbname,)).fetchall()


def _wait_for(predicate, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_killed_client_leaves_no_backend(demo, locked, how):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen([sys.executable, "-m", "badge_console.cli", "install", "--yes",
                             "--lock-timeout", "60s", "--dsn", demo, "--badges", BADGES],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert _wait_for(lambda: any(w == "Lock" for _, _, w in _ours(demo)))
        proc.send_signal(how)
        proc.wait(timeout=HANG)
        assert _wait_for(lambda: not _ours(demo)), _ours(demo)
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in proc.stderr.read()


def test_dry_run_names_the_locked_table(demo, locked):
    proc = _cli("dry-run", "star", "--lock-timeout", "1s", "--dsn", demo, "--badges", BADGES)
    assert proc.returncode == 1
    assert f"table dummy_sketch is locked by another session (pid {locked})" in proc.stderr
    assert "gave up after waiting 1s" in proc.stderr


def test_console_views_give_up_naming_the_table(demo, locked):
    """The Tables view's grid and the Badges view's check, through the console's Database."""
    from badge_console.core import browse
    from badge_console.core.definitions import load_badge_file
    from badge_console.core.errors import LockTimeout
    from badge_console.core.resolve import validate_against_database
    from badge_console.tui.db import Database

    db = Database(demo)
    try:
        info = db.run("tables", lambda conn: browse.describe(conn, "public", "dummy_sketch"))
        with pytest.raises(LockTimeout) as grid:
            db.run("tables", browse.Browser(info).first)
        with pytest.raises(LockTimeout) as check:
            db.run("badges", lambda conn: validate_against_database(
                conn, load_badge_file(BADGES)))
    finally:
        db.close()
    assert (grid.value.table, grid.value.pid) == ("dummy_sketch", locked)
    assert (check.value.table, check.value.pid) == ("dummy_sketch", locked)



def test_a_slow_page_stops_at_the_views_own_statement_timeout(demo):
    from badge_console.core import browse
    from badge_console.core.errors import StatementTimeout
    from badge_console.tui.db import Database

    db = Database(demo)
    try:
        info = db.run("tables", lambda conn: browse.describe(conn, "public", "auth_user"))
        slow = browse.Browser(info, where=browse.check_filter("pg_sleep(1) IS NOT NULL"),
                              timeout="100ms")
        with pytest.raises(StatementTimeout) as stopped:
            db.run("tables", slow.first)
    finally:
        db.close()
    assert stopped.value.timeout == "100ms"
