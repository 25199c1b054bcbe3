"""Figure of a fitted quadratic: the curve in A with its band, the turning point, a data rug.

The curve is the fitted mean with A varied over its observed range and every other regressor
(including W·y with a spatial lag) held at its sample mean: f(a) = z(a)'b with
z(a) = (z̄ with the A entry set to a and the A² entry to a²). Band: pointwise 95 % confidence
interval z'b ± q·√(z'Vz) for OLS / spatial 2SLS (q from the fit's t or normal distribution),
pointwise 94 % highest-density interval of the draws z'b_s for the posterior.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.quadratic import QuadraticData  # noqa: E402

GRID = 200


def curve_design(data: QuadraticData, grid: np.ndarray) -> np.ndarray:
    """Rows z(a) for a in ``grid``: column means of Z with A → a and A² → a²."""
    terms = list(data.terms)
    Z = np.tile(data.design().mean(axis=0), (grid.size, 1))
    Z[:, terms.index(data.term)] = grid
    Z[:, terms.index(data.square)] = grid ** 2
    return Z


def curve_band_frequentist(data: QuadraticData, fit, grid: np.ndarray):
    """(fit, low, high) of the 95 % pointwise confidence band of an OLS / spatial 2SLS fit."""
    from models.frequentist.quadratic import critical_value

    Z = curve_design(data, grid)
    b = fit.coefficients["estimate"].to_numpy(dtype=float)
    mid = Z @ b
    half = critical_value(fit.df) * np.sqrt(np.einsum("ij,jk,ik->i", Z, fit.cov, Z))
    return mid, mid - half, mid + half


def curve_band_posterior(data: QuadraticData, idata, grid: np.ndarray, hdi_prob: float = 0.94):
    """(posterior mean, low, high) of the curve; pointwise HDI of the draws z'b_s."""
    import arviz as az

    coef = idata.posterior["coef"].isel(equation=0).sel(term=list(data.terms))
    B = coef.stack(sample=("chain", "draw")).transpose("sample", "term").values
    draws = B @ curve_design(data, grid).T                    # (S, grid)
    hdi = az.hdi(draws[None, :, :], hdi_prob=hdi_prob)        # (grid, 2)
    return draws.mean(axis=0), hdi[:, 0], hdi[:, 1]


def quadratic_figure(data: QuadraticData, *, fit=None, idata=None,
                     turning_point: float | None = None):
    """The curve figure (a matplotlib Figure); give ``fit`` (frequentist) or ``idata``."""
    lo, hi = data.range
    grid = np.linspace(lo, hi, GRID)
    if idata is not None:
        mid, low, high = curve_band_posterior(data, idata, grid)
        band, what, mark = "94 % HDI", "posterior mean", "turning point (posterior median)"
    else:
        mid, low, high = curve_band_frequentist(data, fit, grid)
        band, what, mark = "95 % CI", fit.method, "turning point"
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(grid, low, high, color="tab:blue", alpha=0.25, label=band)
    ax.plot(grid, mid, color="tab:blue", label=what)
    if turning_point is not None and lo <= turning_point <= hi:
        ax.axvline(turning_point, color="tab:red", ls="--",
                   label=f"{mark} {turning_point:.3g}")
    elif turning_point is not None and np.isfinite(turning_point):
        ax.set_title(f"turning point {turning_point:.3g} lies outside the observed range",
                     fontsize=9)
    ax.plot(data.values, np.full(data.values.size, 0.0), "|", color="black", alpha=0.5,
            markersize=10, transform=ax.get_xaxis_transform(), label="data")
    others = "W·y and the other regressors" if data.spatial_lag else "the other regressors"
    ax.set_xlabel(data.term)
    ax.set_ylabel(f"fitted {data.outcome} ({others} at their means)", fontsize=8)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> Path:
    """Write ``fig`` as PNG through a temporary file, then close it."""
    from common.files import save_figure as save

    return save(fig, path, dpi=120)


def plot_quadratic(data: QuadraticData, path, *, fit=None, idata=None,
                   turning_point: float | None = None) -> Path:
    """Write the curve figure to ``path`` (PNG); give ``fit`` (frequentist) or ``idata``."""
    return save_figure(quadratic_figure(data, fit=fit, idata=idata,
                                        turning_point=turning_point), path)
