"""How long badge-console takes to start, next to what it is compared with.

Each measurement is a fresh interpreter, from process start to exit, median of N runs,
the compared commands interleaved:
  - `badge-console --help` and `badge-console validate --offline` next to `python -c pass`
    (the headless commands never import Textual);
  - the TUI (badge_console.tui.app.BadgeConsoleApp) until its first screen is mounted
    under App.run_test() (then the process exits at once), next to a bare Textual App
    measured the same way (target <= 1.5x).

    python bench/startup.py [--runs 7] [--dsn DSN]   # default: a temporary embedded PG16
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_TUI = 1.5

CLI = "import sys; from badge_console.cli import main; sys.exit(main(sys.argv[1:]))"
BARE_APP = """
import asyncio, os
from textual.app import App
from textual.widgets import Footer, Header

class Bare(App):
    def compose(self):
        yield Header()
        yield Footer()

async def first_screen():
    async with Bare().run_test(size=(120, 36)):
        os._exit(0)  # first screen is up: stop the clock (shutdown is not startup)

asyncio.run(first_screen())
"""
OUR_APP = """
import asyncio, os, sys
from pathlib import Path
from badge_console.tui.app import BadgeConsoleApp

async def first_screen():
    app = BadgeConsoleApp(sys.argv[1], Path(sys.argv[2]), "bench")
    async with app.run_test(size=(120, 36)):
        os._exit(0)  # first screen is up: stop the clock (shutdown is not startup)

asyncio.run(first_screen())
"""


def timed(args: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(args[:3])} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--dsn", help="database for the TUI (default: a temporary embedded PG16)")
    args = ap.parse_args(argv)
    py, badges = sys.executable, str(ROOT / "badge.json")
    from badge_console.core.demo import scratch_server

    with scratch_server(args.dsn, "bc_startup_") as dsn:
        cases = {
            "python -c pass": [py, "-c", "pass"],
            "badge-console --help": [py, "-c", CLI, "--help"],
            "badge-console validate --offline": [py, "-c", CLI, "validate", "--offline",
                                                 "--badges", badges],
            "bare Textual app, first screen": [py, "-c", BARE_APP],
            "badge-console TUI, first screen": [py, "-c", OUR_APP, dsn, badges],
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        # Warm the file cache and write .pyc files once, as an installed program has
        # them; also under PYTHONDONTWRITEBYTECODE, else our modules (not Textual's,
        # compiled at install) would be compiled from source in every measured run.
        warm_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for cmd in cases.values():
            timed(cmd, warm_env)
        for _ in range(args.runs):
            for name, cmd in cases.items():
                times[name].append(timed(cmd))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"# startup — median of {args.runs} runs, fresh interpreter each, wall time")
    base, bare = med["python -c pass"], med["bare Textual app, first screen"]
    print(f"{'command':<36} {'time':>8} {'vs python -c pass':>18} {'vs bare Textual':>16}")
    for name, t in med.items():
        vs_bare = f"{t / bare:.2f}x" if "first screen" in name else ""
        print(f"{name:<36} {t * 1000:>6.0f}ms {t / base:>17.2f}x {vs_bare:>16}")
    ratio = med["badge-console TUI, first screen"] / bare
    print(f"TUI first screen / bare Textual app: {ratio:.2f}x (target <= {TARGET_TUI}x,"
          f" {'met' if ratio <= TARGET_TUI else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
