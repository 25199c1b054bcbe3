"""Monte Carlo coverage of heteroskedasticity-robust vs homoskedastic GS3SLS 95 % intervals.

Design: ``models.simulation.het_coverage`` (two-equation spatial system, SAR errors in the
first equation, error variance proportional to the positive covariate exp(x1), n = 400 rook
lattice). Target (issue 19): the robust intervals cover 93–97 % for every coefficient while
the homoskedastic ones under-cover. Prints the per-coefficient table with met / not met.

Usage: python benchmarks/bench_heteroskedastic.py [--replications 1000] [--side 20] [--seed 2023]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from models.simulation.het_coverage import coverage_table

TARGET = (0.93, 0.97)


def coverage_rows(replications: int = 1000, side: int = 20,
                  seed: int = 2023) -> tuple[pd.DataFrame, float]:
    """The coverage table with a ``met`` column (robust share inside ``TARGET``) and the
    wall time in seconds."""
    t0 = time.perf_counter()
    table = coverage_table(replications, side, seed)
    seconds = time.perf_counter() - t0
    lo, hi = TARGET
    return table.assign(met=table["robust"].between(lo, hi)), seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=1000)
    ap.add_argument("--side", type=int, default=20, help="lattice side (n = side²)")
    ap.add_argument("--seed", type=int, default=2023)
    args = ap.parse_args(argv)
    table, seconds = coverage_rows(args.replications, args.side, args.seed)
    shown = table.assign(robust=100 * table["robust"],
                         homoskedastic=100 * table["homoskedastic"],
                         met=table["met"].map({True: "met", False: "not met"}))
    print(f"95 % interval coverage (%), {args.replications} replications, "
          f"n = {args.side ** 2}, {seconds:.0f} s; target robust in "
          f"{100 * TARGET[0]:.0f}-{100 * TARGET[1]:.0f} %")
    print(shown.drop(columns="replications").to_string(index=False, float_format="%.1f",
                                                       na_rep="-"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
