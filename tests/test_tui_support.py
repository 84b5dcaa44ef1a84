"""Shared fixtures of the console tests (no tests here): a fixed demo database with the
demo badges installed, a private copy of badge.json, and an app factory."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest

from badge_console.core.definitions import load_badge_file
from badge_console.core.install import install
from conftest import ROOT, make_demo

SIZE = (120, 36)


def prepare_demo(dsn: str, users: int = 40, sketches: int = 250) -> None:
    """Fixed rows, demo badges installed, statistics gathered (row estimates are exact)."""
    make_demo(dsn, users=users, sketches=sketches)
    with psycopg.connect(dsn, autocommit=True) as conn:
        install(conn, load_badge_file(ROOT / "badge.json"))
        conn.execute("ANALYZE")


@pytest.fixture
def console_db(dsn, monkeypatch):
    monkeypatch.setenv("PGTZ", "UTC")
    prepare_demo(dsn)
    return dsn


@pytest.fixture
def badges_copy(tmp_path) -> Path:
    path = tmp_path / "badge.json"
    shutil.copy(ROOT / "badge.json", path)
    return path


@pytest.fixture
def make_app(console_db, badges_copy):
    from badge_console.tui.app import BadgeConsoleApp

    def make(read_only: bool = False, badges: Path | None = None):
        return BadgeConsoleApp(console_db, badges or badges_copy, "demo-db",
                               read_only=read_only)

    return make


def sync(test):
    """Run an async test body with asyncio (no async pytest plugin is needed)."""
    import asyncio
    import functools

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


async def settle(pilot, app, seconds: float = 30.0) -> None:
    """Wait until no worker runs (except the reconnect loop) and messages are handled."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    await pilot.pause()
    while loop.time() < deadline:
        busy = [w for w in app.workers if w.is_running and w.group != "app-reconnect"]
        if not busy:
            break
        await asyncio.sleep(0.05)
    await pilot.pause()
    await pilot.pause()


def mask_header(app) -> None:
    """Fix what varies between servers and runs in the header."""
    from badge_console.tui.widgets.header import StatusHeader

    header = app.query_one(StatusHeader)
    header.server_version = "NN.N"
    header.badges_path = "badge.json"


WAIT = 30.0  # seconds a test waits at most for what a worker shows (CI machines are loaded)


async def wait_for(pilot, condition, what: str, timeout: float = WAIT) -> None:
    """Until `condition()` holds (a worker's result on screen), or fail naming `what`.

    An AssertionError, not pytest.fail: inside a snapshot's run_before Textual's autopilot
    exits the app only on an Exception, and pytest.fail's BaseException left the app
    running, so CI hung instead of failing."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)
