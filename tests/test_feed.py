"""The live feed: `badge-console watch` as a real subprocess, the AwardListener, demo traffic.

Every wait has a timeout; a line that never comes fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import psycopg
import pytest

from badge_console.core.feed import AwardListener
from badge_console.core.traffic import DemoTraffic

from conftest import make_demo
from helpers import DEMO_BADGES, install_badges, run
from test_privileges import roles  # noqa: F401 - a fixture

WAIT = 10.0  # seconds any single expected event may take
CLI = [sys.executable, "-m", "badge_console.cli"]


class Watch:
    """`badge-console watch --json` in a subprocess; stdout and stderr read by threads."""

    def __init__(self, dsn: str, *extra: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([*CLI, "watch", "--json", "--dsn", dsn, *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.errors: queue.Queue = queue.Queue()
        self.stderr_text: list[str] = []
        for stream, q in ((self.proc.stdout, self.lines), (self.proc.stderr, self.errors)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    def _pump(self, stream, q) -> None:
        for line in stream:
            q.put(line.rstrip("\n"))

    def wait_stderr(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.errors.get(timeout=left)
            except queue.Empty:
                break
            self.stderr_text.append(line)
            if text in line:
                return line
        pytest.fail(f"watch never said {text!r}; stderr so far: {self.stderr_text}")

    def awards_until(self, done, timeout: float = WAIT) -> list[dict]:
        """Award lines read until done(lines) is true."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while not done(got):
            left = deadline - time.monotonic()
            try:
                got.append(json.loads(self.lines.get(timeout=max(left, 0.001))))
            except queue.Empty:
                pytest.fail(f"watch printed only {got} within {timeout}s")
        return got

    def quiet_for(self, seconds: float) -> list[dict]:
        """Whatever else arrives within `seconds` (should usually be nothing)."""
        extra, deadline = [], time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                extra.append(json.loads(self.lines.get(timeout=left)))
            except queue.Empty:
                break
        return extra

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail("watch did not stop on Ctrl-C")
        time.sleep(0.05)
        while not self.errors.empty():
            self.stderr_text.append(self.errors.get())
        return code, "\n".join(self.stderr_text)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=WAIT)


@pytest.fixture
def installed(demo):
    install_badges(demo, DEMO_BADGES)
    return demo


@pytest.fixture
def watch():
    started: list[Watch] = []

    def start(dsn: str, *extra: str) -> Watch:
        w = Watch(dsn, *extra)
        started.append(w)
        w.wait_stderr("Watching channel badge_awarded")
        return w

    yield start
    for w in started:
        w.close()


def log_in(dsn: str, *users: int) -> None:
    """Pionner for each of these users: moved back two years, then an update fires."""
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE auth_user SET date_joined = now() - interval '2 years',"
                     " last_login = now() WHERE id = ANY(%s)", (list(users),))


def users_of(lines) -> list[int]:
    return [line["user_id"] for line in lines]


def test_award_written_elsewhere_appears_as_one_json_line_and_ctrl_c_exits_0(installed, watch):
    w = watch(installed)
    log_in(installed, 7)
    [line] = w.awards_until(lambda got: len(got) == 1)
    assert set(line) == {"id", "user_id", "code", "name", "awarded_at", "table", "op",
                         "event", "event_id", "at"}
    assert (line["user_id"], line["code"], line["name"], line["table"], line["op"],
            line["event"]) == (7, "pionner", "Pionner", "public.auth_user", "update", "award")
    assert isinstance(line["id"], int) and isinstance(line["event_id"], int)
    assert line["awarded_at"] and line["at"]
    code, stderr = w.interrupt()
    assert code == 0
    assert "Traceback" not in stderr


def test_rolled_back_write_never_appears(installed, watch):
    w = watch(installed)
    with psycopg.connect(installed) as conn:
        conn.execute("UPDATE auth_user SET date_joined = now() - interval '2 years'"
                     " WHERE id = 3")
        conn.rollback()
    log_in(installed, 4)  # committed afterwards: once it shows, the rollback had its chance
    got = w.awards_until(lambda got: 4 in users_of(got))
    assert users_of(got + w.quiet_for(0.5)) == [4]


def test_since_prints_existing_awards_first(installed, watch):
    log_in(installed, 1)
    log_in(installed, 2)
    with psycopg.connect(installed) as conn:
        first = conn.execute("SELECT e.id FROM badge_console.events AS e JOIN badges_badge AS a"
                             " ON a.id = e.award_id WHERE a.user_id = 1").fetchone()[0]
    w = watch(installed, "--since", str(first))  # strictly above: user 1's award is skipped
    got = w.awards_until(lambda got: len(got) == 1)
    assert users_of(got) == [2]  # read back from the events table, as it was notified
    assert (got[0]["event"], got[0]["op"], got[0]["table"]) == ("award", "update",
                                                                "public.auth_user")
    log_in(installed, 3)
    assert users_of(w.awards_until(lambda got: len(got) == 1)) == [3]


def listener_pid(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'badge-console'").fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    pytest.fail("no listening backend found")


def test_terminated_backend_reconnects_and_catches_up_without_duplicates(installed, watch):
    w = watch(installed)
    log_in(installed, 10)
    assert users_of(w.awards_until(lambda got: len(got) == 1)) == [10]
    pid = listener_pid(installed)
    with psycopg.connect(installed, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    log_in(installed, 11)  # while the listener is down or reconnecting
    log_in(installed, 12, 13)
    w.wait_stderr("Reconnected")
    log_in(installed, 14)
    got = w.awards_until(lambda got: 14 in users_of(got))
    got += w.quiet_for(0.5)
    assert sorted(users_of(got)) == [11, 12, 13, 14]
    assert len({line["id"] for line in got}) == len(got)


@pytest.mark.parametrize("poll", [None, 0.05], ids=["listen", "poll"])
def test_an_award_that_committed_out_of_id_order_is_delivered_once(installed, poll):
    """Ids are taken at insert, not commit: a lower id may commit after a higher one.
    LISTEN: its notification goes to nobody while the listener reconnects, only the
    catch-up finds it. Polling: every poll also asks for the ids below the highest seen."""
    seen, states = [], []
    listener = AwardListener(installed, seen.append, states.append, poll=poll)
    listener.start()
    try:
        deadline = time.monotonic() + WAIT
        while not any(s.kind == "caught_up" for s in states):
            assert time.monotonic() < deadline, states
            time.sleep(0.02)
        assert ("polling every 0.05 s" if poll else "listening on") in states[-1].detail
        slow = psycopg.connect(installed)
        slow.execute("UPDATE auth_user SET date_joined = now() - interval '2 years'"
                     " WHERE id = 20")  # award id n taken, not committed
        log_in(installed, 21)  # award id n+1 committed and delivered
        while not [a for a in seen if a.user_id == 21]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        if poll is None:
            with psycopg.connect(installed, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE application_name = 'badge-console'"
                             " AND datname = current_database()")
        slow.commit()
        slow.close()
        while not [a for a in seen if a.user_id == 20]:
            assert time.monotonic() < deadline, (seen, states)
            time.sleep(0.02)
        time.sleep(0.3)  # several more polls (or notifications) bring no duplicate
    finally:
        listener.stop()
    assert sorted(a.user_id for a in seen) == [20, 21]
    assert any(s.kind == "reconnecting" for s in states) == (poll is None)


def test_server_restart_reconnects_and_shows_awards_made_meanwhile(tmp_path):
    """Stop the server; start it on another socket (the listener cannot reach it) and award;
    restart it where it was: the listener reconnects and catches those awards up."""
    from psycopg.conninfo import make_conninfo
    from pgserver import pg_ctl

    from badge_console.core.demo import start_embedded_server

    server = start_embedded_server(tmp_path / "pgdata", cleanup_mode="delete")
    socket_dir = server.get_postmaster_info().socket_dir
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    hidden.chmod(0o777)  # the server may run as another system user

    def restart(sockets) -> None:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user,
               timeout=30)
        pg_ctl(["-w", "-o", '-h ""', "-o", f"-k {sockets}", "-l", str(server.log), "start"],
               pgdata=server.pgdata, user=server.system_user, timeout=30)

    w = None
    try:
        dsn = server.get_uri()  # a private, throw-away server: its own postgres database
        make_demo(dsn)
        install_badges(dsn, DEMO_BADGES)
        w = Watch(dsn)
        w.wait_stderr("Watching channel")
        log_in(dsn, 30)
        assert users_of(w.awards_until(lambda got: len(got) == 1)) == [30]
        restart(hidden)
        w.wait_stderr("Connection lost")
        elsewhere = make_conninfo(dsn, host=str(hidden))
        log_in(elsewhere, 31)
        log_in(elsewhere, 32, 33)
        restart(socket_dir)
        assert "caught up 3 award(s)" in w.wait_stderr("Reconnected", timeout=15)
        log_in(dsn, 34)
        got = w.awards_until(lambda got: 34 in users_of(got))
        got += w.quiet_for(0.5)
        assert sorted(users_of(got)) == [31, 32, 33, 34]
        assert len({line["id"] for line in got}) == len(got)
        assert [line["op"] for line in got] == ["update"] * 4  # caught up from the events
        code, stderr = w.interrupt()
        assert code == 0 and "Traceback" not in stderr
    finally:
        if w is not None:
            w.close()
        server.cleanup()


def test_watch_on_unreachable_database_is_one_sentence_exit_3(cli):
    code, out, err = cli("watch", "--dsn", "postgresql://nobody:s3cret@127.0.0.1:1/nowhere")
    assert code == 3
    assert err.count("\n") == 1 and "Cannot connect" in err and "s3cret" not in err


def test_demo_traffic_refuses_a_database_that_is_not_the_embedded_demo(cli, installed):
    code, out, err = cli("demo-traffic", "--dsn", installed, "--seconds", "1")
    assert code == 1
    assert "only runs on the embedded demo database" in err
    code, out, err = cli("demo-traffic", "--dsn", installed, "--read-only")
    assert code == 1 and "--read-only" in err


def test_demo_traffic_keeps_awarding_new_users(installed):
    with psycopg.connect(installed, autocommit=True) as conn:
        before = conn.execute("SELECT max(id) FROM auth_user").fetchone()[0]
        traffic = DemoTraffic(conn, random.Random(7))
        kinds = Counter(traffic.step() for _ in range(1500))
        codes = dict(conn.execute(
            "SELECT code, count(*) FROM badges_badge WHERE user_id > %s GROUP BY code",
            (before,)).fetchall())
        deleted = conn.execute("SELECT %s - count(*) FROM dummy_sketch",
                               (kinds["sketch"],)).fetchone()[0]
    assert set(kinds) == {"signup", "login", "sketch", "views", "delete"}
    assert deleted > 0
    # users created by the traffic itself earn every kind of badge
    assert {"collector", "star", "pionner", "spring_cleaning"} <= set(codes), codes


def test_django_award_table_and_custom_channel_come_from_the_installed_settings(demo):
    run(demo, "CREATE TABLE legacy_awards (id serial PRIMARY KEY, name varchar(255) NOT NULL,"
              " code varchar(100) NOT NULL, user_id integer NOT NULL, UNIQUE (user_id, name))",
        "INSERT INTO legacy_awards (name, code, user_id) VALUES ('Old one', 'old', 1)")
    install_badges(demo, DEMO_BADGES, award_table="legacy_awards", channel="my_awards")
    w = Watch(demo, "--since", "0")  # no badge.json: channel and table as installed
    try:
        assert "channel my_awards" in w.wait_stderr("Watching channel")
        [old] = w.awards_until(lambda got: len(got) == 1)
        assert (old["code"], old["awarded_at"], old["table"], old["op"]) == ("old", None, None,
                                                                              None)
        log_in(demo, 5)
        [new] = w.awards_until(lambda got: len(got) == 1)
        assert (new["user_id"], new["code"], new["op"]) == (5, "pionner", "update")
        assert new["awarded_at"]  # the trigger stamps now() when the table has no column
    finally:
        w.close()


def test_watch_poll_says_so_and_prints_every_award(installed):
    w = Watch(installed, "--poll", "0.2")
    try:
        assert "polling every 0.2 s." in w.wait_stderr("Watching awards on")
        log_in(installed, 42)
        log_in(installed, 43, 44)
        got = w.awards_until(lambda got: len(got) >= 3)
        got += w.quiet_for(0.5)
        assert sorted(users_of(got)) == [42, 43, 44]
        # read from the events table, which keeps each award's operation and event id
        assert {(line["event"], line["op"]) for line in got} == {("award", "update")}
        assert all(line["event_id"] for line in got)
        assert w.interrupt()[0] == 0
    finally:
        w.close()


def test_watch_poll_needs_a_positive_number_of_seconds(cli):
    code, out, err = cli("watch", "--poll", "0", "--dsn", "postgresql://x@127.0.0.1:1/x")
    assert code == 2 and "--poll" in err and err.count("\n") == 1


def test_a_feed_the_server_refuses_stops_with_the_reason_instead_of_retrying(roles, dsn):
    """The application's role may not read the award table: that would fail on every
    reconnect, so the feed stops and says why (the Live feed shows it)."""
    make_demo(dsn)
    install_badges(dsn, DEMO_BADGES)
    states = []
    listener = AwardListener(roles["app"], lambda award: None, states.append)
    listener.start()
    deadline = time.monotonic() + WAIT
    while not [s for s in states if s.kind == "stopped"]:
        assert time.monotonic() < deadline, states
        time.sleep(0.02)
    listener.stop()
    assert states[-1].detail.startswith("permission denied for ")
    assert not any(s.kind == "reconnecting" for s in states)
