"""Awards managed by hand: list, grant, revoke, revoke-unqualified, as events on the channel.

Every test runs the CLI in-process against a real database and asserts what an operator
sees: the award table, the notifications received by a LISTENing connection, the exit
code and the one sentence printed.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from conftest import make_demo
from helpers import DEMO_BADGES, awards, demo_badge, install_badges, run


@pytest.fixture
def installed(dsn, badge_file):
    """The demo schema with the demo badges installed; users 1-3 hold Star."""
    make_demo(dsn, users=20, sketches=0)
    install_badges(dsn, DEMO_BADGES)
    run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views)"
             " SELECT u, 'pop', 0 FROM generate_series(1, 3) AS u",
        "UPDATE dummy_sketch SET hit_views = 1000")
    return dsn, badge_file({"badges": DEMO_BADGES})


def notes(listener: psycopg.Connection) -> list[dict]:
    return [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]


def listen(dsn: str) -> psycopg.Connection:
    listener = psycopg.connect(dsn, autocommit=True)
    listener.execute("LISTEN badge_awarded")
    return listener


def test_grant_and_revoke_change_the_table_and_notify_one_event_each(installed, cli):
    dsn, path = installed
    with listen(dsn) as listener:
        code, out, err = cli("awards", "grant", "collector", "7", "--yes", "--dsn", dsn,
                             "--badges", path)
        assert code == 0, err
        assert "Granted Collector (collector) to user 7" in out
        assert ("7", "collector") in [(str(u), c) for u, c in awards(dsn, "collector")]
        [granted] = notes(listener)
        code, out, err = cli("awards", "revoke", "star", "2", "--yes", "--dsn", dsn,
                             "--badges", path)
        assert code == 0, err
        assert "Revoked Star (star) from user 2" in out
        [revoked] = notes(listener)
    assert (granted["event"], granted["user_id"], granted["code"], granted["name"],
            granted["op"]) == ("grant", 7, "collector", "Collector", "grant")
    assert granted["awarded_at"] and isinstance(granted["event_id"], int)
    assert (revoked["event"], revoked["user_id"], revoked["code"]) == ("revoke", 2, "star")
    assert revoked["event_id"] > granted["event_id"]
    assert awards(dsn, "star") == [(1, "star"), (3, "star")]
    with psycopg.connect(dsn) as conn:  # both are in the append-only history
        kinds = [r[0] for r in conn.execute(
            "SELECT event FROM badge_console.events ORDER BY id").fetchall()]
    assert kinds == ["award"] * 3 + ["grant", "revoke"]


@pytest.mark.parametrize("argv, sentence", [
    (("grant", "star", "1"), "User 1 already holds badge star; nothing was changed."),
    (("revoke", "collector", "1"), "User 1 does not hold badge collector; nothing was changed."),
    (("grant", "nosuch", "1"), "There is no badge nosuch in"),
    (("revoke", "nosuch", "1"), "There is no badge nosuch in"),
    (("grant", "star", "abc"), "'abc' cannot be a user id here: the award table's user_id is "
                               "integer."),
])
def test_grant_and_revoke_refusals_are_one_sentence_and_change_nothing(installed, cli, argv,
                                                                       sentence):
    dsn, path = installed
    before = awards(dsn)
    with listen(dsn) as listener:
        code, out, err = cli("awards", *argv, "--yes", "--dsn", dsn, "--badges", path)
        assert notes(listener) == []
    assert code == 1
    assert sentence in err and err.count("\n") == 1 and "Traceback" not in err
    assert awards(dsn) == before


def test_read_only_refuses_grant_and_revoke_and_asks_without_yes(installed, cli, monkeypatch):
    dsn, path = installed
    for action in ("grant", "revoke"):
        code, _, err = cli("awards", action, "star", "5", "--dsn", dsn, "--read-only")
        assert code == 1 and "Refused under --read-only" in err
    code, _, err = cli("awards", "revoke-unqualified", "--yes", "--dsn", dsn, "--badges", path,
                       "--read-only")
    assert code == 1 and "Refused under --read-only" in err
    for reading in (("list",), ("revoke-unqualified", "--dry-run")):  # reads still work
        code, out, err = cli("awards", *reading, "--dsn", dsn, "--badges", path, "--read-only")
        assert code == 0, err
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    code, _, err = cli("awards", "grant", "star", "5", "--dsn", dsn, "--badges", path)
    assert code == 2 and "--yes" in err
    assert awards(dsn, "star") == [(1, "star"), (2, "star"), (3, "star")]


def test_list_is_newest_first_keyset_paged_with_counts(installed, cli):
    dsn, path = installed
    for user in range(4, 10):  # Star for 4..9, one after the other
        run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (%s, 'more', 0)",
            "UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = %s", params=(user,))
    code, out, _ = cli("awards", "list", "--limit", "4", "--json", "--dsn", dsn,
                       "--badges", path)
    assert code == 0
    first = json.loads(out)
    assert [a["user_id"] for a in first["awards"]] == [9, 8, 7, 6]
    assert first["counts"] == [{"code": "star", "name": "Star", "holders": 9,
                                "first_at": first["counts"][0]["first_at"],
                                "last_at": first["counts"][0]["last_at"]}]
    code, out, _ = cli("awards", "list", "--limit", "4", "--json", "--before",
                       first["next_before"], "--dsn", dsn, "--badges", path)
    second = json.loads(out)
    assert [a["user_id"] for a in second["awards"]] == [5, 4, 3, 2]
    code, out, _ = cli("awards", "list", "--limit", "4", "--json", "--before",
                       second["next_before"], "--dsn", dsn, "--badges", path)
    assert [a["user_id"] for a in json.loads(out)["awards"]] == [1]
    assert json.loads(out)["next_before"] is None
    code, out, _ = cli("awards", "list", "--user", "3", "--dsn", dsn, "--badges", path)
    assert code == 0 and "1 award(s) shown." in out and "Star" in out


def test_django_award_table_lists_time_not_recorded_and_grants(demo, cli, badge_file):
    run(demo, "CREATE TABLE badges_badge (id serial PRIMARY KEY, name varchar(255) NOT NULL,"
              " code varchar(100) NOT NULL, user_id integer NOT NULL REFERENCES auth_user,"
              " UNIQUE (user_id, name))",
        "INSERT INTO badges_badge (name, code, user_id) VALUES ('Star', 'star', 1)")
    install_badges(demo, DEMO_BADGES)
    path = badge_file({"badges": DEMO_BADGES})
    code, out, err = cli("awards", "grant", "star", "2", "--yes", "--dsn", demo, "--badges", path)
    assert code == 0, err
    code, out, err = cli("awards", "grant", "star", "999", "--yes", "--dsn", demo,
                         "--badges", path)
    assert code == 1 and "There is no user 999 in public.auth_user." in err
    code, out, _ = cli("awards", "list", "--dsn", demo, "--badges", path)
    assert code == 0
    assert "null" not in out and "None" not in out
    assert out.count("time not recorded") == 4  # two awards, first and last of one badge
    code, out, _ = cli("awards", "revoke", "star", "1", "--yes", "--dsn", demo,
                       "--badges", path)
    assert code == 0 and awards(demo) == [(2, "star")]


def collector_at(threshold: int) -> dict:
    return demo_badge("collector", condition=f"count(id) >= {threshold} from dummy_sketch"
                                             " where user_id = NEW.user_id")


def test_revoke_unqualified_after_the_threshold_is_raised(dsn, badge_file, cli):
    """Collector was installed at 3 sketches (too low); the file now says 5. Users with 3
    or 4 sketches lose it, users with 5 or more keep it; the dry run changes nothing."""
    make_demo(dsn, users=40)
    install_badges(dsn, [collector_at(3)])
    # user u owns u % 8 sketches: holders at 3 are those with 3..7, at 5 those with 5..7
    run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views) SELECT u, 's', 0"
             " FROM generate_series(1, 40) AS u, generate_series(1, u % 8) AS n")
    held = {u for u, _ in awards(dsn)}
    assert held == {u for u in range(1, 41) if u % 8 >= 3}
    expected = sorted(u for u in held if u % 8 < 5)
    path = badge_file({"badges": [collector_at(5)]})
    with listen(dsn) as listener:
        code, out, err = cli("awards", "revoke-unqualified", "--dry-run", "--json",
                             "--dsn", dsn, "--badges", path)
        assert code == 0, err
        assert notes(listener) == []
        [item] = json.loads(out)["badges"]
        assert (item["holders"], item["unqualified"]) == (len(held), len(expected))
        assert item["sample"] == expected[:10]
        assert {u for u, _ in awards(dsn)} == held
        code, out, err = cli("awards", "revoke-unqualified", "collector", "--yes",
                             "--batch-size", "4", "--dsn", dsn, "--badges", path)
        assert code == 0, err
        got = notes(listener)
    assert f"{len(expected)} award(s) revoked" in out
    assert sorted(n["user_id"] for n in got) == expected
    assert {(n["event"], n["op"]) for n in got} == {("revoke", "unqualified")}
    assert {u for u, _ in awards(dsn)} == held - set(expected)


def test_revoke_unqualified_after_rows_are_deleted_and_for_time_based_badges(dsn, badge_file,
                                                                            cli):
    make_demo(dsn, users=10)
    install_badges(dsn, DEMO_BADGES)
    run(dsn, "INSERT INTO dummy_sketch (user_id, title, hit_views) SELECT u, 's', 0"
             " FROM generate_series(1, 4) AS u, generate_series(1, 5)",
        "UPDATE auth_user SET date_joined = now() - interval '2 years' WHERE id IN (1, 2)")
    assert awards(dsn) == [(1, "collector"), (1, "pionner"), (2, "collector"),
                           (2, "pionner"), (3, "collector"), (4, "collector")]
    run(dsn, "DELETE FROM dummy_sketch WHERE user_id = 3 AND id % 5 = 0",  # 4 left
        "ALTER TABLE auth_user DISABLE TRIGGER USER",  # user 2's date corrected quietly
        "UPDATE auth_user SET date_joined = now() WHERE id = 2",
        "ALTER TABLE auth_user ENABLE TRIGGER USER")
    path = badge_file({"badges": DEMO_BADGES})
    code, out, err = cli("awards", "revoke-unqualified", "--yes", "--dsn", dsn,
                         "--badges", path)
    assert code == 0, err
    # user 3 keeps Spring cleaning (the delete earned it): a delete badge is not re-checked
    assert awards(dsn) == [(1, "collector"), (1, "pionner"), (2, "collector"),
                           (3, "spring_cleaning"), (4, "collector")]
    assert "not applicable" in out


def _grant_and_revoke_are_shown(w, cli, dsn: str) -> int:
    """Grant Pionner to user 4 and revoke Star from user 1; `w` shows both, in order.
    Returns the last event id."""
    assert cli("awards", "grant", "pionner", "4", "--yes", "--dsn", dsn)[0] == 0
    assert cli("awards", "revoke", "star", "1", "--yes", "--dsn", dsn)[0] == 0
    got = w.awards_until(lambda got: len(got) == 2)
    assert [(g["event"], g["user_id"], g["code"]) for g in got] == [
        ("grant", 4, "pionner"), ("revoke", 1, "star")]
    return got[-1]["event_id"]


def test_watch_shows_grant_and_revoke_and_after_a_restart_with_since_the_missed_revoke(
        installed, cli):
    from test_feed import Watch

    dsn, path = installed
    w = Watch(dsn)
    try:
        w.wait_stderr("Watching channel")
        last = _grant_and_revoke_are_shown(w, cli, dsn)
    finally:
        w.proc.kill()  # killed, not interrupted: nothing is flushed or said goodbye
        w.proc.wait(timeout=10)
    assert cli("awards", "revoke", "star", "3", "--yes", "--dsn", dsn)[0] == 0  # missed
    w = Watch(dsn, "--since", str(last))
    try:
        [missed] = w.awards_until(lambda got: len(got) == 1)
        assert (missed["event"], missed["user_id"], missed["code"], missed["op"]) == (
            "revoke", 3, "star", "revoke")
        assert missed["event_id"] > last
        assert w.quiet_for(0.5) == []
    finally:
        w.close()


def test_polling_watch_shows_grant_and_revoke(installed, cli):
    """Polling (a standby, a transaction pooler, --poll) reads the events, not the award
    table: a revocation leaves no award row to find, yet it is shown."""
    from test_feed import Watch

    dsn, _ = installed
    w = Watch(dsn, "--poll", "0.2")
    try:
        w.wait_stderr("Watching awards on")
        _grant_and_revoke_are_shown(w, cli, dsn)
        assert w.quiet_for(0.5) == []
    finally:
        w.close()


def test_awards_without_an_action_is_a_usage_error_in_one_sentence(cli):
    code, out, err = cli("awards")
    assert code == 2 and err.count("\n") == 1 and "list, grant, revoke or revoke-unqualified" in err
