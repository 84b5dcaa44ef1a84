"""This tree's triggers against an earlier commit's, on trigger_overhead.py's workloads, in
one interleaved run.

trigger_overhead.py measures the triggers of the tree it runs in, so a target such as "no
worse than generator 7" needs the other generator in the same run. Here each configuration
is a database of its own: none (no trigger), the commit's (installed by that commit's
`core.install.install`, from a temporary git worktree, in a subprocess) and this tree's.
The workloads run interleaved across them statement by statement, the order rotating per
repetition, from the same starting state (trigger_overhead.reset); medians of the
repetitions, as ratios to none and as microseconds per statement over none. The commit's
triggers and this tree's must award the same users, else the run stops.

    python bench/versus_commit.py 7d831fd --dsn postgresql://postgres@127.0.0.1:5432/postgres
    python bench/versus_commit.py 7d831fd --only W2 W4 --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from badge_console.core.demo import scratch_database, scratch_server  # noqa: E402
from badge_databases import rotated  # noqa: E402
from trigger_overhead import QUICK, WORKLOADS, Sizes, awards, reset, statements  # noqa: E402
from trigger_overhead import time_interleaved  # noqa: E402

# Run by the tree being installed, so that its own generator builds the triggers.
FILL = """
import sys
from pathlib import Path
tree, dsn, config, users = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path[:0] = [tree, tree + "/bench"]
from trigger_overhead import Sizes, fill_database
fill_database(dsn, config, Sizes(users=users), Path(tree) / "badge.json")
"""


@contextmanager
def worktree(commit: str):
    """A checkout of `commit` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bc-versus-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                        str(path), commit], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(path)], check=True)


def filled(stack: ExitStack, admin_dsn: str, label: str, tree: Path, sizes: Sizes) -> str:
    dsn = stack.enter_context(scratch_database(admin_dsn, f"bc_vs_{label}"))
    config = "none" if label == "none" else "ours"
    subprocess.run([sys.executable, "-c", FILL, str(tree), dsn, config, str(sizes.users)],
                   check=True)
    return dsn


def measure(admin_dsn: str, commit: str, sizes: Sizes, repeat: int, workloads) -> None:
    with ExitStack() as stack:
        trees = {"none": ROOT, commit: stack.enter_context(worktree(commit)), "this tree": ROOT}
        conns = {label: stack.enter_context(psycopg.connect(
            filled(stack, admin_dsn, str(i), tree, sizes), autocommit=True))
            for i, (label, tree) in enumerate(trees.items())}
        labels = tuple(conns)
        print(f"# this tree vs {commit}, trigger_overhead.py's workloads, {sizes.users} users, "
              f"median of {repeat}")
        print(f"{'workload':<8} {'awards':>6} | " + " | ".join(f"{c:>22}" for c in labels[1:]))
        for w in workloads:
            stmts = statements(w, sizes)
            spent = {c: [] for c in labels}
            for turn in range(repeat):
                order = rotated(labels, turn)
                for c in order:
                    reset(conns[c], w, sizes)
                for c, seconds in time_interleaved(conns, order, stmts).items():
                    spent[c].append(seconds)
                theirs, ours = awards(conns[commit]), awards(conns["this tree"])
                if theirs != ours:
                    raise SystemExit(f"MISMATCH in {w}: {commit} and this tree award differently")
            med = {c: statistics.median(v) for c, v in spent.items()}
            extra = {c: (med[c] - med["none"]) / len(stmts) * 1e6 for c in labels}
            cells = [f"{med[c] / med['none']:6.3f} ({extra[c]:+7.1f} us)" for c in labels[1:]]
            print(f"{w:<8} {len(ours):>6} | " + " | ".join(f"{cell:>22}" for cell in cells))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("commit", help="the earlier commit to compare with (any git revision)")
    ap.add_argument("--dsn", help="admin DSN of a server (default: a temporary embedded PG16)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions (default 5, quick 1)")
    ap.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    repeat = args.repeat or (1 if args.quick else 5)
    with scratch_server(args.dsn, "bc_bench_") as admin:
        measure(admin, args.commit, sizes, repeat, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
