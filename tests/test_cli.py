"""The command line as scripts use it: exit codes, one-sentence errors, --json, no secrets."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
from psycopg import conninfo

from helpers import DEMO_BADGES, ROOT, demo_badge


def with_password(dsn: str, password: str) -> str:
    return conninfo.make_conninfo(dsn, password=password)


def test_validate_plan_install_uninstall_cycle(cli, demo):
    badges = str(ROOT / "badge.json")
    assert cli("validate", "--dsn", demo, "--badges", badges)[0] == 0
    code, out, _ = cli("plan", "--dsn", demo, "--badges", badges, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["valid"] is True
    assert {b["code"]: b["action"] for b in doc["badges"]} == {
        b["code"]: "create" for b in DEMO_BADGES}
    code, out, _ = cli("install", "--dsn", demo, "--badges", badges, "--yes")
    assert code == 0 and "4 created" in out
    code, out, _ = cli("plan", "--dsn", demo, "--badges", badges, "--json")
    assert {b["action"] for b in json.loads(out)["badges"]} == {"unchanged"}
    code, out, _ = cli("uninstall", "--dsn", demo, "--yes")
    assert code == 0 and "4 trigger(s)" in out


def test_install_without_yes_and_no_terminal_is_a_usage_error(cli, demo):
    code, _, err = cli("install", "--dsn", demo, "--badges", ROOT / "badge.json")
    assert code == 2 and "--yes" in err
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT to_regnamespace('badge_console')").fetchone()[0] is None


def test_invalid_definitions_exit_1_with_every_problem(cli, demo, badge_file):
    path = badge_file([demo_badge("star", condition="hit_views >= 1000"),
                       demo_badge("collector", trigger_table="nope")])
    code, _, err = cli("validate", "--dsn", demo, "--badges", path)
    assert code == 1
    assert "badge #0 (star), key 'condition'" in err
    assert "badge #1 (collector), key 'trigger_table'" in err
    code, _, err = cli("install", "--dsn", demo, "--badges", path, "--yes")
    assert code == 1


def test_validate_offline_needs_no_database(cli, badge_file):
    path = badge_file('[{"name": "a" "code": "b"}]')
    code, _, err = cli("validate", "--offline", "--badges", path)
    assert code == 1 and "line 1, column 15" in err and err.count("\n") == 1


def test_a_missing_badges_file_names_the_option_that_gives_it(cli, tmp_path):
    """The engine says the file is not there; the CLI says how to give one (--badges)."""
    from badge_console.core.definitions import load_badge_file
    from badge_console.core.errors import DefinitionError

    missing = tmp_path / "nowhere.json"
    code, out, err = cli("validate", "--offline", "--badges", missing)
    assert code == 1 and out == ""
    assert err.strip() == (f"badge-console: {missing} is invalid: file: file not found; "
                           "pass --badges PATH or create badge.json.")
    try:
        load_badge_file(missing)
    except DefinitionError as exc:
        assert "--" not in str(exc) and exc.problems[0].kind == "missing-file"


def test_read_only_refuses_writes(cli, demo):
    code, _, err = cli("install", "--read-only", "--dsn", demo, "--yes",
                       "--badges", ROOT / "badge.json")
    assert code == 1 and "--read-only" in err
    assert cli("plan", "--read-only", "--dsn", demo, "--badges", ROOT / "badge.json")[0] == 0


def test_unreachable_server_exit_3_password_never_shown(cli):
    secret = "s3cr3t-pa55"
    for dsn in (f"postgresql://someone:{secret}@127.0.0.1:1/db",
                f"host=127.0.0.1 port=1 user=someone password={secret} dbname=db"):
        code, out, err = cli("plan", "--dsn", dsn, "--badges", ROOT / "badge.json")
        assert code == 3
        assert secret not in out + err
        assert "someone@127.0.0.1:1/db" in err and err.count("\n") == 1


def test_wrong_password_and_missing_database(cli, admin_dsn):
    secret = "definitely-wrong-pw"
    dsn = with_password(conninfo.make_conninfo(admin_dsn, dbname="no_such_db_bc"), secret)
    code, out, err = cli("validate", "--dsn", dsn, "--badges", ROOT / "badge.json")
    assert code == 3 and secret not in out + err
    assert "no_such_db_bc" in err


def test_bad_dsn_is_a_usage_error(cli):
    code, _, err = cli("plan", "--dsn", "host=x port", "--badges", ROOT / "badge.json")
    assert code == 2 and "DSN" in err


def test_usage_error_exit_2():
    proc = subprocess.run([sys.executable, "-m", "badge_console.cli", "frobnicate"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_real_process_error_has_no_traceback(tmp_path):
    bad = tmp_path / "badge.json"
    bad.write_bytes(b"\xff\xfe not json")
    proc = subprocess.run([sys.executable, "-m", "badge_console.cli", "validate", "--offline",
                           "--badges", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "not UTF-8" in proc.stderr


def test_pause_and_resume(cli, demo):
    cli("install", "--dsn", demo, "--badges", ROOT / "badge.json", "--yes")
    code, out, _ = cli("pause", "star", "--dsn", demo)
    assert code == 0 and "paused" in out
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT code FROM badge_console.paused").fetchall() == [("star",)]
    code, out, _ = cli("plan", "--dsn", demo, "--badges", ROOT / "badge.json", "--json")
    assert {b["code"]: b["paused"] for b in json.loads(out)["badges"]} == {
        "pionner": False, "collector": False, "star": True, "spring_cleaning": False}
    assert cli("resume", "star", "--dsn", demo)[0] == 0
    with psycopg.connect(demo) as conn:
        assert conn.execute("SELECT count(*) FROM badge_console.paused").fetchone()[0] == 0


def test_password_never_in_successful_output(cli, demo):
    """Trust auth ignores the password, so every command below succeeds with it in the DSN."""
    secret = "pw-that-must-not-leak"
    dsn = with_password(demo, secret)
    badges = ROOT / "badge.json"
    outputs = [cli("validate", "--dsn", dsn, "--badges", badges),
               cli("plan", "--dsn", dsn, "--badges", badges, "--json"),
               cli("plan", "--dsn", dsn, "--badges", badges, "--sql"),
               cli("install", "--dsn", dsn, "--badges", badges, "--yes"),
               cli("uninstall", "--dsn", dsn, "--yes")]
    assert [code for code, _, _ in outputs] == [0, 0, 0, 0, 0]
    assert all(secret not in out + err for _, out, err in outputs)
