"""Which database a command reaches without --dsn (SPEC 4), and how it is named.

--dsn, else DATABASE_URL, else libpq's own PG* environment or service file, and only
when none of these is given the embedded demo. The name shown is read from the live
connection, never from the DSN text, and never holds a password.
"""

from __future__ import annotations

import json

import psycopg
import pytest

from helpers import ROOT

from badge_console.core.connection import resolve_dsn

BADGES = str(ROOT / "badge.json")
LIBPQ = ("DATABASE_URL", "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER",
         "PGSERVICE", "PGSERVICEFILE", "PGPASSWORD")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No libpq variable from the machine; a demo started by mistake lands in tmp."""
    for name in LIBPQ:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BADGE_CONSOLE_DATA_DIR", str(tmp_path / "demo-data"))
    return monkeypatch


def _target(dsn) -> tuple[str, int, str]:
    """What the server says it is: (address or socket dir, port, database)."""
    with psycopg.connect(dsn) as conn:
        addr, port, db = conn.execute("SELECT host(inet_server_addr()), inet_server_port(),"
                                      " current_database()").fetchone()
        return addr or conn.info.host, port or int(conn.info.port), db


def _libpq_parts(dsn) -> dict:
    with psycopg.connect(dsn) as conn:
        info = conn.info
        return {"host": info.host, "port": info.port, "user": info.user,
                "dbname": info.dbname}


def test_precedence_without_dsn():
    assert resolve_dsn("host=a", {"DATABASE_URL": "host=b", "PGHOST": "c"}) == "host=a"
    assert resolve_dsn(None, {"DATABASE_URL": "host=b", "PGHOST": "c"}) == "host=b"
    assert resolve_dsn(None, {"PGSERVICE": "app"}) == ""
    assert resolve_dsn(None, {"PGPASSWORD": "x"}) is None


def test_pg_environment_is_used_without_dsn(cli, demo, clean_env):
    parts = _libpq_parts(demo)
    clean_env.setenv("PGHOST", parts["host"])
    clean_env.setenv("PGPORT", str(parts["port"]))
    clean_env.setenv("PGUSER", parts["user"])
    clean_env.setenv("PGDATABASE", parts["dbname"])
    code, out, err = cli("plan", "--json", "--badges", BADGES)
    assert code == 0, err
    host, port, db = _target(demo)
    assert json.loads(out)["database"] == f"{parts['user']}@{host}:{port}/{db}"


def _service_file(tmp_path, demo) -> str:
    parts = _libpq_parts(demo)
    path = tmp_path / "pg_service.conf"
    path.write_text("[app]\n" + "".join(f"{k}={v}\n" for k, v in parts.items()))
    return str(path)


def test_pgservice_reaches_the_service_alone(cli, demo, clean_env, tmp_path):
    clean_env.setenv("PGSERVICEFILE", _service_file(tmp_path, demo))
    clean_env.setenv("PGSERVICE", "app")
    code, out, err = cli("validate", "--badges", BADGES)
    assert code == 0, err
    host, port, db = _target(demo)
    assert f"@{host}:{port}/{db}" in out


def test_dsn_service_is_displayed_as_the_real_target(cli, demo, clean_env, tmp_path):
    clean_env.setenv("PGSERVICEFILE", _service_file(tmp_path, demo))
    code, out, err = cli("plan", "--dsn", "service=app", "--badges", BADGES, "--json")
    assert code == 0, err
    host, port, db = _target(demo)
    assert json.loads(out)["database"].endswith(f"@{host}:{port}/{db}")


def test_unknown_uri_parameter_keeps_libpq_message(cli):
    code, out, err = cli("plan", "--dsn", "postgresql://u:hunter2@127.0.0.1/db?frobnicate=1",
                         "--badges", BADGES)
    assert code == 2 and 'invalid URI query parameter: "frobnicate"' in err
    assert "hunter2" not in out + err and err.count("\n") == 1


def test_unparsable_dsn_message_never_quotes_the_password(cli):
    code, out, err = cli("plan", "--dsn", "postgresql://u:p%zzsecret@127.0.0.1/db",
                         "--badges", BADGES)
    assert code == 2 and "percent-encoded" in err and "secret" not in out + err


@pytest.fixture(scope="module")
def replica():
    from clusters import Cluster

    primary = Cluster.start({"wal_level": "replica"})
    standby = primary.replica()
    yield primary, standby
    standby.stop()
    primary.stop()


def test_standby_is_named_as_such(cli, replica):
    primary, standby = replica
    out = cli("plan", "--dsn", standby.dsn(), "--badges", BADGES, "--json")[1]
    doc = json.loads(out)
    assert doc["database"] == f"postgres@127.0.0.1:{standby.port}/postgres (standby, read-only)"
    out = cli("plan", "--dsn", primary.dsn(), "--badges", BADGES, "--json")[1]
    assert json.loads(out)["database"] == f"postgres@127.0.0.1:{primary.port}/postgres"



def test_console_opens_on_an_unreachable_server_a_command_does_not(cli):
    """The console shows the outage and reconnects; a command exits 3 at once."""
    from badge_console.cli.context import open_context
    from badge_console.cli.parser import parse_args

    down = "postgresql://someone:pw@127.0.0.1:1/app"
    assert open_context(parse_args(["--dsn", down])).database == "someone@127.0.0.1:1/app"
    code, out, err = cli("plan", "--dsn", down, "--badges", BADGES)
    assert code == 3 and "pw" not in out + err
