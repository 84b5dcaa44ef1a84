"""bench/badges_per_table.py still runs and prints issue 18's table (a smoke run).

The bench installs its badge sets through the project's own loader and install, so a
change of the generator or of the badge file's keys can break it; this catches that in
the suite instead of at the next benchmark run. It checks the shape of the output, never
the figures (ratios belong to the bench, not to a test).
"""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

HANG = 300  # a hang guard, not a benchmark
ROW = re.compile(r"^\s*(\d+) \|\s+1\.00 \|\s+([\d.]+) \|\s+([\d.]+) \|\s+(-?[\d,]+) / (-?[\d,]+)"
                 r"\s+\|\s+([\d.]+) / ([\d.]+)\s+\|")


def test_quick_table_prints_one_row_per_badge_count_and_the_targets(admin_dsn):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "badges_per_table.py"),
                           "--quick", "--only", "table", "--dsn", admin_dsn],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any("extra us per insert, 2016 / ours" in line for line in lines), done.stdout
    assert [int(m.group(1)) for m in map(ROW.match, lines) if m] == [1, 10, 40], done.stdout
    targets = [line for line in lines if "(target <=" in line]
    assert len(targets) == 3 and all(line.endswith((" met", " MISSED")) for line in targets), \
        done.stdout
    assert "## 500" not in done.stdout and "## levels" not in done.stdout  # --only table
