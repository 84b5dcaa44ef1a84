"""Real PostgreSQL for every test: the embedded server, or BADGE_CONSOLE_TEST_DSN.

Each test that asks for `dsn` gets a database of its own, created before and dropped
(WITH FORCE) after, so no state leaks between tests or into a shared server.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psycopg
import pytest


ROOT = Path(__file__).resolve().parent.parent
TEST_LIMIT = 600  # seconds one test may run; the slowest takes about a minute


class TestOverran(Exception):
    """An Exception, so that a TUI app under test exits and the run goes on."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """A test that hangs fails after TEST_LIMIT seconds instead of hanging the whole run
    (CI gives the suite a hard limit, and a hang there shows nothing of what hung)."""
    def overran(signum, frame):
        raise TestOverran(f"{item.nodeid} ran over {TEST_LIMIT}s")

    previous = signal.signal(signal.SIGALRM, overran)
    signal.alarm(TEST_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def admin_dsn():
    from badge_console.core.demo import scratch_server

    with scratch_server(os.environ.get("BADGE_CONSOLE_TEST_DSN"), "badge-console-test-") as dsn:
        yield dsn


@pytest.fixture
def dsn(admin_dsn):
    """A fresh, empty database for this test."""
    from badge_console.core.demo import scratch_database

    with scratch_database(admin_dsn, "bc_test") as database:
        yield database


@pytest.fixture
def conn(dsn):
    with psycopg.connect(dsn, autocommit=True) as connection:
        yield connection


def make_demo(dsn: str, users: int = 100, sketches: int = 0) -> None:
    from badge_console.core.demo import create_demo_schema

    with psycopg.connect(dsn) as c:
        create_demo_schema(c, users=users, sketches=sketches)


@pytest.fixture
def demo(dsn):
    """The seed's scenario database: 100 Django-shaped users who joined yesterday,
    no sketches, no badges yet."""
    make_demo(dsn)
    with psycopg.connect(dsn) as c:
        c.execute("UPDATE auth_user SET date_joined = now() - interval '1 day'")
    return dsn


@pytest.fixture
def badge_file(tmp_path):
    """Write a badges file (list or object form) and return its path."""
    import json

    def write(doc, name="badge.json") -> Path:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from badge_console.cli import main

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
