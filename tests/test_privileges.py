"""The privilege model on real roles: what the application and the operator need.

Decision (README, "Privileges"): trigger functions are SECURITY DEFINER, owned by the
installing operator, with search_path pinned. The application role needs nothing but its
own tables; it cannot even read the award table, and still earns badges.
"""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import conninfo, sql

from badge_console.core.definitions import parse_badge_file
from badge_console.core.install import install

from helpers import DEMO_BADGES, ROOT, awards


@pytest.fixture
def roles(dsn):
    suffix = uuid.uuid4().hex[:8]
    names = {"app": f"bc_app_{suffix}", "operator": f"bc_op_{suffix}"}
    dbname = conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as admin:
        for name in names.values():
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        admin.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(names["operator"])))
        admin.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(
            sql.Identifier(names["operator"])))
    yield {k: conninfo.make_conninfo(dsn, user=v) for k, v in names.items()} | {"names": names}
    with psycopg.connect(dsn, autocommit=True) as admin:
        for name in names.values():
            admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def operator_owned_demo(roles) -> None:
    from badge_console.core.demo import create_demo_schema

    app = sql.Identifier(roles["names"]["app"])
    with psycopg.connect(roles["operator"]) as op:
        create_demo_schema(op, users=20, sketches=0)
        op.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON auth_user, dummy_sketch "
                           "TO {}").format(app))
        op.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(app))


def test_application_role_earns_badges_without_rights_on_awards(roles, dsn):
    operator_owned_demo(roles)
    with psycopg.connect(roles["operator"]) as op:
        install(op, parse_badge_file(json.dumps(DEMO_BADGES)))
    with psycopg.connect(roles["app"]) as app:
        app.execute("INSERT INTO dummy_sketch (user_id, title) "
                    "SELECT 4, 'x' FROM generate_series(1, 5)")
        app.commit()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT * FROM badges_badge")
        app.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("INSERT INTO badge_console.paused (code) VALUES ('*')")
    assert awards(dsn) == [(4, "collector")]


def test_temporary_table_cannot_hijack_a_condition(roles, dsn):
    """search_path is pinned with pg_temp last: an app's temp table named like a real one
    does not change what the SECURITY DEFINER condition reads."""
    operator_owned_demo(roles)
    with psycopg.connect(roles["operator"]) as op:
        install(op, parse_badge_file(json.dumps(DEMO_BADGES)))
    with psycopg.connect(roles["app"]) as app:
        app.execute("CREATE TEMP TABLE dummy_sketch (id int, user_id int)")
        app.execute("GRANT SELECT ON pg_temp.dummy_sketch TO PUBLIC")  # readable by the definer
        app.execute("INSERT INTO pg_temp.dummy_sketch SELECT g, 5 FROM generate_series(1, 10) g")
        app.execute("INSERT INTO public.dummy_sketch (user_id, title) VALUES (5, 'only one')")
        app.commit()
        assert awards(dsn) == []
        app.execute("INSERT INTO public.dummy_sketch (user_id, title) "
                    "SELECT 5, 'four more' FROM generate_series(1, 4)")
        app.commit()
    assert awards(dsn) == [(5, "collector")]  # the real fifth sketch does award


def test_operator_without_rights_gets_one_clear_sentence(roles, dsn, cli):
    from badge_console.core.demo import create_demo_schema

    with psycopg.connect(dsn) as admin:  # tables owned by the superuser, not the operator
        create_demo_schema(admin, users=5, sketches=0)
    code, out, err = cli("install", "--dsn", roles["operator"], "--yes",
                         "--badges", ROOT / "badge.json")
    assert code == 1
    assert f"permission denied for table auth_user for role {roles['names']['operator']}" in err
    with psycopg.connect(dsn) as admin:
        admin.execute(sql.SQL("GRANT SELECT ON auth_user, dummy_sketch TO {}").format(
            sql.Identifier(roles["names"]["operator"])))
    code, out, err = cli("install", "--dsn", roles["operator"], "--yes",
                         "--badges", ROOT / "badge.json")
    assert code == 1
    assert "permission denied for table auth_user while running: CREATE TRIGGER" in err
    assert "nothing was changed" in err
    assert err.count("\n") == 1
    with psycopg.connect(dsn) as admin:
        assert admin.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None


def test_read_only_server_is_refused_cleanly(dsn, cli):
    from badge_console.core.demo import create_demo_schema

    with psycopg.connect(dsn) as admin:
        create_demo_schema(admin, users=5, sketches=0)
    dbname = conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on")
                      .format(sql.Identifier(dbname)))
    assert cli("validate", "--dsn", dsn, "--badges", ROOT / "badge.json")[0] == 0
    code, _, err = cli("install", "--dsn", dsn, "--yes", "--badges", ROOT / "badge.json")
    assert code == 1 and "read-only transaction" in err and "Traceback" not in err
