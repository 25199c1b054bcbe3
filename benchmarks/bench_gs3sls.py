"""Benchmark of the frequentist GS3SLS estimator (prints a table; not run by CI).

Cases
1. paper-sized two-equation GS3SLS: n = 241 random points, 5-nearest-neighbour W (median of repeats);
2. n = 100,000 with a 6-nearest-neighbour W: wall time and peak memory (tracemalloc peak of the
   estimation itself, and the process peak RSS which also holds the simulated data);
3. single-equation spatial 2SLS at n = 10,000 side by side with spreg ``GM_Lag`` (w_lags = 2).
Targets: < 0.1 s; < 30 s and < 4 GB; ours not slower than spreg.

Usage: python benchmarks/bench_gs3sls.py [--repeats 21] [--big-n 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import statistics
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from data_prep.synthetic.simulate import SystemTruth, default_truth, simulate_system
from models.frequentist import estimate
from models.spec.system import build_system, parse_system


def knn_weights(n: int, k: int, seed: int) -> sp.csr_matrix:
    """Row-standardised k-nearest-neighbour W on n uniform random points (cKDTree)."""
    pts = np.random.default_rng(seed).random((n, 2))
    _, idx = cKDTree(pts).query(pts, k=k + 1)
    rows = np.repeat(np.arange(n), k)
    return sp.csr_matrix((np.full(n * k, 1.0 / k), (rows, idx[:, 1:].ravel())), shape=(n, n))


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def system_case(n: int, k: int, seed: int = 0):
    W = knn_weights(n, k, seed)
    truth = default_truth()
    truth.rho["ER"] = 0.3
    sim = simulate_system(W, truth, seed=seed)
    spec = parse_system(sim.formulas, spatial_errors="ER")
    return sim, spec, W


def against_spreg(n: int, reps: int) -> tuple[float, float, float, float]:
    """One-equation spatial 2SLS on a 6-NN W, ours beside spreg ``GM_Lag`` (w_lags = 2): median
    seconds of build_system, of estimate and of spreg, and the largest coefficient difference."""
    from libpysal.weights import WSP
    from spreg import GM_Lag

    W = knn_weights(n, 6, 1)
    truth = SystemTruth({"y": {"W(y)": 0.4, "Intercept": 1.0, "x1": 1.0, "x2": -0.7}},
                        np.array([[1.0]]))
    sim = simulate_system(W, truth, seed=1)
    spec = parse_system(["y ~ W(y) + x1 + x2"])
    wobj = WSP(W).to_W(silence_warnings=True)
    y = sim.data[["y"]].to_numpy()
    X = sim.data[["x1", "x2"]].to_numpy()
    t_build, system = timed(lambda: build_system(spec, sim.data, weights=W), reps)
    t_fit, ours = timed(lambda: estimate(system, "2sls"), reps)
    with contextlib.redirect_stdout(io.StringIO()):  # spreg prints its class name
        t_spreg, ref = timed(lambda: GM_Lag(y, X, w=wobj, w_lags=2), reps)
    diff = np.max(np.abs(ours.params[[("y", "Intercept"), ("y", "x1"), ("y", "x2"), ("y", "W(y)")]]
                         .to_numpy() - ref.betas.ravel()))
    return t_build, t_fit, t_spreg, float(diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--big-n", type=int, default=100_000)
    args = parser.parse_args()
    rows = []

    sim, spec, W = system_case(241, 5)
    t_both, _ = timed(lambda: estimate(build_system(spec, sim.data, weights=W), "gs3sls"),
                      args.repeats)
    small = build_system(spec, sim.data, weights=W)
    t_fit, _ = timed(lambda: estimate(small, "gs3sls"), args.repeats)
    rows.append(("GS3SLS 2 eq, n=241, 5-NN (build+fit, median)", f"{t_both:.4f} s", "< 0.1 s"))
    rows.append(("  of which estimate() alone (median)", f"{t_fit:.4f} s", ""))

    t0 = time.perf_counter()
    sim, spec, W = system_case(args.big_n, 6)
    t_sim = time.perf_counter() - t0
    tracemalloc.start()
    t0 = time.perf_counter()
    system = build_system(spec, sim.data, weights=W)
    t_build = time.perf_counter() - t0
    res = estimate(system, "gs3sls")
    t_big = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    rows.append((f"GS3SLS 2 eq, n={args.big_n:,}, 6-NN (build+fit)", f"{t_big:.2f} s", "< 30 s"))
    rows.append(("  of which build_system()", f"{t_build:.2f} s", ""))
    rows.append(("  peak traced memory of build+fit", f"{peak / 1024**3:.3f} GB", "< 4 GB"))
    rows.append(("  process peak RSS (incl. simulation)", f"{rss:.3f} GB", "< 4 GB"))
    rows.append(("  (simulating the data, not timed above)", f"{t_sim:.2f} s", ""))
    rows.append(("  rho(ER) estimate (truth 0.3)", f"{res.rho['ER']:.3f}", ""))

    n = 10_000
    t_build, t_fit, t_spreg, diff = against_spreg(n, max(5, args.repeats // 2))
    rows.append((f"spatial 2SLS n={n:,}: ours, estimate() (median)", f"{t_fit:.4f} s", ""))
    rows.append((f"spatial 2SLS n={n:,}: ours, build_system() (median)", f"{t_build:.4f} s", ""))
    rows.append((f"spatial 2SLS n={n:,}: spreg GM_Lag (median)", f"{t_spreg:.4f} s", ""))
    rows.append(("  ratio ours estimate / spreg", f"{t_fit / t_spreg:.2f}", "<= 1"))
    rows.append(("  ratio ours build+estimate / spreg", f"{(t_fit + t_build) / t_spreg:.2f}",
                 "<= 1"))
    rows.append(("  max |coef difference|", f"{diff:.2e}", ""))

    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'measured':>12}  target")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>12}  {target}")


if __name__ == "__main__":
    main()
