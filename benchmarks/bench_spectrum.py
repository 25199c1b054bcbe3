"""Benchmark: full spectrum of a row-standardised W, symmetric route vs the general route.

Prints, for rook lattices of growing size, the seconds taken by ``eigenvalues`` (eigvalsh on the
symmetric similar form D^{1/2} W D^{-1/2}) and by ``scipy.linalg.eigvals`` on W itself, their
ratio, and the largest difference between the sorted spectra.

    python benchmarks/bench_spectrum.py [--sides 10 20 40]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg as la

from data_prep.synthetic.simulate import lattice_weights
from data_prep.spectrum.exact import eigenvalues


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    print(f"{'n':>6} {'symmetric s':>12} {'general s':>10} {'ratio':>7} {'max |diff|':>11}")
    for side in args.sides:
        w = lattice_weights(side, "rook")
        t0 = time.perf_counter()
        sym = eigenvalues(w)
        t1 = time.perf_counter()
        gen = la.eigvals(w.matrix.toarray())
        t2 = time.perf_counter()
        diff = np.max(np.abs(np.sort(sym) - np.sort(gen.real)))
        print(f"{side * side:>6} {t1 - t0:>12.3f} {t2 - t1:>10.3f} {(t2 - t1) / (t1 - t0):>7.1f} "
              f"{diff:>11.2e}")


if __name__ == "__main__":
    main()
