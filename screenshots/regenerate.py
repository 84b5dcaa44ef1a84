"""Regenerate every SVG in screenshots/ with one command:

    python screenshots/regenerate.py [--dsn ADMIN_DSN]

Without --dsn an embedded PostgreSQL is started in a temporary folder. A database with
the fixed demo rows and the demo badges installed is created and dropped again; the
app runs headless at 120x36 (and two views at 80x24; run_test + save_screenshot), times
shown in UTC.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from badge_console.core.awards import grant_award, revoke_award  # noqa: E402
from badge_console.core.definitions import load_badge_file  # noqa: E402
from badge_console.core.demo import (create_demo_schema, scratch_database,  # noqa: E402
                                      scratch_server)
from badge_console.core.install import install  # noqa: E402

SIZE = (120, 36)


async def settle(pilot, app) -> None:
    await pilot.pause()
    for _ in range(200):
        if not [w for w in app.workers if w.is_running and w.group != "app-reconnect"]:
            break
        await asyncio.sleep(0.05)
    await pilot.pause()
    await pilot.pause()


async def shoot(dsn: str, badges: Path, name: str, steps, size=SIZE) -> None:
    from textual.widgets import Input, TextArea

    from badge_console.tui.app import BadgeConsoleApp

    app = BadgeConsoleApp(dsn, badges, "badge_demo (embedded)")
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        for step in steps:
            await step(pilot, app)
            await settle(pilot, app)
        for widget in [*app.query(Input), *app.query(TextArea)]:
            widget.cursor_blink = False
        app.query_one("StatusHeader").badges_path = "badge.json"
        await pilot.pause()
        app.save_screenshot(filename=f"{name}.svg", path=str(HERE))
    print(f"screenshots/{name}.svg")


def press(*keys):
    async def step(pilot, app):
        await pilot.press(*keys)
    return step


async def open_sketches(pilot, app):
    app.query_one("TablesView").open_table("public", "dummy_sketch")


async def filter_sketches(pilot, app):
    app.query_one("#filter").value = "user_id = 8 AND hit_views > 100"
    app.query_one("#filter").focus()
    await pilot.press("enter")


async def pick_collector(pilot, app):
    app.query_one("#badge-list").move_cursor(row=1)


async def break_condition(pilot, app):
    app.query_one("#f-condition").text = \
        "count(id) >= from dummy_sketch where user_id = NEW.user_id"
    await pilot.press("ctrl+r")


async def dry_run_collector(pilot, app):
    """Collector's threshold lowered in the editor (not saved), dry-run as the draft."""
    await pilot.press("2")
    await settle(pilot, app)
    app.query_one("#badge-list").move_cursor(row=1)
    await pilot.pause()
    app.query_one("#f-condition").text = \
        "count(id) >= 3 from dummy_sketch where user_id = NEW.user_id"
    await pilot.press("3")
    await settle(pilot, app)
    app.query_one("#dr-badge").value = "__draft__"
    await pilot.press("ctrl+g")


async def stream_awards(pilot, app):
    """Live feed: real awards written by another connection while the view listens, then a
    grant and a revocation by hand."""
    with psycopg.connect(app.db.dsn, autocommit=True) as conn:
        conn.execute("UPDATE auth_user SET date_joined = now() - interval '2 years',"
                     " last_login = now() WHERE id BETWEEN 3 AND 8")
        conn.execute("INSERT INTO dummy_sketch (user_id, title)"
                     " SELECT 11, 'Sketch ' || i FROM generate_series(1, 5) AS i")
        conn.execute("UPDATE dummy_sketch SET hit_views = 1500"
                     " WHERE id = (SELECT min(id) FROM dummy_sketch)")
        conn.execute("DELETE FROM dummy_sketch WHERE id = (SELECT max(id) FROM dummy_sketch)"
                     " AND hit_views = 0")
        grant_award(conn, None, "star", "20")  # by hand: not earned, so also unqualified
        revoke_award(conn, None, "pionner", "4")
    view = app.query_one("FeedView")
    for _ in range(100):
        if view.total >= 11:
            break
        await asyncio.sleep(0.05)
    await pilot.pause(0.3)


def edited_badges(badges: Path) -> Path:
    """A saved badge.json that differs from what is installed: Collector changed, Veteran
    new, so the Install view has a plan with SQL to show."""
    import json

    doc = json.loads(badges.read_text())
    collector = doc["badges"][1]
    collector["condition"] = collector["condition"].replace(">= 5", ">= 4")
    doc["badges"].append(dict(collector, code="veteran", name="Veteran", condition=(
        "count(id) >= 8 from dummy_sketch where user_id = NEW.user_id")))
    path = badges.with_name("badge-edited.json")
    path.write_text(json.dumps(doc, indent=2))
    return path


async def show_install_plan(pilot, app):
    await pilot.press("v")  # backfill preview, read only
    app.query_one("#plan-table").move_cursor(row=1)  # SQL scrolled to Collector's


async def main(admin_dsn: str | None) -> None:
    os.environ["PGTZ"] = "UTC"
    with scratch_server(admin_dsn, "bc-shots-") as admin, \
            scratch_database(admin, "bc_screens") as dsn, \
            tempfile.TemporaryDirectory(prefix="bc-shots-") as tmp:
        with psycopg.connect(dsn, autocommit=True) as conn:
            with conn.transaction():
                create_demo_schema(conn)
            install(conn, load_badge_file(ROOT / "badge.json"))
            conn.execute("ANALYZE")
        badges = Path(tmp) / "badge.json"
        shutil.copy(ROOT / "badge.json", badges)
        await shoot(dsn, badges, "tables", [])
        await shoot(dsn, badges, "tables-grid", [open_sketches, press("n")])
        await shoot(dsn, badges, "tables-last-page", [open_sketches, press("G")])
        await shoot(dsn, badges, "tables-filter", [open_sketches, filter_sketches])
        await shoot(dsn, badges, "badges", [press("2")])
        await shoot(dsn, badges, "badges-editor-error",
                    [press("2"), pick_collector, break_condition])
        await shoot(dsn, badges, "dryrun", [dry_run_collector])
        await shoot(dsn, edited_badges(badges), "install", [press("4"), show_install_plan])
        await shoot(dsn, badges, "feed", [press("5"), stream_awards])
        await shoot(dsn, badges, "awards", [press("6")])  # the awards the feed shot made
        await shoot(dsn, badges, "awards-unqualified", [press("6"), press("u")])
        # the smallest terminal every view must work in
        await shoot(dsn, badges, "dryrun-80x24", [dry_run_collector], size=(80, 24))
        await shoot(dsn, badges, "badges-80x24", [press("2")], size=(80, 24))
        await shoot(dsn, badges, "awards-80x24", [press("6")], size=(80, 24))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", help="admin DSN of a server to use (default: embedded)")
    asyncio.run(main(parser.parse_args().dsn))
