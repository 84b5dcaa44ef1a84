"""`validate` against the database costs round trips per table, not per badge, and says
exactly what it said when it cost one EXPLAIN (and a few catalog reads) per badge.

Statements are counted with a cursor factory on a real connection: every statement the
engine sends goes through a cursor, so the count does not depend on timing.
"""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from badge_console.core.definitions import parse_badge_file
from badge_console.core.resolve import validate_against_database
from conftest import make_demo

COMMENTS = """
CREATE TABLE dummy_comment (
    id bigserial PRIMARY KEY,
    author_id integer NOT NULL REFERENCES auth_user (id),
    body text NOT NULL DEFAULT '',
    likes integer NOT NULL DEFAULT 0
)
"""


@pytest.fixture
def three_tables(dsn):
    make_demo(dsn, users=5)
    with psycopg.connect(dsn) as conn:
        conn.execute(COMMENTS)
    return dsn


class CountingCursor(psycopg.Cursor):
    def execute(self, *args, **kwargs):
        self.connection.statements += 1
        return super().execute(*args, **kwargs)


def many_badges(count: int) -> list[dict]:
    """Badges spread over three tables: plain expressions, sub-selects, broken ones."""
    kinds = [
        ("count(id) >= {i} from dummy_sketch where user_id = NEW.user_id", "insert",
         "dummy_sketch", "user_id"),
        ("NEW.hit_views >= {i}", "update", "dummy_sketch", "user_id"),
        ("NEW.is_active and NEW.id > {i}", "update", "auth_user", "id"),
        ("length(NEW.body) > {i}", "insert", "dummy_comment", "author_id"),
        ("NEW.title > {i} + now()", "update", "dummy_sketch", "user_id"),  # type error
        ("NEW.likes = {i} and NEW.nope", "update", "dummy_comment", "author_id"),
    ]
    return [{"name": f"B{i}", "code": f"b{i}", "condition": cond.format(i=i),
             "trigger_condition": op, "trigger_table": table, "user_field": user}
            for i in range(count)
            for cond, op, table, user in [kinds[i % len(kinds)]]]


def statements_to_validate(dsn: str, count: int) -> int:
    bf = parse_badge_file(json.dumps({"badges": many_badges(count)}))
    with psycopg.connect(dsn, cursor_factory=CountingCursor) as conn:
        conn.statements = 0
        res = validate_against_database(conn, bf)
        assert len(res.targets) == count * 4 // 6 and len(res.problems) == count // 3
        return conn.statements


def test_validate_costs_statements_per_table_not_per_badge(three_tables):
    """A few catalog reads per table and for the file; the badges' EXPLAINs go in DO
    blocks of many (explain.BLOCK), pipelined: one round trip for all of them."""
    few = statements_to_validate(three_tables, 18)
    many = statements_to_validate(three_tables, 198)
    assert few <= 3 * 3 + 12
    assert (many - few) / (198 - 18) <= 1 / 20  # it was 4 statements more per badge


MIXED = [  # good and broken badges, each problem of a kind validate finds in the database
    {"name": "Collector", "code": "collector", "trigger_condition": "insert",
     "condition": "count(id) >= 5 from dummy_sketch where user_id = NEW.user_id",
     "trigger_table": "dummy_sketch", "user_field": "user_id"},
    {"name": "Ghost", "code": "ghost", "condition": "NEW.ghost_views > 3",
     "trigger_condition": "update", "trigger_table": "dummy_sketch", "user_field": "user_id"},
    {"name": "Typo", "code": "typo", "condition": "NEW.hit_views >>> 3",
     "trigger_condition": "update", "trigger_table": "dummy_sketch", "user_field": "user_id"},
    {"name": "Types", "code": "types", "condition": "NEW.title > 5",
     "trigger_condition": "update", "trigger_table": "dummy_sketch", "user_field": "user_id"},
    {"name": "Veteran", "code": "veteran", "trigger_condition": ["insert", "update"],
     "condition": "NEW.date_joined < now() - interval '1 year'",
     "trigger_table": "auth_user", "user_field": "id"},
    {"name": "Nowhere", "code": "nowhere", "condition": "NEW.x", "trigger_condition": "insert",
     "trigger_table": "no_such_table", "user_field": "user_id"},
    {"name": "Chatty", "code": "chatty", "condition": "length(NEW.body) > 100",
     "trigger_condition": "insert", "trigger_table": "dummy_comment", "user_field": "writer"},
    {"name": "Zero", "code": "zero", "condition": "NEW.likes > 1 / 0",
     "trigger_condition": "update", "trigger_table": "dummy_comment", "user_field": "author_id"},
    {"name": "Letters", "code": "letters", "trigger_condition": "insert",
     "condition": "(select count(*) from dummy_comment c where c.author_id = NEW.author_id)"
                  " > 'many'::int", "trigger_table": "dummy_comment", "user_field": "author_id"},
    {"name": "Popular", "code": "popular", "condition": "NEW.likes >= 10",
     "trigger_condition": "update", "trigger_table": "dummy_comment", "user_field": "author_id"},
    {"name": "Asleep", "code": "asleep", "condition": "NEW.hit_views / 'x'", "enabled": False,
     "trigger_condition": "update", "trigger_table": "dummy_sketch", "user_field": "user_id"},
    {"name": "Syntax", "code": "syntax", "condition": "NEW.hit_views >= AND 3",
     "trigger_condition": "update", "trigger_table": "dummy_sketch", "user_field": "user_id"},
    {"name": "Collector", "code": "collector", "condition": "true", "trigger_condition": "insert",
     "trigger_table": "dummy_sketch", "user_field": "user_id"},
]


def masked(text: str, path) -> str:
    """The output without what varies between runs: the file's path, the database."""
    return re.sub(r'"database": "[^"]*"', '"database": "DATABASE"',
                  text.replace(str(path), "FILE"))


# Captured from `validate` before round trips were batched (one EXPLAIN per badge).
EXPECTED_STDOUT = (
    'note: badge veteran is time-based: its condition reads the clock, so it can '
    'become true with no write; only reconcile, run on a schedule, awards it in time '
    '(install --schedule 5m).\n'
)
EXPECTED_STDERR = [
    "warning: badge #10 (asleep), key 'condition': PostgreSQL rejects it: invalid input "
     'syntax for type integer: "x" (badge disabled)',
    'badge #11 (syntax), key \'condition\': does not parse: syntax error at or near "AND" '
     '(at line 1, column 18); write one SQL expression that could follow SELECT',
    "badge #12 (collector), key 'code': same code as badge #0; codes must be unique",
    "badge #1 (ghost), key 'condition': uses ghost_views, not column(s) of "
     'public.dummy_sketch',
    "badge #2 (typo), key 'condition': PostgreSQL rejects it: operator does not exist: "
     'integer >>> integer',
    "badge #3 (types), key 'condition': PostgreSQL rejects it: operator does not exist: "
     'character varying > integer',
    "badge #5 (nowhere), key 'trigger_table': table 'no_such_table' not found "
     '(search_path: public); create it or qualify it as schema.table',
    "badge #6 (chatty), key 'user_field': column 'writer' not in public.dummy_comment; "
     'columns are id, author_id, body, likes',
    "badge #7 (zero), key 'condition': PostgreSQL rejects it: division by zero",
    "badge #8 (letters), key 'condition': PostgreSQL rejects it: invalid input syntax "
     'for type integer: "many"',
]
EXPECTED_JSON = {
    'file': 'FILE',
    'database': 'DATABASE',
    'valid': False,
    'badges': 13,
    'time_based': ['veteran'],
    'series': {},  # levels: a series maps to its level codes
    'problems': [{'index': 11,
                  'code': 'syntax',
                  'key': 'condition',
                  'kind': 'parse',
                  'message': 'does not parse: syntax error at or near "AND" (at line 1, column '
                             '18); write one SQL expression that could follow SELECT',
                  'text': "badge #11 (syntax), key 'condition': does not parse: syntax error at "
                          'or near "AND" (at line 1, column 18); write one SQL expression that '
                          'could follow SELECT'},
                 {'index': 12,
                  'code': 'collector',
                  'key': 'code',
                  'kind': 'duplicate',
                  'message': 'same code as badge #0; codes must be unique',
                  'text': "badge #12 (collector), key 'code': same code as badge #0; codes must "
                          'be unique'},
                 {'index': 1,
                  'code': 'ghost',
                  'key': 'condition',
                  'kind': 'unknown-column',
                  'message': 'uses ghost_views, not column(s) of public.dummy_sketch',
                  'text': "badge #1 (ghost), key 'condition': uses ghost_views, not column(s) of "
                          'public.dummy_sketch'},
                 {'index': 2,
                  'code': 'typo',
                  'key': 'condition',
                  'kind': 'plan',
                  'message': 'PostgreSQL rejects it: operator does not exist: integer >>> '
                             'integer',
                  'text': "badge #2 (typo), key 'condition': PostgreSQL rejects it: operator "
                          'does not exist: integer >>> integer'},
                 {'index': 3,
                  'code': 'types',
                  'key': 'condition',
                  'kind': 'plan',
                  'message': 'PostgreSQL rejects it: operator does not exist: character varying '
                             '> integer',
                  'text': "badge #3 (types), key 'condition': PostgreSQL rejects it: operator "
                          'does not exist: character varying > integer'},
                 {'index': 5,
                  'code': 'nowhere',
                  'key': 'trigger_table',
                  'kind': 'unknown-table',
                  'message': "table 'no_such_table' not found (search_path: public); create it "
                             'or qualify it as schema.table',
                  'text': "badge #5 (nowhere), key 'trigger_table': table 'no_such_table' not "
                          'found (search_path: public); create it or qualify it as schema.table'},
                 {'index': 6,
                  'code': 'chatty',
                  'key': 'user_field',
                  'kind': 'unknown-column',
                  'message': "column 'writer' not in public.dummy_comment; columns are id, "
                             'author_id, body, likes',
                  'text': "badge #6 (chatty), key 'user_field': column 'writer' not in "
                          'public.dummy_comment; columns are id, author_id, body, likes'},
                 {'index': 7,
                  'code': 'zero',
                  'key': 'condition',
                  'kind': 'plan',
                  'message': 'PostgreSQL rejects it: division by zero',
                  'text': "badge #7 (zero), key 'condition': PostgreSQL rejects it: division by "
                          'zero'},
                 {'index': 8,
                  'code': 'letters',
                  'key': 'condition',
                  'kind': 'plan',
                  'message': 'PostgreSQL rejects it: invalid input syntax for type integer: '
                             '"many"',
                  'text': "badge #8 (letters), key 'condition': PostgreSQL rejects it: invalid "
                          'input syntax for type integer: "many"'}],
    'broken': [],
}


def test_validate_says_what_it_said_before_batching(three_tables, cli, badge_file):
    path = badge_file({"badges": MIXED})
    code, out, err = cli("validate", "--dsn", three_tables, "--badges", path)
    assert code == 1
    assert masked(out, path) == "".join(EXPECTED_STDOUT)
    assert masked(err, path).splitlines() == [f"FILE: {line}" for line in EXPECTED_STDERR]
    code, out, err = cli("validate", "--dsn", three_tables, "--badges", path, "--json")
    assert code == 1
    assert masked(out, path) == json.dumps(EXPECTED_JSON, ensure_ascii=False) + "\n"
    assert masked(err, path).splitlines() == [f"FILE: {EXPECTED_STDERR[0]}"]


def test_without_plpgsql_validate_plans_one_by_one_and_says_the_same(three_tables, cli,
                                                                      badge_file):
    """The batch is a DO block, which needs PL/pgSQL; a database without it is still
    validated (the triggers need PL/pgSQL anyway: install says so)."""
    with psycopg.connect(three_tables) as conn:
        conn.execute("DROP EXTENSION plpgsql")
    path = badge_file({"badges": MIXED})
    code, out, err = cli("validate", "--dsn", three_tables, "--badges", path)
    assert code == 1
    assert masked(err, path).splitlines() == [f"FILE: {line}" for line in EXPECTED_STDERR]


def test_each_condition_is_parsed_once_however_often_it_is_checked(three_tables,
                                                                  monkeypatch):
    """pglast's parse and re-print are most of what checking a condition costs; the file
    checks, the database checks and the time-based note each ask for it."""
    from badge_console.core import condition

    parsed = []
    monkeypatch.setattr(condition, "parse_sql",
                        lambda text, real=condition.parse_sql: parsed.append(text) or real(text))
    condition._read.cache_clear()
    badges = [{"name": f"B{i}", "code": f"b{i}", "condition": f"NEW.hit_views >= {i}",
               "trigger_condition": ["insert", "update"], "trigger_table": "dummy_sketch",
               "user_field": "user_id"} for i in range(1000)]
    bf = parse_badge_file(json.dumps({"badges": badges}))
    with psycopg.connect(three_tables) as conn:
        assert validate_against_database(conn, bf).ok
    assert not any(condition.is_time_based(b) for b in bf.badges)
    assert len(parsed) == len(set(parsed)) == 1000
