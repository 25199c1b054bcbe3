"""Figure of a fitted quadratic: the curve in A with its band, the turning point, a data rug.

The curve is the fitted mean with A varied over its observed range [x_l, x_h] (shaded), widened
by 10 % on each side, and every other regressor
(including W·y with a spatial lag) held at its sample mean: f(a) = z(a)'b with
z(a) = (z̄ with the A entry set to a and the A² entry to a²). Band: pointwise 95 % confidence
interval z'b ± q·√(z'Vz) for OLS / spatial 2SLS (q from the fit's t or normal distribution),
pointwise 94 % highest-density interval of the draws z'b_s for the posterior. Turning points
θ = −c1/(2c2) are marked by vertical lines: the posterior median with its 94 % HDI shaded, and
the OLS / spatial 2SLS estimate when that fit is given too.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from data_prep.files import save_figure as save  # noqa: E402
from models.bayes.idata import coef_grid  # noqa: E402
from models.frequentist.quadratic import critical_value  # noqa: E402
from models.spec.quadratic import QuadraticData  # noqa: E402

GRID = 200
PAD = 0.1          # share of the observed range added on each side of the plot
HDI_PROB = 0.94


def curve_design(data: QuadraticData, grid: np.ndarray) -> np.ndarray:
    """Rows z(a) for a in ``grid``: column means of Z with A → a and A² → a²."""
    terms = list(data.terms)
    Z = np.tile(data.design().mean(axis=0), (grid.size, 1))
    Z[:, terms.index(data.term)] = grid
    Z[:, terms.index(data.square)] = grid ** 2
    return Z


def curve_band_frequentist(data: QuadraticData, fit, grid: np.ndarray):
    """(fit, low, high) of the 95 % pointwise confidence band of an OLS / spatial 2SLS fit."""
    Z = curve_design(data, grid)
    b = fit.coefficients["estimate"].to_numpy(dtype=float)
    mid = Z @ b
    half = critical_value(fit.df) * np.sqrt(np.einsum("ij,jk,ik->i", Z, fit.cov, Z))
    return mid, mid - half, mid + half


def curve_band_posterior(data: QuadraticData, idata, grid: np.ndarray, hdi_prob: float = 0.94):
    """(posterior mean, low, high) of the curve; pointwise HDI of the draws z'b_s."""
    import arviz as az


    coef = coef_grid(idata.posterior).isel(equation=0).sel(term=list(data.terms))
    B = coef.stack(sample=("chain", "draw")).transpose("sample", "term").values
    draws = B @ curve_design(data, grid).T                    # (S, grid)
    hdi = az.hdi(draws[None, :, :], hdi_prob=hdi_prob)        # (grid, 2)
    return draws.mean(axis=0), hdi[:, 0], hdi[:, 1]


def turning_points(data: QuadraticData, *, fit=None, idata=None) -> dict[str, tuple]:
    """The turning points to mark, {label: (point, (low, high) or None)}: the posterior median
    of θ = −c1/(2c2) with its 94 % HDI (``idata``) and the OLS / spatial 2SLS estimate (``fit``;
    its Fieller interval is in the table, not drawn)."""
    import arviz as az

    marks = {}
    if idata is not None:
        theta = idata.posterior["turning_point"]
        finite = theta.values[np.isfinite(theta.values)]
        hdi = az.hdi(finite, hdi_prob=HDI_PROB)
        marks["turning point (posterior median)"] = (float(np.median(finite)),
                                                     (float(hdi[0]), float(hdi[1])))
    if fit is not None and np.isfinite(fit.turning_point):
        marks[f"turning point ({fit.method})"] = (float(fit.turning_point), None)
    return marks


def plotted_range(data: QuadraticData) -> tuple[float, float]:
    """The observed range [x_l, x_h] widened by PAD of its width on each side, so that a turning
    point just outside the data is still drawn."""
    lo, hi = data.range
    pad = PAD * (hi - lo)
    return lo - pad, hi + pad


def _mark_turning_points(ax, marks: dict, left: float, right: float) -> list[str]:
    """Vertical lines (and interval shades) for the points inside [left, right]; the labels of
    those outside, for the title."""
    outside = []
    for (label, (point, interval)), colour, style in zip(marks.items(), ("tab:red", "black"),
                                                         ("--", ":")):
        if interval is not None and interval[1] >= left and interval[0] <= right:
            ax.axvspan(max(interval[0], left), min(interval[1], right), color=colour,
                       alpha=0.12, label=f"{HDI_PROB:.0%} HDI of the turning point")
        if left <= point <= right:
            ax.axvline(point, color=colour, ls=style, label=f"{label} {point:.3g}")
        else:
            outside.append(f"{label} {point:.3g}")
    return outside


def quadratic_figure(data: QuadraticData, *, fit=None, idata=None):
    """The curve figure (a matplotlib Figure): the band from ``idata`` if given, else from
    ``fit``; each given fit's turning point marked (:func:`turning_points`), the observed range
    of A shaded; a turning point beyond the plotted range is named in the title."""
    lo, hi = data.range
    left, right = plotted_range(data)
    grid = np.linspace(left, right, GRID)
    if idata is not None:
        mid, low, high = curve_band_posterior(data, idata, grid)
        band, what = f"{HDI_PROB:.0%} HDI", "posterior mean"
    else:
        mid, low, high = curve_band_frequentist(data, fit, grid)
        band, what = "95 % CI", fit.method
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axvspan(lo, hi, color="0.5", alpha=0.08, label=f"observed range of {data.term}")
    ax.fill_between(grid, low, high, color="tab:blue", alpha=0.25, label=band)
    ax.plot(grid, mid, color="tab:blue", label=what)
    outside = _mark_turning_points(ax, turning_points(data, fit=fit, idata=idata), left, right)
    if outside:
        ax.set_title("outside the plotted range: " + "; ".join(outside), fontsize=9)
    ax.set_xlim(left, right)
    ax.plot(data.values, np.full(data.values.size, 0.0), "|", color="black", alpha=0.5,
            markersize=10, transform=ax.get_xaxis_transform(), label="data")
    others = "W·y and the other regressors" if data.spatial_lag else "the other regressors"
    ax.set_xlabel(data.term)
    ax.set_ylabel(f"fitted {data.outcome} ({others} at their means)", fontsize=8)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def save_figure(fig, path) -> Path:
    """Write ``fig`` as PNG through a temporary file, then close it."""
    return save(fig, path, dpi=120)


def plot_quadratic(data: QuadraticData, path, *, fit=None, idata=None) -> Path:
    """Write the curve figure to ``path`` (PNG); give ``fit`` (frequentist), ``idata`` or both."""
    return save_figure(quadratic_figure(data, fit=fit, idata=idata), path)
