"""Benchmark: the indices of docs/method.md §1 on a large synthetic employment cube.

    python benchmarks/bench_indices.py [--cities 3000] [--years 30] [--industries 100] [--repeat 3]

Prints, per index, the best wall time over ``--repeat`` runs and the peak memory the call
allocated (tracemalloc, measured in a separate run so tracing does not slow the timing), against
the targets: < 5 s and < 2 GB for the whole set (ER, PSS, PSD, coupling). The process's peak
resident set (ru_maxrss) is printed at the end. ``--reader`` also times building the cube from a
long table through :func:`data_prep.readers.read_employment`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402

from data_prep import indices as ix  # noqa: E402

TIME_TARGET_S, MEMORY_TARGET_MB = 5.0, 2048.0


def synthetic_cube(n: int, T: int, K: int, seed: int = 0) -> xr.DataArray:
    """Gamma-distributed employment with a city size factor, industry trends of 0-6 % a year,
    5 % zero cells and one empty industry."""
    rng = np.random.default_rng(seed)
    size = rng.lognormal(5.0, 1.0, size=(n, 1, 1))
    trend = np.exp(np.arange(T)[:, None] * rng.uniform(0.0, 0.06, size=K)[None, :])
    E = rng.gamma(20.0, 0.05, size=(n, T, K))
    E *= size
    E *= trend[None, :, :]
    E[rng.random((n, T, K)) < 0.05] = 0.0
    E[:, :, -1] = 0.0
    return xr.DataArray(E, dims=("city", "year", "industry"),
                        coords={"city": [f"c{i:05d}" for i in range(n)],
                                "year": np.arange(2000, 2000 + T),
                                "industry": [f"i{k:03d}" for k in range(K)]})


def steps(E: xr.DataArray) -> dict:
    """name -> zero-argument callable; the coupling step reuses precomputed ER and PSS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        er = ix.sensitivity_index(E)["ER"]
        pss = ix.relative_specialisation(E)
    return {
        "ER (sensitivity index)": lambda: ix.sensitivity_index(E),
        "PSS (max location quotient)": lambda: ix.relative_specialisation(E),
        "PSD (Shannon diversity)": lambda: ix.shannon_diversity(E),
        "Interact (coupling coordination)": lambda: ix.coupling_coordination(pss, er),
        "PSD alt. (1 - Gini)": lambda: ix.gini_diversity(E),
        "PSS alt. (Krugman)": lambda: ix.krugman_index(E),
    }


def measure(fn, repeat: int) -> tuple[float, float]:
    best = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return best, peak / 2**20


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cities", type=int, default=3000)
    parser.add_argument("--years", type=int, default=30)
    parser.add_argument("--industries", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reader", action="store_true",
                        help="also time read_employment on the equivalent long table")
    args = parser.parse_args(argv)

    E = synthetic_cube(args.cities, args.years, args.industries)
    print(f"employment cube: {args.cities} cities x {args.years} years x {args.industries} "
          f"industries = {E.size:,} cells, {E.nbytes / 2**20:.0f} MB float64")
    rows = []
    for name, fn in steps(E).items():
        seconds, peak = measure(fn, args.repeat)
        rows.append((name, seconds, peak))
    core = rows[:4]
    total_s = sum(r[1] for r in core)
    total_peak = max(r[2] for r in core)
    if args.reader:
        long = E.to_dataframe(name="employment").reset_index()
        from data_prep.readers import read_employment
        seconds, peak = measure(lambda: read_employment(long), 1)
        rows.append(("read_employment (long table -> cube)", seconds, peak))
        del long

    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'index':<{width}}{'wall s':>9}{'peak MB':>10}")
    for name, seconds, peak in rows:
        print(f"{name:<{width}}{seconds:>9.3f}{peak:>10.0f}")
    print(f"{'ER + PSS + PSD + Interact':<{width}}{total_s:>9.3f}{total_peak:>10.0f}"
          f"   targets < {TIME_TARGET_S:.0f} s, < {MEMORY_TARGET_MB / 1024:.0f} GB: "
          f"{'met' if total_s < TIME_TARGET_S and total_peak < MEMORY_TARGET_MB else 'MISSED'}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"process peak resident set (incl. the input cube and interpreter): {rss:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
