"""Benchmark: quadrature log-determinant against the exact spectrum (and its cost at large n).

For a side × side rook lattice or a 6-nearest-neighbour relation made symmetric by union (random
points in the unit square, fixed seed), both row-standardised, it times the exact dense spectrum
and the Chebyshev / Lanczos quadratures of ``data_prep.spectrum.quadrature``, and reports the largest
relative error of log|I − ρW| = Σ log(1 − ρλ) over a ρ grid on the admissible region: ``points``
equally spaced values between 0.99/λ_min and 0.99/λ_max (the exact extremes), leaving out
|ρ| < 0.05 where log|I − ρW| ≈ −ρ² tr(W²)/2 is nearly 0 and a relative error means little.
For the binary rook lattice (``rook_binary``) the closed form 2cos(πa/(N+1)) + 2cos(πb/(N+1))
is the exact reference at any n (e.g. n = 100,000, beyond the dense limit).

    python benchmarks/bench_quadrature.py [--sides 70] [--relations rook knn6 rook_binary]
        [--methods chebyshev lanczos] [--no-exact]   # --no-exact: timing only

``logdet_accuracy(side, method, ...)`` returns one row as a dict for other benchmark drivers.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

RELATIONS = ("rook", "knn6", "rook_binary")


def benchmark_weights(side: int, relation: str = "rook", seed: int = 0):
    """The benchmark's W (SpatialWeights) with n = side²."""
    from data_prep.synthetic.simulate import lattice_weights
    from data_prep.weights import weights_from_coordinates

    if relation == "rook":
        return lattice_weights(side, "rook")
    if relation == "rook_binary":
        import scipy.sparse as sp

        w = lattice_weights(side, "rook")
        return dataclasses.replace(w, matrix=sp.csr_matrix((w.matrix != 0).astype(float)),
                                   transform="B")
    if relation == "knn6":
        n = side * side
        xy = np.random.default_rng(seed).random((n, 2))
        cities = [f"c{i}" for i in range(n)]
        return weights_from_coordinates(xy, cities, k=6, symmetrise="union")
    raise ValueError(f"relation must be one of {RELATIONS}, not {relation!r}")


def closed_form_eigenvalues(side: int) -> np.ndarray:
    """Eigenvalues of the binary rook lattice: 2cos(πa/(N+1)) + 2cos(πb/(N+1)), a, b = 1..N
    (the Kronecker sum of two path graphs) — an exact reference at any n."""
    c = 2.0 * np.cos(np.pi * np.arange(1, side + 1) / (side + 1))
    return np.sort((c[:, None] + c[None, :]).ravel())


def rho_grid(lam_min: float, lam_max: float, points: int = 41) -> np.ndarray:
    """``points`` values between 0.99/λ_min and 0.99/λ_max, without |ρ| < 0.05."""
    rho = np.linspace(0.99 / lam_min, 0.99 / lam_max, points)
    return rho[np.abs(rho) >= 0.05]


def logdet_error(nodes, weights, eigenvalues, rho) -> tuple[float, float]:
    """(max relative error, ρ where it occurs) of Σ τ log(1 − ρθ) against Σ log(1 − ρλ)."""
    exact = np.array([np.sum(np.log1p(-r * eigenvalues)) for r in rho])
    approx = np.array([np.sum(weights * np.log1p(-r * nodes)) for r in rho])
    rel = np.abs(approx - exact) / np.abs(exact)
    return float(rel.max()), float(rho[rel.argmax()])


def logdet_accuracy(side: int, method: str = "chebyshev", *, relation: str = "rook",
                    points: int = 41, seed: int = 0, exact: bool = True, eigenvalues=None,
                    **options) -> dict:
    """One benchmark row: seconds of the spectrum by ``method`` and (with ``exact``) of the
    dense spectrum, and the largest relative log-det error over :func:`rho_grid`.

    ``options`` go to :func:`data_prep.spectrum.chooser.spectrum` (degree, probes, steps, deflate);
    ``eigenvalues`` reuses an exact spectrum already computed for the same W.
    """
    from data_prep.spectrum.extremes import extreme_eigenvalues
    from data_prep.spectrum.chooser import spectrum
    from data_prep.spectrum.exact import eigenvalues as dense_eigenvalues

    w = benchmark_weights(side, relation, seed)
    row = {"n": w.n, "relation": relation, "method": method}
    t0 = time.perf_counter()
    result = spectrum(w.matrix, method=method, threshold=0, seed=seed, **options)
    row["seconds"] = time.perf_counter() - t0
    row["nodes"] = int(result.nodes.size)
    row.update({k: v for k, v in result.details.items()
                if k in ("exact_order", "gauss_nodes", "probes", "degree", "steps")})
    if exact:
        if eigenvalues is None and relation == "rook_binary":
            eigenvalues = closed_form_eigenvalues(side)
        elif eigenvalues is None:
            t0 = time.perf_counter()
            eigenvalues = dense_eigenvalues(w)
            row["seconds_exact"] = time.perf_counter() - t0
        lam = np.real(eigenvalues)
        lo, hi = extreme_eigenvalues(w.matrix)
        row["extreme_error"] = float(max(abs(lo - lam.min()), abs(hi - lam.max())))
        row["max_rel_error"], row["rho_at_max"] = logdet_error(
            result.nodes, result.weights if result.weights is not None else 1.0, lam,
            rho_grid(lam.min(), lam.max(), points))
        row["eigenvalues"] = eigenvalues
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[70])
    parser.add_argument("--relations", nargs="+", default=["rook", "knn6"], choices=RELATIONS)
    parser.add_argument("--methods", nargs="+", default=["chebyshev", "lanczos"])
    parser.add_argument("--no-exact", action="store_true", help="timing only, no dense spectrum")
    args = parser.parse_args()
    print(f"{'n':>7} {'relation':>8} {'method':>9} {'seconds':>8} {'exact s':>8} "
          f"{'max rel err':>11} {'at rho':>7} {'nodes':>6}")
    for side in args.sides:
        for relation in args.relations:
            eigs, exact_s = None, float("nan")
            for method in args.methods:
                row = logdet_accuracy(side, method, relation=relation, exact=not args.no_exact,
                                      eigenvalues=eigs)
                eigs = row.pop("eigenvalues", None)
                exact_s = row.get("seconds_exact", exact_s)
                print(f"{row['n']:>7} {relation:>8} {method:>9} {row['seconds']:>8.2f} "
                      f"{exact_s:>8.1f} {row.get('max_rel_error', float('nan')):>11.2e} "
                      f"{row.get('rho_at_max', float('nan')):>7.3f} {row['nodes']:>6}",
                      flush=True)


if __name__ == "__main__":
    main()
