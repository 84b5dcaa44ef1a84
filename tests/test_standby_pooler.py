"""A hot standby and a PgBouncer in front of the primary, as production has them.

One primary with a streaming replica, a transaction-pooling and a session-pooling
PgBouncer, started once for the module (tests/clusters.py); each test uses its own users
of one demo database. On the replica reads work, writes are refused up front naming it,
and the feed polls; through the transaction pooler the feed polls too and nothing
session-scoped is left in the pool.
"""

from __future__ import annotations

import json
import time

import psycopg
import pytest

from badge_console.core.feed import AwardListener
from clusters import Cluster, PgBouncer
from conftest import ROOT, make_demo
from helpers import DEMO_BADGES, install_badges
from test_feed import Watch, log_in, users_of

DB = "app"


class Rig:
    def __init__(self):
        self.clusters, self.bouncers = [], []

    def stop(self) -> None:
        for thing in self.bouncers + self.clusters[::-1]:
            thing.stop()


@pytest.fixture(scope="module")
def rig():
    rig = Rig()
    try:
        primary = Cluster.start()
        rig.clusters.append(primary)
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB}")
        rig.primary = primary.dsn(DB)
        make_demo(rig.primary, users=300)
        install_badges(rig.primary, DEMO_BADGES)
        replica = primary.replica()
        rig.clusters.append(replica)
        replica.wait_replayed(primary)
        rig.replica = replica.dsn(DB)
        for mode in ("transaction", "session"):
            bouncer = PgBouncer(primary, mode)
            rig.bouncers.append(bouncer)
            setattr(rig, mode, bouncer.dsn(DB))
        yield rig
    finally:
        rig.stop()


def award_ids(dsn: str, users) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT id FROM badges_badge WHERE user_id = ANY(%s) ORDER BY id", (list(users),))]


def watch_every_award(rig, dsn: str, users: range, expect: str) -> list[dict]:
    """`watch --json` on `dsn` while each user earns Pionner on the primary, one write each."""
    w = Watch(dsn)
    try:
        assert expect in w.wait_stderr("Watching")
        for user in users:
            log_in(rig.primary, user)
        got = w.awards_until(lambda got: len(got) >= len(users))
        got += w.quiet_for(1.5)  # a second poll brings no duplicate
        code, stderr = w.interrupt()
    finally:
        w.close()
    assert code == 0 and "Traceback" not in stderr
    assert sorted(line["id"] for line in got) == award_ids(rig.primary, users)
    assert sorted(users_of(got)) == list(users)
    return got


def test_watch_on_the_replica_polls_and_receives_every_award_made_on_the_primary(rig):
    got = watch_every_award(rig, rig.replica, range(101, 118),
                            "polling every 1 s (hot standby")
    assert len(got) == 17


def pool_sessions(dsn: str) -> list[tuple]:
    """What a fresh client finds on each server connection of the pool (size 2): both
    held at once, so each is a different one."""
    found, conns = [], []
    try:
        for _ in range(2):
            conn = psycopg.connect(dsn, prepare_threshold=None)
            conns.append(conn)
            found.append(conn.execute(
                "SELECT current_setting('statement_timeout'),"
                " (SELECT count(*) FROM pg_listening_channels()),"
                " (SELECT count(*) FROM pg_prepared_statements)").fetchone())
    finally:
        for conn in conns:
            conn.close()
    return found


def test_watch_through_a_transaction_pooler_receives_every_award_and_leaks_nothing(rig):
    got = watch_every_award(rig, rig.transaction, range(121, 138),
                            "polling every 1 s (transaction pooler")
    assert len(got) == 17
    assert pool_sessions(rig.transaction) == [("0", 0, 0), ("0", 0, 0)]


def test_read_commands_through_a_transaction_pooler_leave_no_session_state(rig, cli):
    for argv in (("validate",), ("plan", "--json"), ("backfill", "--dry-run"),
                 ("dry-run", "collector", "--where", "user_id < 50")):
        code, out, err = cli(*argv, "--dsn", rig.transaction, "--badges", ROOT / "badge.json")
        assert code == 0, (argv, err)
    # many identical reads: psycopg would prepare the 6th on the server by itself
    listener = AwardListener(rig.transaction, lambda award: None, poll=0.05, since=0)
    listener.start()
    time.sleep(1.0)
    listener.stop()
    assert pool_sessions(rig.transaction) == [("0", 0, 0), ("0", 0, 0)]


def test_watch_through_a_session_pooler_keeps_listening(rig):
    got = watch_every_award(rig, rig.session, range(141, 146), "channel badge_awarded")
    assert [line["op"] for line in got] == ["update"] * 5  # notified, not read by a poll


def test_pooling_modes_are_told_apart(rig):
    from badge_console.core.topology import pooling

    for dsn, mode in ((rig.primary, "direct"), (rig.replica, "direct"),
                      (rig.session, "session"), (rig.transaction, "transaction")):
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert pooling(conn, dsn) == mode, dsn


def test_watch_behind_a_full_session_pool_polls_rather_than_wait_or_guess(rig):
    """Another client holds the pool's other server connection: the second client that
    would tell the mode gets none, so the feed cannot know and polls, saying so."""
    with psycopg.connect(rig.session, autocommit=True) as other:
        other.execute("SELECT 1")  # session pooling: pinned until it disconnects
        got = watch_every_award(rig, rig.session, range(161, 164),
                                "a pooler whose mode could not be told")
    assert len(got) == 3


@pytest.mark.parametrize("argv, what", [
    (("install", "--yes"), "install"),
    (("install", "--yes", "--backfill"), "install"),
    (("uninstall", "--yes"), "uninstall"),
    (("pause",), "pause"),
    (("pause", "star"), "pause"),
    (("resume", "star"), "resume"),
    (("backfill",), "backfill"),
    (("dry-run", "collector", "--mode", "fire"), "dry-run --mode fire"),
])
def test_writes_on_the_replica_are_refused_up_front_in_one_sentence(rig, cli, argv, what):
    code, out, err = cli("--badges", ROOT / "badge.json", *argv, "--dsn", rig.replica)
    assert code == 1
    assert out == ""  # refused before any plan, table or question
    assert err.count("\n") == 1
    assert f"is a hot standby (read-only); run {what} on the primary." in err
    assert "read-only transaction" not in err


@pytest.mark.parametrize("argv", [
    ("validate",), ("plan",), ("plan", "--json"), ("backfill", "--dry-run"),
    ("backfill", "--dry-run", "--json"), ("dry-run", "collector", "--where", "id < 5"),
    ("dry-run", "collector", "--where", "id < 5", "--json"),
])
def test_read_commands_work_on_the_replica(rig, cli, argv):
    code, out, err = cli(*argv, "--dsn", rig.replica, "--badges", ROOT / "badge.json")
    assert code == 0, err
    if "--json" in argv:
        assert json.loads(out)["standby"] is True
    else:
        assert "(standby, read-only)" in out


def test_core_refuses_writes_on_a_standby_with_a_typed_error(rig):
    from badge_console.core.definitions import load_badge_file
    from badge_console.core.errors import StandbyRefused
    from badge_console.core.bookkeeping import set_paused
    from badge_console.core.install import install, uninstall

    bf = load_badge_file(ROOT / "badge.json")
    with psycopg.connect(rig.replica) as conn:
        for call, what in ((lambda: install(conn, bf), "install"),
                           (lambda: uninstall(conn), "uninstall"),
                           (lambda: set_paused(conn, None, True), "pause")):
            with pytest.raises(StandbyRefused) as caught:
                call()
            assert caught.value.operation == what
            assert caught.value.target.endswith(f"/{DB}")


# ---- the console on the replica -----------------------------------------------------

def on_replica_console(rig, tmp_path, steps, message_hook=None) -> None:
    """Run `await steps(pilot, app)` in the console opened on the replica."""
    import asyncio
    import shutil

    from badge_console.tui.app import BadgeConsoleApp
    from test_tui_support import SIZE

    path = tmp_path / "badge.json"
    shutil.copy(ROOT / "badge.json", path)

    async def run():
        app = BadgeConsoleApp(rig.replica, path, "replica-db")
        async with app.run_test(size=SIZE, message_hook=message_hook) as pilot:
            await steps(pilot, app)
    asyncio.run(run())


def test_console_on_the_replica_says_standby_and_refuses_pause_at_once(rig, tmp_path):
    from test_tui_badges import _badges, _select
    from test_tui_support import settle
    from textual.widgets import Static

    from badge_console.tui.widgets.header import StatusHeader

    async def steps(pilot, app):
        await _badges(pilot, app)
        assert "standby (read-only)" in str(app.query_one(StatusHeader)._line())
        await _select(pilot, app, "star")
        await pilot.press("k")
        await settle(pilot, app)
        assert str(app.query_one("#editor-message", Static).render()) == \
            "replica-db is a hot standby (read-only); run pause on the primary."
    on_replica_console(rig, tmp_path, steps)
    with psycopg.connect(rig.primary) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.paused").fetchone()[0] == 0


def test_live_feed_on_the_replica_polls_and_shows_an_award_made_on_the_primary(rig,
                                                                               tmp_path):
    from badge_console.tui.views.feed import FeedView
    from test_tui_feed import open_feed, shown_users, status_text
    from test_tui_support import wait_for

    states: list[str] = []  # every state the view was told of

    def record(message) -> None:
        if isinstance(message, FeedView.StateChanged):
            states.append(message.state.kind)

    async def steps(pilot, app):
        view = await open_feed(pilot, app)
        assert "polling every 1 s (hot standby" in status_text(view, "#feed-state")
        log_in(rig.primary, 150)
        await wait_for(pilot, lambda: shown_users(view) == [150], "user 150's award")
        assert "reconnecting" not in states
    on_replica_console(rig, tmp_path, steps, record)


def test_install_view_on_the_replica_refuses_writes_at_once_and_previews(rig, tmp_path):
    from test_tui_install import _open, _press_without_question, _text
    from test_tui_support import settle

    async def steps(pilot, app):
        await _open(pilot, app)
        for key, what in (("i", "install"), ("u", "uninstall"), ("b", "backfill")):
            await _press_without_question(
                pilot, app, key,
                f"replica-db is a hot standby (read-only); run {what} on the primary.")
        await pilot.press("v")
        await settle(pilot, app)
        assert "nothing was written" in _text(app, "#install-status")
    on_replica_console(rig, tmp_path, steps)
