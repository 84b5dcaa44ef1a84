"""Run every benchmark script and rewrite bench/README.md with their latest output.

    python bench/run_all.py            # full sizes (about 10-15 minutes on 2 cores)
    python bench/run_all.py --quick    # smoke run, passes --quick where a script has it

Scripts that do not exist (yet) are listed as absent; a script that fails is recorded
with its error, and the others still run. Extra arguments after `--` go to every script
(e.g. `-- --dsn postgresql://...`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = [  # (file, what it measures, accepts --quick)
    ("trigger_overhead.py", "Trigger overhead on the application's writes (issue 7)", True),
    ("startup.py", "Start-up time of the CLI and the TUI", False),
    ("feed_latency.py", "Live feed latency", True),
    ("browse.py", "Browsing large tables", True),
    ("concurrency.py", "Sixteen concurrent writers, awards at commit and by reconcile "
                       "(issue 14)", True),
    ("badges_per_table.py", "Many badges on one table, and install, validate and backfill "
                            "of many badges (issue 18)", True),
]
USAGE = re.compile(r"^    (python bench/\S+\.py.*)$", re.MULTILINE)
INTRO = """# Benchmarks

Every script prints ratios measured side by side in one run (never absolute thresholds
in the test suite). This file is rewritten by `python bench/run_all.py`; the figures
below are its latest run.
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, " \
           f"Python {platform.python_version()}"


def usage(script: Path) -> str:
    """How to run the script, as its docstring says (the indented `python bench/...` lines),
    so that the section keeps saying it when this file is rewritten."""
    text = script.read_text(encoding="utf-8")
    docstring = text.split('"""')[1] if text.count('"""') >= 2 else ""
    lines = USAGE.findall(docstring)
    return "Run it:\n\n```\n" + "\n".join(lines) + "\n```\n\n" if lines else ""


def run(script: Path, args: list[str]) -> tuple[str, float, int]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(script), *args], cwd=BENCH.parent,
                          capture_output=True, text=True)
    out = done.stdout.rstrip()
    if done.returncode != 0:
        out += "\n" + "\n".join(done.stderr.rstrip().splitlines()[-15:])
    return out, time.perf_counter() - start, done.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("extra", nargs="*", help="arguments for every script (after --)")
    args = ap.parse_args(argv)
    sections, failed = [], 0
    for name, title, has_quick in SCRIPTS:
        script = BENCH / name
        if not script.exists():
            sections.append(f"## {title} (`bench/{name}`)\n\nNot present yet.\n")
            continue
        script_args = (["--quick"] if args.quick and has_quick else []) + args.extra
        print(f"running {name} {' '.join(script_args)}", flush=True)
        out, took, code = run(script, script_args)
        failed += code != 0
        status = "" if code == 0 else f" — FAILED (exit {code})"
        command = " ".join(["python", f"bench/{name}", *script_args])
        sections.append(f"## {title} (`bench/{name}`){status}\n\n{usage(script)}"
                        f"`{command}` ({took:.0f} s)\n\n```\n{out}\n```\n")
        print(out, flush=True)
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    header = f"{INTRO}\nLast run: {stamp} on {machine()}" + \
             (" (quick sizes)" if args.quick else "") + "\n"
    notes = (BENCH / "NOTES.md").read_text() if (BENCH / "NOTES.md").exists() else ""
    (BENCH / "README.md").write_text(header + "\n" + "\n".join(sections) +
                                     (f"\n{notes}" if notes else ""), encoding="utf-8")
    print(f"wrote {BENCH / 'README.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
