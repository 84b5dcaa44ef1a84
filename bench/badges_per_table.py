"""What many badges on one table cost a write, and the operations on many badges (issue 18).

Regenerates the table of issue 18 in one interleaved run: N in {1, 10, 40} insert badges
on dummy_sketch (half `NEW.hit_views >= T`, half `count(id) >= K from dummy_sketch where
user_id = NEW.user_id`, T and K distinct per badge: bench/badge_sets.py), three
configurations in databases of their own: no trigger, the 2016 design (one FOR EACH ROW
trigger per badge: NOT EXISTS (award) AND (condition), INSERT award, pg_notify;
trigger_overhead.py's install_seed) and ours (core.install.install of the same badges, so
the bench measures whatever generator the branch it runs on has). Workloads: 2,000 one-row
autocommit inserts over 200 users (statements interleaved across the configurations) and
one 50,000-row INSERT ... SELECT. Every round rotates the order of the configurations;
medians of the rounds are printed, and after each workload the 2016 design and ours must
hold exactly the same awards. Every workload starts from empty tables with the award
table ANALYZEd while empty (the planner trap of PERF-NOTES.md, as trigger_overhead.py
measures it too: our SQL must stay fast in that state, the 2016 design's probe may not).
Then:
  500       a one-row insert with 500 badges installed (ours) against no trigger;
  levels    Collector bronze/silver/gold at 5/50/500 as three badges, as one series
            (`value` + `levels`, SPEC 2; "not supported" when this build's loader refuses
            it) and Collector alone: extra us per one-row insert;
  install   install of 500 badges: wall time, and the longest one-row insert of a writer
            looping on the table meanwhile (the stall);
  validate  `badge-console validate` of 2,000 badges against the database (subprocess);
  backfill  `backfill` of Collector over R sketches against one plain INSERT ... SELECT
            awarding the same users (the floor).
Each figure is printed with its target of issue 18 and "met" or "MISSED".

    python bench/badges_per_table.py --dsn postgresql://postgres@127.0.0.1:5432/postgres
    python bench/badges_per_table.py --quick --only table     # smoke run, small sizes
    python bench/badges_per_table.py --only backfill --rows 1000000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from badge_console.core.demo import scratch_server  # noqa: E402
from badge_databases import configure, empty, prepared, rotated, same_awards  # noqa: E402
from badge_operations import (measure_backfill, measure_install,  # noqa: E402
                              measure_validate, verdict)
from badge_sets import (collector_levels_as_badges, collector_one_badge,  # noqa: E402
                        collector_series, mixed_badges)
from trigger_overhead import time_interleaved  # noqa: E402

PARTS = ("table", "500", "levels", "install", "validate", "backfill")
DESIGNS = ("none", "2016", "ours")
NS = (1, 10, 40)


@dataclass(frozen=True)
class Sizes:
    users: int = 200
    one_row: int = 2000  # one-row inserts of the table and the levels case
    bulk: int = 50_000  # rows of the INSERT ... SELECT
    many: int = 500  # badges of the 500-badge point and of install
    one_row_many: int = 200  # one-row inserts at 500 badges (20-35 ms each on main)
    validate: int = 2000  # badges validated
    rows: int = 5_000_000  # sketches backfilled
    backfill_users: int = 2000


QUICK = Sizes(users=20, one_row=100, bulk=2000, many=50, one_row_many=20, validate=200,
              rows=50_000, backfill_users=200)


def one_row(sizes: Sizes) -> list[tuple[str, tuple]]:
    """One-row inserts over the users; one in 97 carries 999 views (it earns the Star-like
    badges, the others earn nothing): awards stay rare, as in an application."""
    return [("INSERT INTO dummy_sketch (user_id, title, hit_views) VALUES (%s, %s, %s)",
             (1 + (i * 7) % sizes.users, f"one {i}", 999 if i % 97 == 0 else 0))
            for i in range(sizes.one_row)]


def bulk(sizes: Sizes) -> list[tuple[str, tuple]]:
    return [("INSERT INTO dummy_sketch (user_id, title, hit_views)"
             " SELECT 1 + (i %% %s), 'Sketch ' || i, (i * 131) %% 997"
             " FROM generate_series(0, %s - 1) AS i", (sizes.users, sizes.bulk))]


def rounds_of(conns: dict, configs: tuple[str, ...], stmts, rounds: int, check=None
              ) -> dict[str, float]:
    """Median seconds per configuration over `rounds` rounds, each from empty tables, the
    configurations' order rotating; `check(conns)` runs after each round."""
    spent: dict[str, list[float]] = {c: [] for c in configs}
    for turn in range(rounds):
        order = rotated(configs, turn)
        for cfg in order:
            empty(conns[cfg])
        for cfg, seconds in time_interleaved(conns, order, stmts).items():
            spent[cfg].append(seconds)
        if check:
            check(conns)
    return {c: statistics.median(v) for c, v in spent.items()}


def connected(stack: ExitStack, admin_dsn: str, users: int, badges: dict[str, list]) -> dict:
    """An autocommit connection per configuration, each to its own database holding
    that configuration's badges (design "none" when the list is empty)."""
    conns = {}
    for label, installed in badges.items():
        dsn = prepared(stack, admin_dsn, label, users)
        configure(dsn, label if label in DESIGNS else "ours" if installed else "none", installed)
        conns[label] = stack.enter_context(psycopg.connect(dsn, autocommit=True))
    return conns


# --------------------------------------------------------------------------- the table
def measure_table(admin_dsn: str, sizes: Sizes, rounds: int) -> None:
    rows = {}
    for n in NS:
        with ExitStack() as stack:
            badges = mixed_badges(n)
            conns = connected(stack, admin_dsn, sizes.users,
                              {"none": [], "2016": badges, "ours": badges})
            awarded = {}

            def check(c, what):
                awarded[what] = same_awards(c, "2016", "ours", f"N={n} {what}")
            single = rounds_of(conns, DESIGNS, one_row(sizes), rounds,
                               lambda c: check(c, "one-row"))
            whole = rounds_of(conns, DESIGNS, bulk(sizes), rounds, lambda c: check(c, "bulk"))
            rows[n] = single, whole, awarded
    print(f"## {sizes.one_row:,} one-row inserts over {sizes.users} users and one "
          f"{sizes.bulk:,}-row INSERT ... SELECT, N insert badges on dummy_sketch "
          f"(median of {rounds})")
    print(f"{'N':>3} | {'one-row: none':>13} | {'2016':>6} | {'ours':>6} | "
          f"{'extra us per insert, 2016 / ours':>32} | {'bulk: 2016 / ours vs none':>25} |"
          f" none: us per insert / bulk ms | awards one-row / bulk")
    extra = {}
    for n, (single, whole, awarded) in rows.items():
        extra[n] = {d: (single[d] - single["none"]) / sizes.one_row * 1e6 for d in DESIGNS}
        ratio = {d: single[d] / single["none"] for d in DESIGNS}
        print(f"{n:>3} | {1:>13.2f} | {ratio['2016']:>6.2f} | {ratio['ours']:>6.2f} | "
              f"{extra[n]['2016']:>15,.0f} / {extra[n]['ours']:<14,.0f} | "
              f"{whole['2016'] / whole['none']:>11.2f} / {whole['ours'] / whole['none']:<11.2f} |"
              f" {single['none'] / sizes.one_row * 1e6:>12,.0f} / {whole['none'] * 1000:<7,.0f} |"
              f" {awarded['one-row']} / {awarded['bulk']}")
    top, low = max(NS), min(NS)
    flat = extra[top]["ours"] / extra[low]["ours"] if extra[low]["ours"] > 0 else float("inf")
    print(f"ours, extra at N={top} / extra at N={low}: {flat:.2f} (target <= 4) "
          f"{verdict(flat <= 4)}")
    versus = extra[top]["ours"] / extra[top]["2016"]
    print(f"ours / 2016, extra at N={top}: {versus:.2f} (target <= 0.2) {verdict(versus <= 0.2)}")
    whole = rows[top][1]
    print(f"ours bulk at N={top} vs none: {whole['ours'] / whole['none']:.2f} (target <= 1.5) "
          f"{verdict(whole['ours'] / whole['none'] <= 1.5)}")


# --------------------------------------------------------------------------- 500 badges
def measure_many(admin_dsn: str, sizes: Sizes, rounds: int) -> None:
    with ExitStack() as stack:
        conns = connected(stack, admin_dsn, sizes.users,
                          {"none": [], "ours": mixed_badges(sizes.many)})
        triggers = conns["ours"].execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'dummy_sketch'::regclass"
            " AND NOT tgisinternal").fetchone()[0]
        stmts = one_row(Sizes(users=sizes.users, one_row=sizes.one_row_many))
        spent = rounds_of(conns, ("none", "ours"), stmts, rounds)
    ms = {c: s / len(stmts) * 1000 for c, s in spent.items()}
    print(f"## {sizes.many} badges on dummy_sketch (ours: {triggers} triggers on the table), "
          f"{len(stmts)} one-row inserts (median of {rounds})")
    print(f"one-row insert: none {ms['none']:.2f} ms, ours {ms['ours']:.2f} ms "
          f"(target <= 3 ms) {verdict(ms['ours'] <= 3)}")


# --------------------------------------------------------------------------- levels
def measure_levels(admin_dsn: str, sizes: Sizes, rounds: int) -> None:
    series, objection = collector_series()
    configs = {"none": [], "three": collector_levels_as_badges(), "one": collector_one_badge(),
               "unheld": collector_one_badge(at=500)}
    if series:
        configs["series"] = series
    with ExitStack() as stack:
        conns = connected(stack, admin_dsn, sizes.users, configs)
        check = (lambda c: same_awards(c, "three", "series", "levels")) if series else None
        spent = rounds_of(conns, tuple(configs), one_row(sizes), rounds, check)
        same = series and _functions(conns["three"]) == _functions(conns["series"])
    extra = {c: (s - spent["none"]) / sizes.one_row * 1e6 for c, s in spent.items()}
    print(f"## levels: Collector bronze/silver/gold at 5/50/500, {sizes.one_row:,} one-row "
          f"inserts over {sizes.users} users, extra us per insert over none "
          f"({spent['none'] / sizes.one_row * 1e6:.0f} us; median of {rounds})")
    print(f"three plain badges: {extra['three']:,.0f} us; one badge (Collector at 5): "
          f"{extra['one']:,.0f} us; three / one: {extra['three'] / extra['one']:.2f}")
    if not series:
        print("series: not supported by this build")
        print(f"  (the loader says: {objection})")
        return
    ratio = extra["series"] / extra["one"]
    print(f"series of 3 levels: {extra['series']:,.0f} us; series / one badge: {ratio:.2f} "
          f"(target <= 1.2) {verdict(ratio <= 1.2)}")
    print(f"  one badge no user reaches here (Collector at 500): {extra['unheld']:,.0f} us; "
          f"series / that badge: {extra['series'] / extra['unheld']:.2f} (like for like: "
          f"every write of both asks the count; Collector at 5 stops asking once held)")
    if same:
        print(f"  three plain badges and the series install the same trigger function: "
              f"series / three, {extra['series'] / extra['three']:.2f}, is this run's noise")


def _functions(conn) -> list[str]:
    """The bodies of the trigger functions installed in this configuration's database."""
    return [r[0] for r in conn.execute(
        "SELECT p.prosrc FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid"
        " WHERE NOT t.tgisinternal ORDER BY t.tgname")]


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", help="admin DSN of a server (default: a temporary embedded PG16)")
    ap.add_argument("--quick", action="store_true", help="small sizes and one round (smoke)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, quick 1)")
    ap.add_argument("--rows", type=int, default=None,
                    help="sketches the backfill runs over (default 5,000,000)")
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                    help="run only these parts")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    if args.rows:
        sizes = replace(sizes, rows=args.rows)
    rounds = args.rounds or (1 if args.quick else 3)
    started = time.perf_counter()
    with scratch_server(args.dsn, "bc_bench_") as admin_dsn:
        with psycopg.connect(admin_dsn) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
        print(f"# badges per table — PostgreSQL {version}"
              f"{' (quick sizes)' if args.quick else ''}", flush=True)
        parts = {"table": lambda: measure_table(admin_dsn, sizes, rounds),
                 "500": lambda: measure_many(admin_dsn, sizes, rounds),
                 "levels": lambda: measure_levels(admin_dsn, sizes, rounds),
                 "install": lambda: measure_install(admin_dsn, sizes, rounds),
                 "validate": lambda: measure_validate(admin_dsn, sizes, rounds),
                 "backfill": lambda: measure_backfill(admin_dsn, sizes)}
        for part in PARTS:
            if part in args.only:
                parts[part]()
                sys.stdout.flush()
    print(f"total {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
