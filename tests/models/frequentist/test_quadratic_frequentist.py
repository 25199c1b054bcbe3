"""Frequentist quadratic model: OLS, delta-method SE, Fieller set and Lind–Mehlum test against an
independent dense computation, a hand example, linearmodels (OLS) and spreg (spatial 2SLS)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import optimize, stats

from data_prep.errors import InputError
from data_prep.synthetic.simulate import lattice_weights
from models.frequentist.quadratic import (fieller_set, fit_quadratic_frequentist, lind_mehlum,
                                          total_effect_multiplier)
from models.spec.quadratic import build_quadratic


def _frame(n=300, seed=0, c=(1.0, 2.0, -0.5), noise=1.0, low=0.0, high=4.0):
    rng = np.random.default_rng(seed)
    A = rng.uniform(low, high, n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    y = c[0] + c[1] * A + c[2] * A ** 2 + 0.7 * x1 - 0.3 * x2 + noise * rng.normal(size=n)
    return pd.DataFrame({"city": [f"c{i:04d}" for i in range(n)], "y": y, "A": A,
                         "x1": x1, "x2": x2})


def _row(frame, term):
    return frame.set_index("term").loc[term]


def test_ols_turning_point_fieller_lind_mehlum_match_dense_reference():
    df = _frame(noise=3.0)
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1 + x2", "A"))
    out = fit.to_frame()

    # independent dense reference: normal equations, classical covariance, t(n - k)
    X = np.column_stack([np.ones(len(df)), df.A, df.A ** 2, df.x1, df.x2])
    y = df.y.to_numpy()
    n, k = X.shape
    XtX_inv = np.linalg.inv(X.T @ X)
    b = XtX_inv @ X.T @ y
    e = y - X @ b
    V = (e @ e / (n - k)) * XtX_inv
    np.testing.assert_allclose(out.estimate[:5], b, rtol=1e-10)
    np.testing.assert_allclose(out.std_error[:5], np.sqrt(np.diag(V)), rtol=1e-10)
    np.testing.assert_allclose(out.p_value[:5],
                               2 * stats.t.sf(np.abs(b / np.sqrt(np.diag(V))), n - k), rtol=1e-8)
    assert out.term.tolist() == ["Intercept", "A", "A^2", "x1", "x2", "turning_point",
                                 "lind_mehlum"]

    c1, c2 = b[1], b[2]
    V2 = V[1:3, 1:3]
    theta = -c1 / (2 * c2)
    tp = _row(out, "turning_point")
    assert tp.estimate == pytest.approx(theta, rel=1e-10)
    # delta method with the numerical gradient of the ratio
    h = 1e-6
    grad = np.array([(-(c1 + h) / (2 * c2) + (c1 - h) / (2 * c2)) / (2 * h),
                     (-c1 / (2 * (c2 + h)) + c1 / (2 * (c2 - h))) / (2 * h)])
    assert tp.std_error == pytest.approx(np.sqrt(grad @ V2 @ grad), rel=1e-6)

    # Fieller: the bounds solve (c1 + 2θc2)² = q² Var(c1 + 2θc2); brute force on a grid agrees
    q = stats.t.ppf(0.975, n - k)

    def excess(t):
        var = V2[0, 0] + 4 * t * V2[0, 1] + 4 * t * t * V2[1, 1]
        return (c1 + 2 * t * c2) ** 2 - q ** 2 * var

    assert abs(c2 / np.sqrt(V2[1, 1])) > q  # bounded case
    lo = optimize.brentq(excess, theta - 10, theta)
    hi = optimize.brentq(excess, theta, theta + 10)
    assert (tp.ci_low, tp.ci_high) == pytest.approx((lo, hi), rel=1e-8)
    grid = np.linspace(theta - 5, theta + 5, 20001)
    inside = grid[excess(grid) <= 0]
    assert inside.min() == pytest.approx(lo, abs=1e-3)
    assert inside.max() == pytest.approx(hi, abs=1e-3)

    # Lind-Mehlum at min A and max A (inverted U: c2 < 0)
    xl, xh = df.A.min(), df.A.max()
    t_at = [(c1 + 2 * c2 * x) / np.sqrt(np.array([1, 2 * x]) @ V2 @ np.array([1, 2 * x]))
            for x in (xl, xh)]
    stat = min(t_at[0], -t_at[1])
    lm = _row(out, "lind_mehlum")
    assert lm.statistic == pytest.approx(stat, rel=1e-10)
    assert lm.p_value == pytest.approx(stats.t.sf(stat, n - k), rel=1e-8)
    assert np.isnan(lm.estimate) and fit.lind_mehlum.shape == "inverted U"


def test_ols_matches_linearmodels():
    linearmodels = pytest.importorskip("linearmodels")
    df = _frame(seed=3)
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1", "A"))
    exog = pd.DataFrame({"const": 1.0, "A": df.A, "A2": df.A ** 2, "x1": df.x1})
    ref = linearmodels.IV2SLS(df.y, exog, None, None).fit(cov_type="unadjusted", debiased=True)
    np.testing.assert_allclose(fit.coefficients.estimate, ref.params, rtol=1e-10)
    np.testing.assert_allclose(fit.coefficients.std_error, ref.std_errors, rtol=1e-10)
    np.testing.assert_allclose(fit.coefficients.p_value, ref.pvalues, rtol=1e-6, atol=1e-300)
    assert fit.rsquared == pytest.approx(ref.rsquared, rel=1e-10)


def test_hand_example_with_known_answer():
    """A = (−1, −1, 0, 0, 1, 1), y = 0.5 + A − A² + e with e = 0.1·(1, −1, 1, −1, 1, −1).

    e is orthogonal to 1, A and A², so OLS returns c = (0.5, 1, −1) exactly; e'e = 0.06, n − k = 3,
    σ² = 0.02. X'X = [[6, 0, 4], [0, 4, 0], [4, 0, 4]] gives Var c1 = σ²/4 = 0.005,
    Var c2 = 0.75σ² = 0.015, Cov = 0. Turning point 0.5; g = (0.5, 0.5), SE = √(0.25·0.02) =
    √0.005. Slopes s(−1) = 3, s(1) = −1, Var s(±1) = 0.005 + 4·0.015 = 0.065, so the
    Lind–Mehlum statistic is min(3, 1)/√0.065 = 1/√0.065 with p from t(3). Fieller: roots of
    (4 − 0.06q²)θ² − 4θ + (1 − 0.005q²) = 0, q = t_0.975(3).
    """
    A = np.array([-1.0, -1, 0, 0, 1, 1])
    e = 0.1 * np.array([1.0, -1, 1, -1, 1, -1])
    df = pd.DataFrame({"city": list("abcdef"), "A": A, "y": 0.5 + A - A ** 2 + e})
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A", "A"))
    out = fit.to_frame().set_index("term")
    assert out.loc[["Intercept", "A", "A^2"], "estimate"].tolist() == pytest.approx([0.5, 1, -1])
    assert out.loc[["A", "A^2"], "std_error"].tolist() == pytest.approx(
        [np.sqrt(0.005), np.sqrt(0.015)])
    assert out.loc["turning_point", "estimate"] == pytest.approx(0.5)
    assert out.loc["turning_point", "std_error"] == pytest.approx(np.sqrt(0.005))
    q = stats.t.ppf(0.975, 3)
    a, b, c = 4 - 0.06 * q ** 2, -4.0, 1 - 0.005 * q ** 2
    roots = sorted(np.roots([a, b, c]))
    assert (out.loc["turning_point", "ci_low"], out.loc["turning_point", "ci_high"]) == \
        pytest.approx(roots)
    assert out.loc["lind_mehlum", "statistic"] == pytest.approx(1 / np.sqrt(0.065))
    assert out.loc["lind_mehlum", "p_value"] == pytest.approx(stats.t.sf(1 / np.sqrt(0.065), 3))


def test_u_shape_is_the_mirror_image():
    df = _frame(seed=5, noise=2.0)
    up = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1", "A"))
    df2 = df.assign(y=-df.y)
    down = fit_quadratic_frequentist(build_quadratic(df2, "y ~ A + x1", "A"))
    assert up.lind_mehlum.shape == "inverted U" and down.lind_mehlum.shape == "U"
    assert down.lind_mehlum.statistic == pytest.approx(up.lind_mehlum.statistic, rel=1e-10)
    assert down.turning_point == pytest.approx(up.turning_point, rel=1e-10)
    assert (down.fieller.low, down.fieller.high) == pytest.approx((up.fieller.low, up.fieller.high))


def test_extremum_outside_range_gives_negative_statistic():
    # y rises over the whole range: the vertex lies far to the right
    df = _frame(seed=2, c=(0.0, 2.0, -0.05), noise=0.5)
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1", "A"))
    assert fit.turning_point > df.A.max()
    assert fit.lind_mehlum.statistic < 0 and fit.lind_mehlum.p_value > 0.5
    assert "outside the observed range" in fit.lind_mehlum.describe()


@pytest.mark.parametrize("c1,c2,V", [
    (1.0, -0.1, np.array([[0.04, -0.002], [-0.002, 0.01]])),   # a < 0, two half-lines
    (0.05, -0.1, np.array([[0.04, 0.0], [0.0, 0.01]])),         # a < 0, whole line
    (1.0, -0.5, np.array([[0.04, -0.005], [-0.005, 0.01]])),    # bounded
])
def test_fieller_set_matches_brute_force(c1, c2, V):
    q = 1.96
    fs = fieller_set(c1, c2, V, q)
    grid = np.linspace(-200, 200, 400001)
    member = (c1 + 2 * grid * c2) ** 2 <= q ** 2 * (V[0, 0] + 4 * grid * V[0, 1]
                                                      + 4 * grid ** 2 * V[1, 1])
    assert fs.bounded == (4 * c2 ** 2 > 4 * q ** 2 * V[1, 1])
    if fs.bounded:
        assert grid[member].min() == pytest.approx(fs.low, abs=2e-3)
        assert grid[member].max() == pytest.approx(fs.high, abs=2e-3)
        assert not member[0] and not member[-1]
    else:
        assert "unbounded" in fs.description and np.isnan(fs.low) and np.isnan(fs.high)
        assert member[0] and member[-1]  # both tails belong to the set
        if "whole real line" in fs.description:
            assert member.all()
        else:
            assert not member.all()


def test_unbounded_fieller_leaves_csv_cells_empty():
    df = _frame(seed=4, c=(1.0, 0.5, -0.01), noise=3.0)
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1", "A"))
    row = _row(fit.to_frame(), "turning_point")
    assert not fit.fieller.bounded
    assert np.isnan(row.ci_low) and np.isnan(row.ci_high) and np.isfinite(row.estimate)
    assert any("unbounded" in n for n in fit.notes)


def test_lind_mehlum_function_direct():
    V = np.array([[0.01, 0.0], [0.0, 0.0025]])
    lm = lind_mehlum(2.0, -0.5, V, 0.0, 4.0, df=None)
    # s(0) = 2, Var 0.01 -> t = 20; s(4) = -2, Var 0.01 + 16·4·0.0025 = 0.17
    assert lm.statistic == pytest.approx(min(20.0, 2 / np.sqrt(0.17)))
    assert lm.p_value == pytest.approx(stats.norm.sf(2 / np.sqrt(0.17)))


# ----------------------------------------------------------------------------- spatial lag

def _sar_frame(side=20, rho=0.4, seed=8):
    w = lattice_weights(side)
    W = w.matrix
    n = W.shape[0]
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 4, n)
    x1 = rng.normal(size=n)
    mu = 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 + 0.5 * rng.normal(size=n)
    y = spla.spsolve(sp.identity(n, format="csc") - rho * W.tocsc(), mu)
    return pd.DataFrame({"city": list(w.cities), "y": y, "A": A, "x1": x1}), w


def test_spatial_2sls_matches_spreg_and_recovers_truth():
    spreg = pytest.importorskip("spreg")
    import libpysal

    df, w = _sar_frame()
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1", "A", weights=w,
                                                    spatial_lag=True))
    out = fit.coefficients.set_index("term")
    ref = spreg.GM_Lag(df[["y"]].to_numpy(), np.column_stack([df.A, df.A ** 2, df.x1]),
                       w=libpysal.weights.WSP(w.matrix.tocsr()).to_W(), w_lags=2)
    order = ["Intercept", "A", "A^2", "x1", "W(y)"]
    np.testing.assert_allclose(out.loc[order, "estimate"], ref.betas.ravel(), rtol=1e-8)
    np.testing.assert_allclose(out.loc[order, "std_error"], np.sqrt(np.diag(ref.vm)), rtol=1e-8)
    # recovery: truth within 3 standard errors
    for term, truth in (("W(y)", 0.4), ("A", 2.0), ("A^2", -0.5)):
        assert abs(out.loc[term, "estimate"] - truth) < 3 * out.loc[term, "std_error"], term
    assert abs(fit.turning_point - 2.0) < 3 * fit.turning_point_se
    assert fit.df is None  # normal reference distribution, as the spatial 2SLS rows


def test_total_effect_turning_point_equals_direct():
    df, w = _sar_frame(side=12, rho=0.6, seed=2)
    fit = fit_quadratic_frequentist(build_quadratic(df, "y ~ A + x1", "A", weights=w,
                                                    spatial_lag=True))
    c1, c2, rho = fit.coef("A"), fit.coef("A^2"), fit.rho
    W = w.matrix.tocsc()
    n = W.shape[0]
    lu = spla.splu(sp.identity(n, format="csc") - rho * W)

    def total_effect(a):
        # average over cities of Σ_j ∂y_i/∂A_j with every A_j = a, by an explicit solve
        return lu.solve(np.full(n, c1 + 2 * c2 * a)).mean()

    root = optimize.brentq(total_effect, df.A.min() - 10, df.A.max() + 10, xtol=1e-12)
    assert root == pytest.approx(fit.turning_point, rel=1e-8)
    assert fit.total_turning_point == pytest.approx(root, rel=1e-8)
    assert fit.multiplier == pytest.approx(1 / (1 - rho), rel=1e-8)
    assert total_effect_multiplier(rho, W) == pytest.approx(lu.solve(np.ones(n)).mean())
    assert "same point" in fit.summary()


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("formula,term,match", [
    ("y ~ b + x1", "b", "only 2 distinct"),
    ("y ~ A + x1", "x9", "not a term of the formula"),
    ("y ~ A + k", "A", "regressor k does not vary"),
    ("y ~ A + x1", "y", "dependent"),
])
def test_bad_input(formula, term, match):
    df = _frame(n=50).assign(b=lambda d: (d.A > 2).astype(float), k=2.0)
    with pytest.raises(InputError, match=match):
        build_quadratic(df, formula, term)


def test_spatial_lag_without_weights():
    with pytest.raises(InputError, match="needs spatial weights"):
        build_quadratic(_frame(n=50), "y ~ A + x1", "A", spatial_lag=True)


def test_curve_band_peaks_at_turning_point_and_matches_dense_interval(tmp_path):
    from models.study.quadratic_plot import curve_band_frequentist, plot_quadratic

    df = _frame(seed=11)
    data = build_quadratic(df, "y ~ A + x1 + x2", "A")
    fit = fit_quadratic_frequentist(data)
    grid = np.linspace(*data.range, 4001)
    mid, low, high = curve_band_frequentist(data, fit, grid)
    assert grid[np.argmax(mid)] == pytest.approx(fit.turning_point, abs=2e-3)
    # one grid point by hand: z = (1, a, a², mean x1, mean x2)
    a = grid[1234]
    z = np.array([1.0, a, a * a, df.x1.mean(), df.x2.mean()])
    b = fit.coefficients.estimate.to_numpy()
    half = stats.t.ppf(0.975, fit.df) * np.sqrt(z @ fit.cov @ z)
    assert (mid[1234], low[1234], high[1234]) == pytest.approx((z @ b, z @ b - half, z @ b + half))
    path = plot_quadratic(data, tmp_path / "curve.png", fit=fit)
    assert path.read_bytes()[:4] == b"\x89PNG"


def _stored_posterior(fit, data, theta):
    """InferenceData with coef draws fixed at the OLS estimate (the band) and given θ draws."""
    import arviz as az
    import xarray as xr

    b = fit.coefficients["estimate"].to_numpy(dtype=float)
    coef = np.broadcast_to(b, (*theta.shape, 1, b.size)).copy()
    return az.InferenceData(posterior=xr.Dataset(
        {"coef": (("chain", "draw", "equation", "term"), coef),
         "turning_point": (("chain", "draw"), theta)},
        coords={"term": list(data.terms), "equation": [data.outcome]}))


def test_figure_marks_turning_points_and_the_observed_range():
    """The caption promises the turning point: the OLS one as a vertical line, the posterior
    median with its 94 % HDI shaded, the observed range shaded; one beyond the plot is named."""
    import arviz as az
    import matplotlib.pyplot as plt

    from models.study.quadratic_plot import plotted_range, quadratic_figure, turning_points

    data = build_quadratic(_frame(seed=11), "y ~ A + x1 + x2", "A")
    fit = fit_quadratic_frequentist(data)
    lo, hi = data.range
    theta = np.random.default_rng(2).normal(fit.turning_point, 0.1, (2, 300))
    fig = quadratic_figure(data, fit=fit, idata=_stored_posterior(fit, data, theta))
    ax = fig.axes[0]
    lines = {ln.get_label(): ln.get_xdata()[0] for ln in ax.get_lines()
             if "turning point" in ln.get_label()}
    assert len(lines) == 2
    assert lines[f"turning point ({fit.method}) {fit.turning_point:.3g}"] == pytest.approx(
        fit.turning_point)
    labels = [p.get_label() for p in ax.patches]
    assert f"observed range of {data.term}" in labels
    assert "94% HDI of the turning point" in labels
    assert ax.get_xlim() == pytest.approx(plotted_range(data))
    assert plotted_range(data)[0] < lo and plotted_range(data)[1] > hi
    plt.close(fig)
    median, hdi = turning_points(data, idata=_stored_posterior(fit, data, theta))[
        "turning point (posterior median)"]
    assert median == pytest.approx(float(np.median(theta)))
    assert hdi == pytest.approx(tuple(az.hdi(theta.ravel(), hdi_prob=0.94)))
    far = _stored_posterior(fit, data, theta + 10 * (hi - lo))
    fig = quadratic_figure(data, fit=fit, idata=far)
    ax = fig.axes[0]
    assert "outside the plotted range" in ax.get_title() and "posterior median" in ax.get_title()
    assert [ln.get_label() for ln in ax.get_lines() if "turning point" in ln.get_label()] == [
        f"turning point ({fit.method}) {fit.turning_point:.3g}"]
    plt.close(fig)


def test_prepared_dataset_uses_its_cross_section_and_stored_weights(tmp_path):
    from data_prep.dataset import cross_section, demo_dataset, save_dataset
    from data_prep.weights import weights_from_dataset

    ds = demo_dataset()
    path = save_dataset(ds, tmp_path / "demo.nc")
    data = build_quadratic(path, "ER ~ PSD + Gov", "PSD", spatial_lag=True)
    table = cross_section(ds)
    same = build_quadratic(table, "ER ~ PSD + Gov", "PSD", weights=weights_from_dataset(ds),
                           spatial_lag=True)
    assert data.terms == ("W(ER)", "Intercept", "PSD", "PSD^2", "Gov")
    np.testing.assert_allclose(data.design(), same.design())
    np.testing.assert_allclose(data.values, table.PSD.to_numpy())
