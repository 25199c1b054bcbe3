"""The frequentist quadratic's reported figures and words: confidence intervals against scipy's
t and normal quantiles, the uncentred R² of a model without intercept, every shape of the Fieller
set (including the boundary a = 0) against a brute-force membership grid, the Lind–Mehlum
sentence, the collinearity and zero-curvature guards, and the total-effect multiplier's edges."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_prep.errors import InputError
from data_prep.synthetic.simulate import lattice_weights
from models.frequentist import quadratic as fq
from models.frequentist.quadratic import (LindMehlum, fieller_set, fit_quadratic_frequentist,
                                          lind_mehlum, ols, total_effect_turning_point)
from models.spec.quadratic import build_quadratic


def _frame(n=200, seed=0, c=(1.0, 2.0, -0.5), noise=1.0):
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 4, n)
    x1 = rng.normal(size=n)
    y = c[0] + c[1] * A + c[2] * A ** 2 + 0.7 * x1 + noise * rng.normal(size=n)
    return pd.DataFrame({"city": [f"c{i:04d}" for i in range(n)], "y": y, "A": A, "x1": x1})


def test_intervals_use_the_t_quantile_for_ols():
    fit = fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
    rows = fit.coefficients
    q = stats.t.ppf(0.975, fit.df)
    assert fit.df == 200 - 4
    np.testing.assert_allclose(rows["ci_low"], rows["estimate"] - q * rows["std_error"],
                               rtol=1e-12)
    np.testing.assert_allclose(rows["ci_high"], rows["estimate"] + q * rows["std_error"],
                               rtol=1e-12)
    np.testing.assert_allclose(rows["statistic"], rows["estimate"] / rows["std_error"],
                               rtol=1e-12)


def test_intervals_use_the_normal_quantile_for_spatial_2sls():
    w = lattice_weights(10)
    rng = np.random.default_rng(3)
    A = rng.uniform(0, 4, 100)
    y = 1 + 2 * A - 0.5 * A ** 2 + rng.normal(size=100)
    y = y + 0.3 * (w.matrix @ y)
    frame = pd.DataFrame({"city": list(w.cities), "y": y, "A": A})
    fit = fit_quadratic_frequentist(build_quadratic(frame, "y ~ A", "A", weights=w,
                                                    spatial_lag=True))
    rows = fit.coefficients
    q = stats.norm.ppf(0.975)
    assert fit.df is None
    np.testing.assert_allclose(rows["ci_high"] - rows["estimate"], q * rows["std_error"],
                               rtol=1e-12)
    np.testing.assert_allclose(rows["estimate"] - rows["ci_low"], q * rows["std_error"],
                               rtol=1e-12)
    np.testing.assert_allclose(rows["p_value"],
                               2 * stats.norm.sf(np.abs(rows["statistic"])), rtol=1e-12)


def test_frame_index_is_plain_and_the_fit_parts_are_immutable():
    fit = fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
    frame = fit.to_frame()
    assert list(frame.index) == list(range(len(frame)))
    assert list(frame["term"][-2:]) == ["turning_point", "lind_mehlum"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.fieller.low = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.lind_mehlum.statistic = 0.0


def test_rsquared_with_and_without_an_intercept():
    frame = _frame()
    with_c = fit_quadratic_frequentist(build_quadratic(frame, "y ~ A + x1", "A"))
    X = np.column_stack([np.ones(200), frame.A, frame.A ** 2, frame.x1])
    e = frame.y - X @ np.linalg.lstsq(X, frame.y, rcond=None)[0]
    assert with_c.rsquared == pytest.approx(1 - e @ e / ((frame.y - frame.y.mean()) ** 2).sum(),
                                            rel=1e-10)
    without = fit_quadratic_frequentist(build_quadratic(frame, "y ~ A + x1 - 1", "A"))
    assert "Intercept" not in list(without.coefficients["term"])
    X0 = X[:, 1:]
    e0 = frame.y - X0 @ np.linalg.lstsq(X0, frame.y, rcond=None)[0]
    # the uncentred R² (R's lm and Stata without a constant): 1 − e'e / y'y
    assert without.rsquared == pytest.approx(1 - e0 @ e0 / (frame.y ** 2).sum(), rel=1e-10)


def test_ols_refuses_collinear_regressors():
    rng = np.random.default_rng(0)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 2))])
    y = rng.normal(size=50)
    ols(y, X)                                               # full rank passes
    for extra in (X[:, 1] + X[:, 2], X[:, 1] * (1 + 1e-13)):  # exact, and to rounding
        with pytest.raises(InputError, match="collinear"):
            ols(y, np.column_stack([X, extra]))
    # the check is relative to the largest pivot: scaled up by 1000, a column equal to another
    # up to 1e-12 relative is still refused
    big = 1000 * np.column_stack([X, X[:, 1] + 1e-12 * X[:, 2]])
    with pytest.raises(InputError, match="collinear"):
        ols(y, big)
    with pytest.raises(InputError, match="collinear"):
        ols(y, np.zeros((50, 2)))                           # every pivot is zero
    for n in (3, 2):                                        # as many cities as, or fewer
        with pytest.raises(InputError, match=f"{n} cities for 3 coefficients"):
            ols(y[:n], X[:n])


def test_a_curvature_of_exactly_zero_is_refused(monkeypatch):
    real = fq.ols

    def flat(y, X):
        b, cov, resid = real(y, X)
        b = b.copy()
        b[2] = 0.0                                          # A^2 is the third column
        return b, cov, resid

    monkeypatch.setattr(fq, "ols", flat)
    with pytest.raises(InputError, match=r"estimated curvature A\^2 is exactly zero"):
        fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
    for value in (1.0, -1.0):          # a curvature of ±1 is an ordinary value
        monkeypatch.setattr(fq, "ols", lambda y, X, v=value: (
            np.where(np.arange(X.shape[1]) == 2, v, real(y, X)[0]), *real(y, X)[1:]))
        fit = fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
        assert fit.coef("A^2") == value


def _members(c1, c2, V, q, grid):
    return (c1 + 2 * grid * c2) ** 2 <= q ** 2 * (V[0, 0] + 4 * grid * V[0, 1]
                                                   + 4 * grid ** 2 * V[1, 1])


def test_fieller_two_half_lines_have_the_right_ends_and_words():
    c1, c2, q = 1.0, -0.1, 1.96
    V = np.array([[0.04, -0.002], [-0.002, 0.01]])
    fs = fieller_set(c1, c2, V, q, "PSS^2")
    # the ends are where the inequality holds with equality; between them it fails
    a = 4 * c2 ** 2 - 4 * q ** 2 * V[1, 1]
    b = 4 * c1 * c2 - 4 * q ** 2 * V[0, 1]
    c = c1 ** 2 - q ** 2 * V[0, 0]
    r1, r2 = np.sort(np.roots([a, b, c]).real)
    assert fs.description == (f"unbounded: (-inf, {r1:.4g}] and [{r2:.4g}, +inf), because the "
                              "curvature PSS^2 is not significant at the 5% level")
    grid = np.array([r1 - 1, r1 - 1e-6, (r1 + r2) / 2, r2 + 1e-6, r2 + 1])
    assert list(_members(c1, c2, V, q, grid)) == [True, True, False, True, True]


def test_fieller_whole_line_words():
    fs = fieller_set(0.05, -0.1, np.array([[0.04, 0.0], [0.0, 0.01]]), 1.96)
    assert fs.description == ("unbounded: the whole real line, because the curvature A^2 is "
                              "not significant at the 5% level")


@pytest.mark.parametrize("c1,v12", [(1.0, 0.0), (-1.0, 0.0), (0.3, 0.05), (-0.25, 0.0),
                                     (-0.125, 0.0), (0.25, 0.0)])
def test_fieller_at_the_significance_boundary_is_a_half_line(c1, v12):
    """a = 4c2² − 4q²V22 = 0 exactly (q = 2, V22 = 1/4, c2 = 1): b θ + c ≤ 0."""
    q, c2 = 2.0, 1.0
    V = np.array([[0.5, v12], [v12, 0.25]])
    fs = fieller_set(c1, c2, V, q)
    b = 4 * c1 * c2 - 4 * q ** 2 * v12
    c = c1 ** 2 - q ** 2 * V[0, 0]
    r = -c / b
    assert not fs.bounded and np.isnan(fs.low) and np.isnan(fs.high)
    half = f"(-inf, {r:.4g}]" if b > 0 else f"[{r:.4g}, +inf)"
    assert fs.description.startswith(f"unbounded: {half}, because")
    grid = r + np.array([-50.0, -1e-6, 1e-6, 50.0])
    inside = _members(c1, c2, V, q, grid)
    assert list(inside) == ([True, True, False, False] if b > 0 else [False, False, True, True])


def test_fieller_whole_line_when_the_two_ends_meet():
    """a < 0 and disc = 0 exactly (c2 = 0, q = 1, V = [[0.5, 0.25], [0.25, 0.25]]): the two
    half-lines touch, so the set is the whole line, said so."""
    fs = fieller_set(0.5, 0.0, np.array([[0.5, 0.25], [0.25, 0.25]]), 1.0)
    assert "the whole real line" in fs.description
    grid = np.linspace(-50, 50, 10001)
    assert _members(0.5, 0.0, np.array([[0.5, 0.25], [0.25, 0.25]]), 1.0, grid).all()


def test_fieller_rounding_below_zero_still_gives_the_point():
    """A degenerate covariance under which Var(c1 + 2θ̂c2) = 0 (a tiny bit below, by rounding):
    disc is slightly negative, and the set is the single point θ̂, not NaN."""
    c1, c2, q = 1.0, -0.5, 2.0
    V = 0.01 * np.array([[4.0, -2.0], [-2.0, 1.0]])
    V[0, 0] -= 1e-15
    a, b = 4 * c2 ** 2 - 4 * q ** 2 * V[1, 1], 4 * c1 * c2 - 4 * q ** 2 * V[0, 1]
    assert b * b - 4 * a * (c1 ** 2 - q ** 2 * V[0, 0]) < 0
    fs = fieller_set(c1, c2, V, q)
    assert fs.bounded and fs.low == pytest.approx(1.0, abs=1e-6)
    assert fs.high == pytest.approx(1.0, abs=1e-6)


def test_summary_lists_every_coefficient_with_its_stars():
    from models.spec.coefficient_tables import stars

    fit = fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
    text = fit.summary()
    for r in fit.coefficients.itertuples():
        line = (f"  {r.term:<20}{r.estimate:>12.4f}{r.std_error:>12.4f}"
                f"{r.statistic:>9.3f}{r.p_value:>9.4f} {stars(r.p_value)}")
        assert line in text.splitlines(), r.term
    assert f"t({fit.df:g})" in text and "Fieller 95% set: [" in text


def test_lind_mehlum_sentences():
    V = np.array([[0.01, 0.0], [0.0, 0.0025]])
    inverted = lind_mehlum(2.0, -0.5, V, 0.0, 4.0, df=None)
    assert inverted.describe().startswith("Lind-Mehlum test of an inverted U on [0, 4]: slope 2")
    u = lind_mehlum(-2.0, 0.5, V, 0.0, 4.0, df=None)
    assert u.shape == "U" and u.describe().startswith("Lind-Mehlum test of a U on [0, 4]: slope")
    # a slightly negative statistic already means the extremum is outside the range
    outside = LindMehlum("U", -0.4, 0.66, 0.0, 1.0, 0.2, 0.3, 0.5, 0.4)
    assert "the extremum lies outside the observed range" in outside.describe()
    inside = LindMehlum("U", 0.4, 0.34, 0.0, 1.0, -0.2, 0.3, -0.5, 0.4)
    assert "one-sided p = 0.3400" in inside.describe()
    # a statistic of exactly 0 (a zero slope at one end) is not a trivial failure: utest's
    # convention calls only negative statistics that
    edge = LindMehlum("U", 0.0, 0.5, 0.0, 1.0, 0.0, 0.3, 0.0, 0.4)
    assert "one-sided p = 0.5000" in edge.describe()


def test_total_effect_multiplier_edges(monkeypatch):
    W = lattice_weights(5).matrix
    # ρ = 2 (outside the stable region, but I − ρW invertible): m = 1/(1 − ρ) = −1, θ unchanged
    theta, m = total_effect_turning_point(1.0, -0.25, 2.0, W)
    assert m == pytest.approx(-1.0, rel=1e-10) and theta == pytest.approx(2.0, rel=1e-12)
    for bad in (0.0, np.inf, np.nan):     # no total effect, or a failed solve
        monkeypatch.setattr(fq, "total_effect_multiplier", lambda rho, W, m=bad: m)
        theta, m = total_effect_turning_point(1.0, -0.25, 0.3, W)
        assert np.isnan(theta) and (m == bad or np.isnan(bad))


def test_warnings_section_only_with_notes_and_non_finite_estimates_refused(monkeypatch):
    clean = fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
    assert clean.notes == [] and "Warnings:" not in clean.summary()
    weak = fit_quadratic_frequentist(build_quadratic(_frame(seed=4, c=(1.0, 0.5, -0.01),
                                                            noise=3.0), "y ~ A + x1", "A"))
    assert weak.notes and "Warnings:\n  - the Fieller 95% set" in weak.summary()
    real = fq.ols
    for broken in ("b", "cov"):
        def bad(y, X, what=broken):
            b, cov, resid = real(y, X)
            if what == "b":
                b = np.where(np.arange(b.size) == 3, np.nan, b)
            else:
                cov = cov.copy()
                cov[3, 3] = np.inf
            return b, cov, resid

        monkeypatch.setattr(fq, "ols", bad)
        with pytest.raises(InputError, match="not finite; the model is not identified"):
            fit_quadratic_frequentist(build_quadratic(_frame(), "y ~ A + x1", "A"))
