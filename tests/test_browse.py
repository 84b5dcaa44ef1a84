"""Browsing engine: the tree, keyset paging both ways, sort with NULLs, filters read-only."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import psycopg
import pytest

from badge_console.core import browse
from badge_console.core.browse import Browser, FilterError, Order, check_filter
from badge_console.core.definitions import load_badge_file
from badge_console.core.errors import StatementTimeout
from badge_console.core.install import install
from conftest import ROOT, make_demo


def _walk_forward(browser, conn):
    page = browser.first(conn)
    rows = list(page.rows)
    while not page.at_end:
        page = browser.next(conn, page)
        rows += page.rows
    return rows, page


def _walk_backward(browser, conn):
    page = browser.last(conn)
    rows = list(page.rows)
    while not page.at_start:
        page = browser.previous(conn, page)
        rows = page.rows + rows
    return rows


@pytest.fixture
def demo_conn(dsn):
    make_demo(dsn, users=30, sketches=250)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE nokey (a int, b text)")
        conn.execute("INSERT INTO nokey SELECT i, CASE WHEN i % 3 = 0 THEN NULL ELSE 'v' || "
                     "lpad((i % 17)::text, 2, '0') END FROM generate_series(1, 230) i")
        # rows identical in every column, three of each: only ctid tells them apart
        conn.execute("INSERT INTO nokey SELECT n.* FROM nokey n, generate_series(1, 2) "
                     "WHERE a <= 20")
        conn.execute("CREATE VIEW sketch_titles AS SELECT id, title FROM dummy_sketch")
        conn.execute("ANALYZE")
        yield conn


def test_tree_lists_tables_views_estimates_and_badge_triggers(demo_conn):
    install(demo_conn, load_badge_file(ROOT / "badge.json"))
    entries = {e.name: e for e in browse.list_tables(demo_conn)}
    assert entries["dummy_sketch"].estimate == 250
    assert entries["sketch_titles"].kind == "v"
    assert len(entries["dummy_sketch"].badge_triggers) == 3
    assert entries["auth_user"].badge_triggers and not entries["nokey"].badge_triggers


@pytest.mark.parametrize("table,order", [
    ("dummy_sketch", Order()), ("dummy_sketch", Order("title", True)),
    ("dummy_sketch", Order("hit_views")), ("nokey", Order()), ("nokey", Order("b")),
    ("nokey", Order("b", True)), ("sketch_titles", Order()),
])
def test_paging_visits_every_row_once_forward_and_backward(demo_conn, table, order):
    info = browse.describe(demo_conn, "public", table)
    browser = Browser(info, order, page_size=40)
    forward, last = _walk_forward(browser, demo_conn)
    count = demo_conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    everything = Browser(info, order, page_size=count + 1).first(demo_conn).rows
    assert len(everything) == count
    assert Counter(forward) == Counter(everything)  # each row once, duplicates included
    assert _walk_backward(browser, demo_conn) == forward
    assert last.range_text == f"rows {count - len(last.rows) + 1}–{count} of {count}"
    if order.sort:
        column = info.column(order.sort)
        values = [r[info.columns.index(column)] for r in forward]
        non_null = [int(v) if column.type == "integer" else v for v in values if v != "NULL"]
        assert len(set(non_null)) > 1
        assert non_null == sorted(non_null, reverse=order.descending)


def test_paging_mode_follows_the_key(demo_conn):
    assert browse.describe(demo_conn, "public", "dummy_sketch").paging == "key"
    assert browse.describe(demo_conn, "public", "nokey").paging == "ctid"
    assert browse.describe(demo_conn, "public", "sketch_titles").paging == "offset"


def test_last_page_range_counts_from_the_end(demo_conn):
    browser = Browser(browse.describe(demo_conn, "public", "dummy_sketch"))
    page = browser.last(demo_conn)
    assert page.rows[-1][0] == "250"
    assert page.range_text == "rows ~151–250 of ~250"


@pytest.mark.parametrize("text", [
    "true; DROP TABLE dummy_sketch", "1=1 UNION SELECT 1", "true ORDER BY 1", "true LIMIT 1",
    "id >", "id = 1) OR (1=1", "true GROUP BY id",
])
def test_filters_that_are_not_one_expression_are_refused(text):
    with pytest.raises(FilterError) as err:
        check_filter(text)
    assert "\n" not in str(err.value)


def test_filter_is_reprinted_from_the_parse_tree():
    assert check_filter("  user_id=3 and title like 'S%' -- c") == \
        "user_id = 3 AND title LIKE 'S%'"
    assert check_filter("   ") is None


def test_filter_runs_read_only_and_database_errors_are_one_line(demo_conn):
    browser = Browser(browse.describe(demo_conn, "public", "dummy_sketch"))
    browser.set_filter("user_id = 3")
    page = browser.first(demo_conn)
    assert page.rows and all(r[1] == "3" for r in page.rows)
    for text, expected in [("nosuch > 1", "does not exist"),
                           ("nextval('dummy_sketch_id_seq') > 0", "read-only"),
                           ("(SELECT count(*) FROM (DELETE FROM auth_user RETURNING 1) d) > 0",
                            "")]:
        browser.set_filter(text) if expected else None
        if not expected:
            with pytest.raises(FilterError):
                browser.set_filter(text)
            continue
        with pytest.raises(FilterError, match=expected) as err:
            browser.first(demo_conn)
        assert "\n" not in str(err.value)
    assert demo_conn.execute("SELECT count(*) FROM auth_user").fetchone()[0] == 30


def test_slow_filter_stops_at_the_statement_timeout(demo_conn):
    browser = Browser(browse.describe(demo_conn, "public", "dummy_sketch"), timeout="200ms")
    browser.set_filter("pg_sleep(5) IS NOT NULL")
    with pytest.raises(StatementTimeout) as stopped:
        browser.first(demo_conn)
    assert stopped.value.timeout == "200ms"


def test_identifiers_are_quoted(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute('CREATE TABLE "We""ird Table" ("Sel ect" int PRIMARY KEY, "x; y" text)')
        conn.execute('INSERT INTO "We""ird Table" SELECT i, i::text FROM generate_series(1,5) i')
        browser = Browser(browse.describe(conn, "public", 'We"ird Table'), Order("x; y", True))
        assert [r[0] for r in _walk_forward(browser, conn)[0]] == ["5", "4", "3", "2", "1"]


def test_table_choices_name_tables_like_badge_json(demo_conn):
    demo_conn.execute("CREATE SCHEMA other; CREATE TABLE other.dummy_sketch (uid int)")
    choices = browse.table_choices(demo_conn)
    assert ("user_id", "integer") in choices["dummy_sketch"]
    assert choices["other.dummy_sketch"] == [("uid", "integer")]


def test_core_never_imports_textual():
    code = ("import sys, badge_console.core.browse, badge_console.tui.db; "
            "assert 'textual' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)



def test_filter_with_percent_signs_pages_forward(demo_conn):
    """'%' in a filter is SQL (LIKE, modulo), never a psycopg placeholder."""
    browser = Browser(browse.describe(demo_conn, "public", "dummy_sketch"), page_size=10)
    browser.set_filter("title LIKE 'Sketch 1%' AND id % 2 = 1")
    rows, _ = _walk_forward(browser, demo_conn)
    expected = demo_conn.execute("SELECT id FROM dummy_sketch WHERE title LIKE 'Sketch 1%'"
                                 " AND id % 2 = 1 ORDER BY id").fetchall()
    assert [int(r[0]) for r in rows] == [e[0] for e in expected]
    assert len(expected) > 10  # more than one page was walked
