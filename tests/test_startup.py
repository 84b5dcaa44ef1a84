"""Headless commands and the engine never import Textual (faster starts, STYLE.md rule 1).

Each check runs in a fresh interpreter and reports which modules got loaded.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import badge_console.core
from conftest import ROOT

# Runs the CLI in-process, then prints whether textual was ever imported.
CLI_WRAPPER = """
import sys, json
from badge_console.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # argparse exits on --help
    code = exc.code
print(json.dumps({"code": code, "textual": sorted(m for m in sys.modules
                                                   if m.split('.')[0] == 'textual'),
                  "psycopg": "psycopg" in sys.modules}))
"""


def run_python(code: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_help_does_not_import_textual():
    out = run_python(CLI_WRAPPER, "--help")
    assert out["code"] == 0
    assert out["textual"] == []
    assert out["psycopg"] is False  # nor the database driver: --help answers at once


def test_validate_offline_does_not_import_textual():
    out = run_python(CLI_WRAPPER, "validate", "--offline", "--badges", str(ROOT / "badge.json"))
    assert out["code"] == 0
    assert out["textual"] == []
    assert out["psycopg"] is False


def test_engine_modules_never_import_textual():
    modules = sorted(f"badge_console.core.{m.name}"
                     for m in pkgutil.iter_modules(badge_console.core.__path__))
    assert "badge_console.core.sqlgen" in modules
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(json.dumps({'textual': sorted(m for m in sys.modules"
            " if m.split('.')[0] == 'textual')}))")
    assert run_python(code)["textual"] == []


def test_cli_modules_never_import_textual():
    """Every module of the CLI package loads without Textual (and without psycopg): only
    the console command imports the TUI, when it runs."""
    import badge_console.cli

    modules = sorted(f"badge_console.cli.{m.name}"
                     for m in pkgutil.iter_modules(badge_console.cli.__path__)
                     if m.name != "__main__")  # runs main() when imported
    assert "badge_console.cli.parser" in modules and "badge_console.cli.console" in modules
    code = ("import importlib, json, sys\n"
            f"for name in {modules!r}: importlib.import_module(name)\n"
            "print(json.dumps({'textual': sorted(m for m in sys.modules"
            " if m.split('.')[0] == 'textual'), 'psycopg': 'psycopg' in sys.modules}))")
    out = run_python(code)
    assert out["textual"] == []
    assert out["psycopg"] is False


def test_importtime_shows_no_textual():
    """The same through -X importtime, the way a reader would check it by hand."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c",
                           "from badge_console.cli import main; main(['--help'])"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    imported = [line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()
                if line.startswith("import time:")]
    assert "badge_console.cli" in imported
    assert not [m for m in imported if m.split(".")[0] == "textual"]
