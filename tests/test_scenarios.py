"""The original package's own scenarios, in our words, plus what it got wrong."""

from __future__ import annotations

import json
import threading

import psycopg

from badge_console.core.install import install
from badge_console.core.definitions import parse_badge_file

from helpers import DEMO_BADGES, ROOT, awards, demo_badge, install_badges, install_file, run


def test_pionner_awarded_to_exactly_the_users_moved_a_year_back(demo):
    install_badges(demo, [demo_badge("pionner")])
    run(demo, "UPDATE auth_user SET date_joined = now() - interval '370 days' WHERE id <= 10")
    run(demo, "UPDATE auth_user SET last_login = now()")  # everyone updated, 10 qualify
    assert awards(demo) == [(i, "pionner") for i in range(1, 11)]


def test_collector_awarded_at_the_fifth_sketch(demo):
    install_badges(demo, [demo_badge("collector")])
    for _ in range(4):
        run(demo, "INSERT INTO dummy_sketch (user_id, title) "
                  "SELECT u, 'draft' FROM generate_series(1, 10) u")
    assert awards(demo) == []
    run(demo, "INSERT INTO dummy_sketch (user_id, title) "
              "SELECT u, 'draft' FROM generate_series(1, 10) u")
    assert awards(demo) == [(i, "collector") for i in range(1, 11)]


def test_star_awarded_when_a_sketch_reaches_1000_views(demo):
    run(demo, "INSERT INTO dummy_sketch (user_id, title) "
              "SELECT u, 'draft' FROM generate_series(1, 10) u")
    install_badges(demo, [demo_badge("star")])
    run(demo, "UPDATE dummy_sketch SET hit_views = 999")
    assert awards(demo) == []
    run(demo, "UPDATE dummy_sketch SET hit_views = 1000")
    assert awards(demo) == [(i, "star") for i in range(1, 11)]


def test_a_badge_without_triggers_awards_nobody_while_its_installed_neighbour_does(demo):
    install_badges(demo, [demo_badge("collector"), demo_badge("star", enabled=False)])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) "
              "SELECT u, 'x' FROM generate_series(1, 10) u, generate_series(1, 5)")
    run(demo, "UPDATE dummy_sketch SET hit_views = 5000")
    assert awards(demo) == [(i, "collector") for i in range(1, 11)]


def test_install_from_the_demo_file_awards_one_user_several_badges(demo):
    """The seed's 'already has ANY badge' bug: one user must be able to earn all of them."""
    install_file(demo, ROOT / "badge.json")
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 7, 'x' FROM generate_series(1, 5)")
    run(demo, "UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 7")
    run(demo, "UPDATE auth_user SET date_joined = now() - interval '2 years' WHERE id = 7")
    assert awards(demo) == [(7, "collector"), (7, "pionner"), (7, "star")]


def test_delete_badge_uses_old_and_awards(demo):
    install_badges(demo, [demo_badge("spring_cleaning")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (3, 'a', 0),"
              " (4, 'b', 10)")
    run(demo, "DELETE FROM dummy_sketch")
    assert awards(demo) == [(3, "spring_cleaning")]


def test_update_condition_comparing_old_and_new(demo):
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) "
              "SELECT u, 'x', 100 FROM generate_series(1, 4) u")
    install_badges(demo, [{"name": "Jump", "code": "jump", "trigger_condition": "update",
                           "trigger_table": "dummy_sketch", "user_field": "user_id",
                           "condition": "NEW.hit_views - OLD.hit_views >= 500"}])
    run(demo, "UPDATE dummy_sketch SET hit_views = hit_views + 600 WHERE user_id <= 2")
    run(demo, "UPDATE dummy_sketch SET hit_views = hit_views + 100 WHERE user_id > 2")
    assert awards(demo) == [(1, "jump"), (2, "jump")]


def test_old_and_new_on_a_table_without_primary_key_falls_back_to_row_triggers(demo):
    run(demo, "CREATE TABLE score (player int, points int)",
        "INSERT INTO score SELECT u, 0 FROM generate_series(1, 3) u")
    install_badges(demo, [{"name": "Climber", "code": "climber", "trigger_condition": "update",
                           "trigger_table": "score", "user_field": "player",
                           "condition": "NEW.points > OLD.points + 10"}])
    run(demo, "UPDATE score SET points = CASE player WHEN 2 THEN 50 ELSE 5 END")
    assert awards(demo) == [(2, "climber")]


def test_insert_and_update_list_installs_both(demo):
    install_badges(demo, [demo_badge("star", trigger_condition=["insert", "update"])])
    run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (5, 'viral', 2000)")
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (6, 'slow')")
    run(demo, "UPDATE dummy_sketch SET hit_views = 1500 WHERE user_id = 6")
    assert awards(demo) == [(5, "star"), (6, "star")]


def test_eight_concurrent_writers_one_user_one_award_one_notification(demo):
    install_badges(demo, [demo_badge("star")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT 9, 'x' FROM generate_series(1, 8)")
    with psycopg.connect(demo, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        barrier = threading.Barrier(8)
        errors = []

        def writer(n):
            try:
                with psycopg.connect(demo) as c:
                    barrier.wait(timeout=10)
                    c.execute("UPDATE dummy_sketch SET hit_views = 1000 WHERE id = %s", (n,))
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert errors == []
        received = [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    assert awards(demo) == [(9, "star")]
    assert [(p["user_id"], p["code"]) for p in received] == [(9, "star")]


def test_concurrent_writers_on_different_users_lose_no_award(demo):
    install_badges(demo, [demo_badge("star")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) SELECT u, 'x' FROM generate_series(1, 40) u")
    barrier = threading.Barrier(8)

    def writer(k):
        with psycopg.connect(demo) as c:
            barrier.wait(timeout=10)
            for uid in range(k, 41, 8):
                with c.transaction():
                    c.execute("UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = %s",
                              (uid,))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert awards(demo) == [(u, "star") for u in range(1, 41)]


def test_notification_payload_and_rollback(demo):
    install_badges(demo, [demo_badge("star")])
    run(demo, "INSERT INTO dummy_sketch (user_id, title) VALUES (1, 'a'), (2, 'b')")
    with psycopg.connect(demo, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        with psycopg.connect(demo) as writer:
            writer.execute("UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 1")
            writer.rollback()
            writer.execute("UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 2")
            writer.commit()
        received = [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    assert len(received) == 1
    payload = received[0]
    assert {k: payload[k] for k in ("user_id", "code", "name", "table", "op")} == {
        "user_id": 2, "code": "star", "name": "Star", "table": "public.dummy_sketch",
        "op": "update"}
    assert isinstance(payload["id"], int) and payload["awarded_at"]
    assert awards(demo) == [(2, "star")]


def test_django_made_award_table_is_used_unchanged(demo):
    run(demo, "CREATE TABLE badges_badge (id serial PRIMARY KEY, name varchar(255) NOT NULL,"
              " code varchar(100) NOT NULL, user_id integer NOT NULL REFERENCES auth_user,"
              " UNIQUE (user_id, name))")
    run(demo, "INSERT INTO badges_badge (name, code, user_id) VALUES ('Old one', 'old', 1)")
    install_badges(demo, [demo_badge("star"), demo_badge("collector")])
    with psycopg.connect(demo, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        run(demo, "INSERT INTO dummy_sketch (user_id, title, hit_views) "
                  "SELECT 1, 'x', 0 FROM generate_series(1, 5)")
        run(demo, "UPDATE dummy_sketch SET hit_views = 1000")
        received = [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    assert awards(demo) == [(1, "collector"), (1, "old"), (1, "star")]
    assert sorted(p["code"] for p in received) == ["collector", "star"]
    assert all(p["awarded_at"] for p in received)
    with psycopg.connect(demo) as conn:
        cols = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'badges_badge'::regclass"
            " AND attnum > 0 ORDER BY attnum")]
    assert cols == ["id", "name", "code", "user_id"]


def test_rolled_back_write_awards_and_notifies_nobody(demo):
    install_badges(demo, [demo_badge("collector")])
    with psycopg.connect(demo, autocommit=True) as listener:
        listener.execute("LISTEN badge_awarded")
        with psycopg.connect(demo) as conn:
            for user in (1, 2):  # the same write, rolled back for user 1, committed for 2
                conn.execute("INSERT INTO dummy_sketch (user_id, title) "
                             "SELECT %s, 'x' FROM generate_series(1, 5)", (user,))
                if user == 1:
                    conn.rollback()
                else:
                    conn.commit()
        received = [json.loads(n.payload) for n in listener.notifies(timeout=1.0)]
    assert awards(demo) == [(2, "collector")]
    assert [(p["user_id"], p["code"]) for p in received] == [(2, "collector")]


def test_seed_list_form_file_installs(demo, badge_file):
    path = badge_file(DEMO_BADGES[:2])
    install_file(demo, path)
    run(demo, "UPDATE auth_user SET date_joined = now() - interval '2 years' WHERE id = 1")
    assert awards(demo) == [(1, "pionner")]


def test_install_is_idempotent_and_plan_settles(demo):
    bf = parse_badge_file((ROOT / "badge.json").read_text())
    with psycopg.connect(demo) as conn:
        first = install(conn, bf)
        second = install(conn, bf)
    assert {i.action for i in first.items} == {"create"}
    assert {i.action for i in second.items} == {"unchanged"}
