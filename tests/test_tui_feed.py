"""The Live feed view on real PostgreSQL: awards written by another connection stream in
with their columns, counts and rate; filter, pause, clear; a killed listener backend
reconnects and catches up with no award missing or doubled; a flood of 3,000 awards in
one statement leaves the app responsive and the rows bounded. Every wait has a timeout."""

from __future__ import annotations

import asyncio
import time
from datetime import timezone

import psycopg
import pytest

from badge_console.core.feed import Award
from badge_console.tui.views import feed as feed_module
from badge_console.tui.views.feed import FeedView
from badge_console.tui.widgets.feed_log import AwardLog, award_line
from badge_console.tui.widgets.feed_stats import AwardRate
from test_tui_operator import _text, _view
from test_tui_support import (SIZE, WAIT, badges_copy, console_db, make_app,  # noqa: F401
                              mask_header, settle, sync, wait_for)



async def open_feed(pilot, app) -> FeedView:
    await settle(pilot, app)
    await pilot.press("5")
    await settle(pilot, app)
    view = app.query_one(FeedView)
    await wait_for(pilot, lambda: view.state.kind == "caught_up", "the first catch-up")
    return view


def write(dsn: str, statement: str, params=None) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement, params)


def log_in(dsn: str, *users: int) -> None:
    """Pionner for each user: joined two years ago, then an UPDATE fires the trigger."""
    write(dsn, "UPDATE auth_user SET date_joined = now() - interval '2 years',"
               " last_login = now() WHERE id = ANY(%s)", (list(users),))


def five_sketches(dsn: str, user: int) -> None:
    """Collector for this user (five sketches inserted in one statement)."""
    write(dsn, "INSERT INTO dummy_sketch (user_id, title)"
               " SELECT %s, 'feed test' FROM generate_series(1, 5)", (user,))


def shown_users(view: FeedView) -> list:
    return [a.user_id for a in view.query_one(AwardLog).rows]


def status_text(view: FeedView, widget: str = "#feed-status") -> str:
    return str(view.query_one(widget).render())


@sync
async def test_award_written_elsewhere_appears_with_its_columns_and_counts(make_app,
                                                                           console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        log_in(console_db, 3)
        await wait_for(pilot, lambda: shown_users(view) == [3], "user 3's award")
        award = view.query_one(AwardLog).rows[0]
        assert (award.code, award.table, award.op) == ("pionner", "public.auth_user", "update")
        line = str(award_line(award))
        assert "Pionner" in line and "auth_user" in line and "update" in line
        assert f"#{award.id}" in line and line.split()[2] == "3"
        log_in(console_db, 4, 5)
        five_sketches(console_db, 7)
        await wait_for(pilot, lambda: view.total == 4, "four awards")
        assert view.counts == {"pionner": 3, "collector": 1}
        counts = status_text(view, "#feed-counts")
        assert "Pionner" in counts and "Collector" in counts
        assert shown_users(view)[0] == 7  # newest on top
        assert view.rate.peak >= 1
        assert "4 award(s) since opened" in status_text(view)


@sync
async def test_filter_by_badge_or_user_hides_the_others(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        log_in(console_db, 3, 4)
        five_sketches(console_db, 7)
        await wait_for(pilot, lambda: len(shown_users(view)) == 3, "three awards")
        await pilot.press("slash")
        await pilot.press(*"collector")
        await pilot.pause()
        assert shown_users(view) == [7]
        view.query_one("#feed-filter").value = "4"
        await pilot.pause()
        assert shown_users(view) == [4]
        log_in(console_db, 5)  # arrives while filtered: hidden, yet counted
        await wait_for(pilot, lambda: view.total == 4, "the fourth award")
        assert shown_users(view) == [4] and view.counts["pionner"] == 3
        view.query_one("#feed-filter").value = "pionner 5"
        await pilot.pause()
        assert shown_users(view) == [5]
        view.query_one("#feed-filter").value = ""
        await pilot.pause()
        assert sorted(shown_users(view)) == [3, 4, 5, 7]


@sync
async def test_pause_keeps_counting_and_resume_shows_what_arrived(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        log_in(console_db, 3)
        await wait_for(pilot, lambda: shown_users(view) == [3], "user 3's award")
        await pilot.press("space")
        assert view.paused
        log_in(console_db, 4, 5)
        await wait_for(pilot, lambda: view.total == 3, "counting while paused")
        await pilot.pause(0.3)
        assert shown_users(view) == [3]
        assert "PAUSED" in status_text(view) and "2 new since" in status_text(view)
        await pilot.press("space")
        assert not view.paused
        assert sorted(shown_users(view)) == [3, 4, 5]
        assert "PAUSED" not in status_text(view)


@sync
async def test_clear_empties_rows_and_counts(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        log_in(console_db, 3, 4)
        await wait_for(pilot, lambda: len(shown_users(view)) == 2, "two awards")
        await pilot.press("c")
        assert shown_users(view) == [] and view.total == 0 and not view.counts
        assert "none yet" in status_text(view, "#feed-counts")
        log_in(console_db, 5)
        await wait_for(pilot, lambda: shown_users(view) == [5], "an award after clear")
        assert view.counts == {"pionner": 1}


def listener_backend(dsn: str) -> int:
    """The backend that LISTENs: its last statement was the catch-up (or LISTEN)."""
    with psycopg.connect(dsn) as conn:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = 'badge-console' AND pid <> pg_backend_pid()"
                " AND (query LIKE 'LISTEN%%' OR query LIKE '%%json_build_object%%')"
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
    pytest.fail("no listening backend found")


@sync
async def test_killed_backend_reconnects_and_the_award_made_meanwhile_appears_once(
        make_app, console_db):
    app = make_app()
    states: list[str] = []  # every state the view was told of, oldest first

    def record(message) -> None:
        if isinstance(message, FeedView.StateChanged):
            states.append(message.state.kind)

    async with app.run_test(size=SIZE, message_hook=record) as pilot:
        view = await open_feed(pilot, app)
        log_in(console_db, 10)
        await wait_for(pilot, lambda: shown_users(view) == [10], "user 10's award")
        pid = listener_backend(console_db)
        write(console_db, "SELECT pg_terminate_backend(%s)", (pid,))
        log_in(console_db, 11)  # while the listener is down or reconnecting
        await wait_for(pilot, lambda: "reconnecting" in states, "the reconnecting state")
        await wait_for(pilot, lambda: "caught_up" in states[states.index("reconnecting"):],
                       "caught up after the reconnect")
        assert "caught up" in status_text(view, "#feed-state")
        log_in(console_db, 12)
        await wait_for(pilot, lambda: 12 in shown_users(view), "user 12's award")
        await pilot.pause(0.5)
        assert sorted(shown_users(view)) == [10, 11, 12]
        ids = [a.id for a in view.query_one(AwardLog).rows]
        assert len(set(ids)) == len(ids) == view.total == 3


def change(dsn: str, code: str, user: str, grant: bool):
    from badge_console.core.awards import grant_award, revoke_award

    with psycopg.connect(dsn) as conn:
        return (grant_award if grant else revoke_award)(conn, None, code, user)


@sync
async def test_grants_and_revocations_are_marked_counted_apart_and_caught_up(make_app,
                                                                            console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        log_in(console_db, 10, 11)
        change(console_db, "star", "12", grant=True)
        change(console_db, "pionner", "10", grant=False)
        await wait_for(pilot, lambda: view.total == 4, "two awards, a grant and a revoke")
        rows = view.query_one(AwardLog).rows
        assert [(a.event, a.user_id) for a in rows][:2] == [("revoke", 10), ("grant", 12)]
        revoked, granted = (award_line(a) for a in list(rows)[:2])
        assert "− revoked" in str(revoked) and "+ granted" in str(granted)
        assert any("red" in str(span.style) for span in revoked.spans)
        assert any("green" in str(span.style) for span in granted.spans)
        assert view.events == {"award": 2, "grant": 1, "revoke": 1}
        assert (view.counts["pionner"], view.revoked["pionner"]) == (2, 1)
        assert "2 award(s), 1 granted, 1 revoked since opened" in status_text(view)
        assert "−1" in status_text(view, "#feed-counts")
        pid = listener_backend(console_db)
        write(console_db, "SELECT pg_terminate_backend(%s)", (pid,))
        change(console_db, "pionner", "11", grant=False)  # while the listener is down
        await wait_for(pilot, lambda: view.events["revoke"] == 2, "the missed revocation")
        assert [(a.event, a.user_id) for a in rows][0] == ("revoke", 11)
        await pilot.pause(0.5)
        assert view.total == 5  # nothing delivered twice


@sync
async def test_a_burst_of_3000_awards_keeps_the_app_responsive_and_rows_bounded(
        make_app, console_db):
    write(console_db, "INSERT INTO auth_user (username, date_joined)"
                      " SELECT 'burst_' || i, now() - interval '2 years'"
                      " FROM generate_series(1, 3000) AS i")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        burst = asyncio.create_task(asyncio.to_thread(
            write, console_db, "UPDATE auth_user SET last_login = now()"
                               " WHERE username LIKE 'burst_%'"))
        await wait_for(pilot, lambda: view.total > 0, "the first awards of the burst")
        for _ in range(2):  # key presses are handled while awards pour in
            started = time.monotonic()
            paused = view.paused
            await pilot.press("space")
            await wait_for(pilot, lambda: view.paused != paused, "a key press", timeout=2.0)
            assert time.monotonic() - started < 2.0
        await asyncio.wait_for(burst, WAIT)
        await wait_for(pilot, lambda: view.total == 3000, "all 3,000 awards", timeout=30)
        rows = view.query_one(AwardLog).rows
        assert len(rows) == feed_module.CAPACITY == 1000
        assert len(view.kept) <= feed_module.CAPACITY
        assert view.counts == {"pionner": 3000}
        assert rows[0].id == max(a.id for a in rows)  # the newest kept, newest on top


def app_with(console_db, badges_copy, demo: bool, read_only: bool = False):
    """An app that records its notifications instead of showing them."""
    from badge_console.tui.app import BadgeConsoleApp

    app = BadgeConsoleApp(console_db, badges_copy, "demo-db", read_only=read_only, demo=demo)
    notes: list[str] = []
    app.notify = lambda message, **kwargs: notes.append(message)  # type: ignore
    return app, notes


@sync
async def test_no_demo_traffic_key_unless_on_the_embedded_demo(console_db, badges_copy):
    app, notes = app_with(console_db, badges_copy, demo=False)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Live feed: pause or resume" in titles and "Live feed: clear" in titles
        assert "Live feed: demo traffic" not in titles
        assert view.check_action("demo_traffic", ()) is False
        await pilot.press("t")  # no such key here
        await settle(pilot, app)
        assert view._traffic_stop is None and not notes


@sync
async def test_demo_traffic_refused_read_only(console_db, badges_copy):
    app, notes = app_with(console_db, badges_copy, demo=True, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        await pilot.press("t")
        await settle(pilot, app)
        assert notes == ["Refused under --read-only: demo traffic writes rows."]
        assert view._traffic_stop is None


@sync
async def test_demo_traffic_on_a_database_that_is_not_the_demo_is_refused_by_core(
        console_db, badges_copy):
    app, notes = app_with(console_db, badges_copy, demo=True)  # a test database, not the demo
    async with app.run_test(size=SIZE) as pilot:
        view = await open_feed(pilot, app)
        assert "Live feed: demo traffic" in [c.title for c in
                                             app.get_system_commands(app.screen)]
        await pilot.press("t")
        await settle(pilot, app)
        assert any("only runs on the embedded demo database" in n for n in notes), notes
        assert view._traffic_stop is None
        assert "only runs on the embedded demo" in status_text(view, "#feed-state")


FIXED = [Award(100 + i, user, code, name, f"2024-05-04T12:00:{i:02d}+00:00",
               table, op)
         for i, (user, code, name, table, op) in enumerate([
             (3, "pionner", "Pionner", "public.auth_user", "update"),
             (7, "collector", "Collector", "public.dummy_sketch", "insert"),
             (4, "pionner", "Pionner", "public.auth_user", "update"),
             (9, "star", "Star", "public.dummy_sketch", "update"),
             (12, "spring_cleaning", "Spring cleaning", "public.dummy_sketch", "delete"),
             (5, "pionner", "Pionner", "public.auth_user", None),
             (8, "collector", "Collector", "public.dummy_sketch", "insert"),
             (6, "pionner", "Pionner", "public.auth_user", "UPDATE")])] + [
    Award(108, 20, "star", "Star", "2024-05-04T12:00:08+00:00", None, "grant", "grant", 9,
          "2024-05-04T12:00:08+00:00"),
    Award(102, 4, "pionner", "Pionner", "2024-05-04T12:00:02+00:00", None, "revoke", "revoke",
          10, "2024-05-04T12:00:09+00:00")]


async def show_fixed_awards(pilot, app) -> None:
    """Fixed awards through the listener's own path (inbox, flush) at fixed clock times."""
    view = await open_feed(pilot, app)
    view.query_one(AwardLog).tz = timezone.utc
    view.rate = AwardRate()  # forget the real clock the timer already used
    for second, batch in enumerate((FIXED[:1], FIXED[1:2], [], FIXED[2:5], FIXED[5:])):
        for award in batch:
            view.inbox.put(award)
        view.clock = lambda t=1000.0 + second: t
        view.flush()
    view.clock = lambda: 1004.5
    await pilot.pause()


def test_snapshot_feed_view_with_awards(make_app, snap_compare):
    async def run_before(pilot) -> None:
        app = pilot.app
        await show_fixed_awards(pilot, app)
        app.query_one("#feed-filter").cursor_blink = False
        mask_header(app)
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


# ---- met by a new operator (issue 20) ----------------------------------------------------
def _write(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(statement)


@sync
async def test_feed_shows_awards_made_before_it_was_first_opened(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await _view(pilot, app, "2")  # the console is open, the feed not yet shown
        _write(console_db, "UPDATE auth_user SET date_joined = now() - interval '2 years',"
                           " last_login = now() WHERE id BETWEEN 3 AND 8")
        await pilot.pause(0.5)
        await _view(pilot, app, "5")
        view = app.query_one(FeedView)
        await wait_for(pilot, lambda: view.total >= 6, "the six Pionner awards")


@sync
async def test_feed_filter_matching_nothing_and_clear_say_so(make_app, console_db):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _view(pilot, app, "5")
        view = app.query_one(FeedView)
        await wait_for(pilot, lambda: view.state.kind == "caught_up", "the first catch-up")
        await pilot.press("slash")
        await pilot.press(*"nosuchbadge")
        _write(console_db, "UPDATE auth_user SET date_joined = now() - interval '2 years',"
                           " last_login = now() WHERE id BETWEEN 3 AND 5")
        await wait_for(pilot, lambda: view.total >= 3, "three awards")
        await pilot.pause(0.2)
        shown = view.query_one(AwardLog).render_line(0).text
        assert "Waiting" not in shown and "No award matches" in shown
        await pilot.press("escape")
        await pilot.press("c")
        await pilot.pause()
        assert "since cleared" in _text(app, "#feed-status")
