"""Exploratory spatial analysis (docs/method.md §7, paper's Figures 1–3): Moran's I and scatter plots.

Moran's I = (n / S0) · z'Wz / z'z with z the deviations from the mean and S0 the sum of the
weights (Moran 1950; Anselin 1995 for the scatter plot). Inference is by random permutation of
the values over the cities (esda.Moran, ``permutations`` draws): ``p_value`` is esda's
one-sided pseudo p-value (M + 1) / (permutations + 1), M the number of permuted I at least as
extreme as the observed one, and ``z`` the observed I standardised by the permutation mean and sd.
esda draws from NumPy's global generator, so each call is seeded and the caller's global random
state is restored afterwards.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from data_prep.errors import InputError
from data_prep.files import atomic_write
from data_prep.weights import SpatialWeights, row_standardise, weights_from_dataset


def city_values(ds: xr.Dataset, variable: str, year) -> np.ndarray:
    """Per-city values: one year, or the period mean over the defined years (year=None/'mean')."""
    if variable not in ds.variables:
        raise InputError(f"the dataset has no variable {variable!r}")
    da = ds[variable]
    if "city" not in da.dims:
        raise InputError(f"variable {variable!r} has no 'city' dimension")
    if "year" in da.dims:
        if year is None or year == "mean":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cities reported below
                da = da.mean("year", skipna=True)
        else:
            if int(year) not in set(int(y) for y in ds["year"].values):
                raise InputError(f"year {year} is not in the dataset")
            da = da.sel(year=int(year))
    return np.asarray(da.transpose("city").values, dtype=float)


def subset_matrix(weights: SpatialWeights, keep: np.ndarray) -> sp.csr_matrix:
    """W restricted to the kept cities, re-row-standardised when W is row-standardised."""
    M = weights.matrix[keep][:, keep]
    return row_standardise(M) if weights.transform == "R" else sp.csr_matrix(M)


def _moran(y: np.ndarray, M: sp.csr_matrix, transform: str, permutations: int, seed: int):
    import esda
    from libpysal.weights import W as LibW

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal's island notes; islands are reported upstream
        M = sp.csr_matrix(M)
        # explicit ids keep cities without neighbours (W.from_sparse would drop a trailing one)
        neighbours = {r: M.indices[M.indptr[r]:M.indptr[r + 1]].tolist() for r in range(M.shape[0])}
        values = {r: M.data[M.indptr[r]:M.indptr[r + 1]].tolist() for r in range(M.shape[0])}
        w = LibW(neighbours, values, id_order=list(range(M.shape[0])), silence_warnings=True)
        state = np.random.get_state()
        try:
            np.random.seed(seed)
            return esda.Moran(y, w, transformation=transform.lower(), permutations=permutations)
        finally:
            np.random.set_state(state)


def morans_i(ds: xr.Dataset, variables=("ER", "PSS", "PSD"), permutations: int = 999,
             seed: int = 0) -> pd.DataFrame:
    """Global Moran's I per year and for the cross-section period mean (year = "mean").

    Uses the weights stored in ``ds``. Years in which a variable is entirely missing (ER in the
    last year) are skipped; cities missing in a year are dropped from that year's test (W restricted
    to the others, with a warning). Columns: variable, year, I, expected_I, z, p_value.
    """
    if permutations < 1:
        raise InputError(f"permutations must be at least 1, not {permutations}")
    weights = weights_from_dataset(ds)
    rows = []
    for variable in variables:
        if variable not in ds.variables:
            raise InputError(f"the dataset has no variable {variable!r}")
        years = [int(y) for y in ds["year"].values] if "year" in ds[variable].dims else []
        for year in years + ["mean"]:
            y = city_values(ds, variable, year)
            ok = np.isfinite(y)
            if not ok.any():
                continue
            if ok.sum() < 3:
                raise InputError(f"{variable} ({year}): fewer than 3 cities with values")
            M = weights.matrix
            if not ok.all():
                missing = [weights.cities[i] for i in np.flatnonzero(~ok)]
                warnings.warn(f"Moran's I of {variable} ({year}) leaves out {len(missing)} "
                              f"cities without a value: {', '.join(missing[:5])}", stacklevel=2)
                M = subset_matrix(weights, np.flatnonzero(ok))
            if np.std(y[ok]) == 0:
                raise InputError(f"{variable} ({year}) is constant over the cities; "
                                 f"Moran's I is undefined")
            m = _moran(y[ok], M, weights.transform, permutations, seed)
            rows.append({"variable": variable, "year": year, "I": float(m.I),
                         "expected_I": float(m.EI), "z": float(m.z_sim),
                         "p_value": float(m.p_sim)})
    out = pd.DataFrame(rows, columns=["variable", "year", "I", "expected_I", "z", "p_value"])
    out["year"] = out["year"].astype(object)
    return out


def moran_scatter(ds: xr.Dataset, variable: str, path, year=None) -> float:
    """Write a Moran scatter plot (PNG): standardised value vs its spatial lag, with quadrants.

    The lag uses the row-standardised W, so the fitted slope equals Moran's I with
    row-standardised weights, which is returned and printed in the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    weights = weights_from_dataset(ds)
    y = city_values(ds, variable, year)
    ok = np.isfinite(y)
    if ok.sum() < 3:
        raise InputError(f"{variable}: fewer than 3 cities with values")
    W = row_standardise(weights.matrix[np.flatnonzero(ok)][:, np.flatnonzero(ok)])
    z = (y[ok] - y[ok].mean()) / y[ok].std()
    lag = W @ z
    slope = float(z @ lag / (z @ z))
    label = "period mean" if year in (None, "mean") else str(year)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(z, lag, s=14, alpha=0.7, color="tab:blue", edgecolor="none")
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    grid = np.linspace(z.min(), z.max(), 2)
    ax.plot(grid, slope * grid, color="tab:red", lw=1.2)
    for text, (fx, fy) in {"HH": (0.95, 0.95), "LH": (0.05, 0.95), "LL": (0.05, 0.05),
                           "HL": (0.95, 0.05)}.items():
        ax.text(fx, fy, text, transform=ax.transAxes, ha="center", va="center", color="grey")
    ax.set_xlabel(f"{variable} (standardised)")
    ax.set_ylabel(f"spatial lag of {variable}")
    ax.set_title(f"Moran scatter plot of {variable}, {label}: I = {slope:.3f}")
    fig.tight_layout()

    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    finally:
        plt.close(fig)
    return slope
