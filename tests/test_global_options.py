"""--dsn, --badges, --read-only and --json mean the same before or after the command.

Each test points DATABASE_URL at a port nobody listens on: a --dsn that were ignored
would make the command fail there (exit 3) instead of running on the test database.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import psycopg
import pytest

from helpers import ROOT, install_file

from badge_console.cli.parser import build_parser, parse_args

BADGES = str(ROOT / "badge.json")
NOWHERE = "postgresql://nobody@127.0.0.1:1/nowhere"


@pytest.fixture(autouse=True)
def nowhere(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", NOWHERE)


def _leaf_commands(parser=None, prefix=()):
    """Every command (and sub-command) with placeholder values for its positionals."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                if nested:
                    yield from _leaf_commands(sub, prefix + (name,))
                    continue
                positionals = [
                    "1" for a in sub._actions if not a.option_strings and a.nargs is None]
                has_json = any("--json" in a.option_strings for a in sub._actions)
                yield (*prefix, name), positionals, has_json


LEAVES = list(_leaf_commands())


def _sides(command, positionals, options):
    return {"before": [*options, *command, *positionals],
            "after": [*command, *positionals, *options]}


@pytest.mark.parametrize("command,positionals,has_json", LEAVES,
                         ids=[" ".join(c) for c, _, _ in LEAVES])
@pytest.mark.parametrize("side", ["before", "after"])
def test_every_command_parses_global_options_on_either_side(command, positionals,
                                                            has_json, side):
    options = ["--dsn", "host=elsewhere", "--badges", "b.json", "--read-only"]
    options += ["--json"] if has_json else []
    args = parse_args(_sides(command, positionals, options)[side])
    assert (args.dsn, args.badges, args.read_only, args.json) == (
        "host=elsewhere", "b.json", True, has_json)


def test_console_takes_the_global_options():
    args = parse_args(["--dsn", "host=elsewhere", "--read-only", "--badges", "b.json"])
    assert (args.command, args.dsn, args.read_only, args.badges) == (
        None, "host=elsewhere", True, "b.json")


def test_different_values_on_both_sides_are_a_usage_error(cli, demo):
    code, _, err = cli("--dsn", demo, "plan", "--dsn", NOWHERE, "--badges", BADGES)
    assert code == 2 and "before and after" in err


def test_the_same_value_on_both_sides_is_fine(cli, demo):
    assert cli("--dsn", demo, "validate", "--dsn", demo, "--badges", BADGES)[0] == 0


@pytest.mark.parametrize("argv", [["--json", "install"], ["--json"], ["pause", "--json"]])
def test_json_where_a_command_has_none_is_a_usage_error(cli, argv):
    try:
        code, _, err = cli(*argv)
    except SystemExit as exc:  # argparse's own usage error
        code, err = exc.code, "--json"
    assert code == 2 and "--json" in err


def _installed(dsn) -> list[str]:
    with psycopg.connect(dsn) as conn:
        if conn.execute("SELECT to_regclass('badge_console.installed')").fetchone()[0] is None:
            return []
        return [r[0] for r in conn.execute("SELECT code FROM badge_console.installed ORDER BY 1")]


def _paused(dsn) -> list[str]:
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute("SELECT code FROM badge_console.paused")]


def _dbname(dsn) -> str:
    return psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]


# command, what to set up first, extra arguments, check(dsn, stdout) after success
def _json_names_db(dsn, out):
    return _dbname(dsn) in json.loads(out)["database"]


COMMANDS = {
    "validate": (None, [], lambda dsn, out: _dbname(dsn) in out),
    "plan": (None, ["--json"], _json_names_db),
    "install": (None, ["--yes"], lambda dsn, out: len(_installed(dsn)) == 4),
    "uninstall": ("install", ["--yes"], lambda dsn, out: _installed(dsn) == []),
    "pause": ("install", ["star"], lambda dsn, out: _paused(dsn) == ["star"]),
    "resume": ("pause", ["star"], lambda dsn, out: _paused(dsn) == []),
    "dry-run": (None, ["star", "--json"], _json_names_db),
    "backfill": ("install", ["--json"], _json_names_db),
}


def _setup(dsn, what):
    if what in ("install", "pause"):
        install_file(dsn, BADGES)
    if what == "pause":
        with psycopg.connect(dsn) as conn:
            conn.execute("INSERT INTO badge_console.paused (code) VALUES ('star')")


@pytest.mark.parametrize("name", sorted(COMMANDS))
@pytest.mark.parametrize("side", ["before", "after", "split"])
def test_dsn_and_badges_reach_the_command(cli, demo, name, side):
    setup, extra, check = COMMANDS[name]
    _setup(demo, setup)
    argv = {"before": ["--dsn", demo, "--badges", BADGES, name, *extra],
            "after": [name, *extra, "--dsn", demo, "--badges", BADGES],
            "split": ["--dsn", demo, name, *extra, "--badges", BADGES]}[side]
    code, out, err = cli(*argv)
    assert code == 0, err
    assert check(demo, out)


WRITERS = {  # command: (set up, arguments, what must still be true afterwards)
    "install": (None, ["--yes"], lambda dsn: _installed(dsn) == []),
    "uninstall": ("install", ["--yes"], lambda dsn: len(_installed(dsn)) == 4),
    "pause": ("install", ["star"], lambda dsn: _paused(dsn) == []),
    "resume": ("pause", ["star"], lambda dsn: _paused(dsn) == ["star"]),
    "backfill": ("install", ["--yes"], lambda dsn: True),
    "demo-traffic": (None, ["--seconds", "0.3"], lambda dsn: True),
    "dry-run": ("install", ["star", "--mode", "fire"], lambda dsn: True),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
@pytest.mark.parametrize("side", ["before", "after"])
def test_read_only_is_never_lost(cli, demo, name, side):
    setup, extra, unchanged = WRITERS[name]
    _setup(demo, setup)
    extra = [a for a in extra if not (name == "backfill" and a == "--yes")]
    common = ["--dsn", demo, "--badges", BADGES]
    argv = {"before": ["--read-only", *common, name, *extra],
            "after": [name, *extra, *common, "--read-only"]}[side]
    code, out, err = cli(*argv)
    assert code == 1 and "--read-only" in err and err.count("\n") == 1
    assert unchanged(demo)


@pytest.mark.parametrize("side", ["before", "after"])
def test_demo_traffic_sees_the_dsn(cli, demo, side):
    """It refuses any database but the embedded demo's: that it refuses proves --dsn arrived."""
    argv = {"before": ["--dsn", demo, "demo-traffic", "--seconds", "0.1"],
            "after": ["demo-traffic", "--seconds", "0.1", "--dsn", demo]}[side]
    code, _, err = cli(*argv)
    assert code == 1 and "only runs on the embedded demo" in err


@pytest.mark.parametrize("side", ["before", "after"])
def test_watch_listens_on_the_given_dsn(demo, side):
    install_file(demo, BADGES)
    argv = {"before": ["--dsn", demo, "watch", "--json"],
            "after": ["watch", "--json", "--dsn", demo]}[side]
    env = os.environ | {"DATABASE_URL": NOWHERE}
    proc = subprocess.Popen([sys.executable, "-m", "badge_console.cli", *argv], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "Watching channel badge_awarded" in line and _dbname(demo) in line
        with psycopg.connect(demo) as conn:
            conn.execute("INSERT INTO dummy_sketch (user_id, title) VALUES (1, 's')")
            conn.execute("UPDATE dummy_sketch SET hit_views = 1000 WHERE user_id = 1")
        award = json.loads(proc.stdout.readline())
        assert (award["code"], str(award["user_id"])) == ("star", "1")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
