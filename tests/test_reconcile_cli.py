"""`badge-console reconcile`, `install --schedule` (pg_cron or a crontab line), and
time-based badges marked by validate and plan."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psycopg
import pytest

from clusters import Cluster, require_server_bin
from helpers import ROOT, awards, demo_badge, install_badges

PIONNER_AND_COLLECTOR = {"badges": [demo_badge("pionner"), demo_badge("collector")]}


def _aged(dsn, *users) -> None:
    """Users who crossed the one-year mark while nobody wrote their row."""
    with psycopg.connect(dsn) as conn:
        conn.execute("ALTER TABLE auth_user DISABLE TRIGGER USER")
        conn.execute("UPDATE auth_user SET date_joined = now() - interval '2 years'"
                     " WHERE id = ANY(%s)", (list(users),))
        conn.execute("ALTER TABLE auth_user ENABLE TRIGGER USER")


def test_reconcile_prints_a_line_per_pass_and_json(demo, cli, badge_file):
    install_badges(demo, PIONNER_AND_COLLECTOR["badges"])
    _aged(demo, 4, 5)
    code, out, err = cli("reconcile", "--dsn", demo)
    assert (code, err) == (0, "")
    assert "2 award(s) (0 from the queue, 2 time-based)" in out
    assert awards(demo) == [(4, "pionner"), (5, "pionner")]
    code, out, _ = cli("reconcile", "--json", "--dsn", demo)
    doc = json.loads(out)
    assert (code, doc["awarded"], doc["queued"]) == (0, 0, 0)


def test_reconcile_without_an_install_is_one_sentence(dsn, cli):
    code, out, err = cli("reconcile", "--dsn", dsn)
    assert code == 1 and out == ""
    assert "has no badge_console.reconcile(); run install first" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_reconcile_is_refused_under_read_only(demo, cli):
    install_badges(demo, PIONNER_AND_COLLECTOR["badges"])
    code, _, err = cli("reconcile", "--read-only", "--dsn", demo)
    assert code == 1 and "--read-only" in err


def test_reconcile_every_loops_until_ctrl_c(demo):
    install_badges(demo, PIONNER_AND_COLLECTOR["badges"])
    proc = subprocess.Popen([sys.executable, "-m", "badge_console.cli", "reconcile",
                             "--every", "0.2", "--dsn", demo], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert all("reconcile on" in line for line in lines)


def test_validate_and_plan_mark_time_based_badges(demo, cli, badge_file):
    path = badge_file(PIONNER_AND_COLLECTOR)
    code, out, _ = cli("validate", "--dsn", demo, "--badges", path)
    assert code == 0
    assert "badge pionner is time-based" in out and "collector is time-based" not in out
    code, out, _ = cli("validate", "--offline", "--json", "--badges", path)
    assert json.loads(out)["time_based"] == ["pionner"]
    code, out, _ = cli("plan", "--json", "--dsn", demo, "--badges", path)
    doc = json.loads(out)
    assert {b["code"]: b["time_based"] for b in doc["badges"]} == {
        "pionner": True, "collector": False}
    assert doc["reconcile"] == {"pg_cron": False, "schedule": None, "last_run": None}
    code, out, _ = cli("plan", "--dsn", demo, "--badges", path)
    assert "time-based" in out and "install --schedule" in out


def test_schedule_without_pg_cron_prints_the_crontab_line_without_password(demo, cli,
                                                                          badge_file):
    path = badge_file(PIONNER_AND_COLLECTOR)
    secret = psycopg.conninfo.make_conninfo(demo, password="s3cret-pw")
    code, out, err = cli("install", "--yes", "--schedule", "90s", "--dsn", secret,
                         "--badges", path)
    assert code == 0, err
    line = out.strip().splitlines()[-1]
    assert line.startswith("*/2 * * * * badge-console --dsn '") and line.endswith(" reconcile")
    assert "s3cret-pw" not in out + err
    assert "rounded" in out


def test_a_bad_schedule_interval_is_a_usage_error_before_anything_changes(demo, cli,
                                                                         badge_file):
    code, _, err = cli("install", "--yes", "--schedule", "often", "--dsn", demo,
                       "--badges", badge_file(PIONNER_AND_COLLECTOR))
    assert code == 2 and "often" in err
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None


@pytest.fixture(scope="module")
def cron_cluster():
    bin_dir = require_server_bin()
    if not (bin_dir.parent / "lib" / "pg_cron.so").exists():
        pytest.skip("pg_cron is not installed (apt-get install postgresql-15-cron)")
    cluster = Cluster.start({"shared_preload_libraries": "pg_cron",
                             "cron.database_name": "'bc_cron'"})
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bc_cron")
        yield cluster
    finally:
        cluster.stop()


def test_schedule_registers_a_pg_cron_job_and_uninstall_removes_it(cron_cluster, cli,
                                                                   badge_file):
    from conftest import make_demo

    dsn = cron_cluster.dsn("bc_cron")
    make_demo(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
    path = badge_file(PIONNER_AND_COLLECTOR)
    code, out, err = cli("install", "--yes", "--schedule", "5m", "--dsn", dsn, "--badges", path)
    assert code == 0, err
    assert "Scheduled reconcile with pg_cron" in out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT schedule, command FROM cron.job"
                            " WHERE jobname = 'badge-console-reconcile'").fetchall() == [
            ("*/5 * * * *", "CALL badge_console.reconcile()")]
    code, out, _ = cli("plan", "--json", "--dsn", dsn, "--badges", path)
    assert json.loads(out)["reconcile"]["schedule"] == "*/5 * * * *"
    code, _, err = cli("uninstall", "--yes", "--dsn", dsn)
    assert code == 0, err
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM cron.job").fetchone()[0] == 0
