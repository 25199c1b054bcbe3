"""Tobit ML against an independent brute-force fit (``tests.references.tobit_brute_force``: a
direct log-likelihood with scipy.stats.norm, a generic optimiser, Nelder-Mead then BFGS with
numerical gradients, and a finite-difference Hessian); one- and two-limit censoring."""

import warnings

import numpy as np
import pytest
from scipy import optimize

from data_prep.errors import InputError
from data_prep.synthetic.censored import simulate_censored_panel
from models.spec.factor import factor_data
from models.frequentist.tobit import (INCIDENTAL_NOTE, fit_tobit, fit_tobit_groups, tobit,
                                      tobit_loglik)
from tests.references import correlated_city_panel, numerical_hessian, tobit_brute_force


def _data(n, lower, upper, seed):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.standard_normal((n, 2))])
    y = X @ np.array([0.2, 1.0, -0.5]) + 0.8 * rng.standard_normal(n)
    if lower is not None:
        y = np.maximum(y, lower)
    if upper is not None:
        y = np.minimum(y, upper)
    return y, X


@pytest.mark.parametrize("lower,upper", [(0.0, None), (None, 0.9), (-0.4, 0.8)])
def test_tobit_equals_brute_force(lower, upper):
    y, X = _data(300, lower, upper, seed=3)
    fit = tobit(y, X, lower, upper)
    ref, ref_se = tobit_brute_force(y, X, lower, upper)
    est = np.append(fit.beta, fit.sigma)
    assert np.max(np.abs(est - ref)) < 1e-4
    assert np.max(np.abs(fit.std_errors / ref_se - 1)) < 1e-2
    assert fit.n_lower + fit.n_upper > 60     # the censoring is not negligible


def test_analytic_derivatives_match_finite_differences():
    y, X = _data(80, -0.3, 0.7, seed=5)
    theta = np.array([0.1, 0.8, -0.4, np.log(0.7)])
    ll, g, H = tobit_loglik(theta, y, X, -0.3, 0.7)
    f = lambda t: tobit_loglik(t, y, X, -0.3, 0.7, derivatives=False)  # noqa: E731
    num_g = optimize.approx_fprime(theta, f, 1e-7)
    assert np.allclose(g, num_g, rtol=1e-4, atol=1e-4)
    assert np.allclose(H, numerical_hessian(f, theta), rtol=1e-4, atol=1e-3)


def test_frame_layout_and_fixed_effect_warning():
    sim = simulate_censored_panel((8, 8), n_years=5, alpha=0.5, seed=2)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, effects="city,year")
    with pytest.warns(UserWarning, match="incidental-parameter"):
        fit = fit_tobit(data)
    frame = fit.to_frame()
    assert list(frame["term"]) == ["Intercept", "x1", "x2", "sigma"]
    assert (frame["equation"] == "y").all()
    assert INCIDENTAL_NOTE in fit.summary()
    # the dummies are estimated: 15 city + 4 year dummies beside the 3 shown coefficients
    assert len(fit.to_frame(include_effects=True)) == 3 + 15 + 4 + 1


def test_grouped_tobit_is_separate_fits():
    sim = simulate_censored_panel((10, 12), n_years=5, group_shift=[[0.3, 0], [-0.3, 0]],
                                  seed=4)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group", effects="year")
    res = fit_tobit_groups(data)
    frame = res.to_frame()
    assert {"x1[g1]", "x1[g2]", "sigma[g1]", "x1", "sigma"} <= set(frame["term"])
    sub = sim.data[sim.data["group"] == "g2"]
    alone = fit_tobit(factor_data(sub, "y ~ x1 + x2", 0.0, effects="year"))
    got = frame.set_index("term").loc["x1[g2]", "estimate"]
    assert got == pytest.approx(alone.to_frame().set_index("term").loc["x1", "estimate"])


@pytest.mark.parametrize("change,message", [
    (lambda d: d.assign(x2=1.0), "no variation"),
    (lambda d: d.assign(y=d["y"] - 0.01), "below the lower bound"),
    (lambda d: d.assign(y=d["y"] + 5.0), "no observation is censored; use OLS"),
    (lambda d: d.rename(columns={"x2": "z"}), "unknown column x2"),
])
def test_bad_input(change, message):
    sim = simulate_censored_panel((6, 6), n_years=4, seed=1)
    with pytest.raises(InputError, match=message):
        factor_data(change(sim.data), "y ~ x1 + x2", 0.0)


def test_small_group_refused_for_separate_tobit():
    sim = simulate_censored_panel((2, 10), n_years=6, seed=1)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group")
    with pytest.raises(InputError, match="g1 \\(2\\) has fewer cities than the 3 parameters"):
        fit_tobit_groups(data)


def test_upper_bound_not_reached_is_refused():
    sim = simulate_censored_panel((6, 6), n_years=4, seed=1)
    with pytest.raises(InputError, match="no observation reaches the upper bound"):
        factor_data(sim.data, "y ~ x1 + x2", 0.0, 100.0)


def test_dummy_with_every_observation_censored_is_refused():
    sim = simulate_censored_panel((6, 6), n_years=4, seed=1)
    d = sim.data.copy()
    d.loc[d["year"] == 2012, "y"] = 0.0
    with pytest.raises(InputError, match="every observation of year\\[2012\\] is censored"):
        fit_tobit(factor_data(d, "y ~ x1 + x2", 0.0, effects="year"))


def test_mundlak_means_remove_the_bias_of_a_correlated_city_effect():
    """Without city effects the Tobit is biased for x1 (slope ≈ 0.9, truth 0.5); with the city
    means of x1 and x2 (Mundlak) it recovers 0.5, as the fixed-effects Tobit does; x2, which is
    unrelated to the city effect, is right either way. 600 rows: the pooled slope's standard
    error is about 0.05, so the bias of 0.4 is eight of them."""
    frame = correlated_city_panel()
    pooled = fit_tobit(factor_data(frame, "y ~ x1 + x2", 0.0)).to_frame().set_index("term")
    data = factor_data(frame, "y ~ x1 + x2", 0.0, mundlak=True)
    assert data.mundlak == ("x1", "x2") and data.mundlak_terms == ("mean(x1)", "mean(x2)")
    expected = frame.groupby("city")["x1"].transform("mean").to_numpy()
    np.testing.assert_allclose(data.M[:, 0], expected, rtol=1e-12)
    mundlak = fit_tobit(data).to_frame().set_index("term")
    # a city censored in every year has no finite fixed effect: the dummies' fit leaves it out
    seen = frame[frame.groupby("city")["y"].transform("max") > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = fit_tobit(factor_data(seen, "y ~ x1 + x2", 0.0, effects="city")).to_frame()
    fixed = fixed.set_index("term")
    assert mundlak.index.tolist() == ["Intercept", "x1", "x2", "mean(x1)", "mean(x2)", "sigma"]
    for fit in (pooled, mundlak, fixed):
        assert abs(fit.loc["x2", "estimate"] + 0.3) < 3 * fit.loc["x2", "std_error"]
    assert pooled.loc["x1", "estimate"] - 0.5 > 5 * pooled.loc["x1", "std_error"]
    assert abs(mundlak.loc["x1", "estimate"] - 0.5) < 3 * mundlak.loc["x1", "std_error"]
    assert abs(fixed.loc["x1", "estimate"] - 0.5) < 3 * fixed.loc["x1", "std_error"]
    assert mundlak.loc["mean(x1)", "estimate"] > 0.3      # ≈ 0.8 var(c)/var(x̄) = 0.6


def test_mundlak_needs_factors_that_vary_within_cities():
    frame = correlated_city_panel(n_cities=30, n_years=3)
    frame["size"] = frame.groupby("city")["x1"].transform("mean")
    data = factor_data(frame, "y ~ x1 + size", 0.0, mundlak=True)
    assert data.mundlak == ("x1",)                 # a city-constant factor is its own mean
    one_year = frame[frame["year"] == 0]
    with pytest.raises(InputError, match="no factor varies within cities"):
        factor_data(one_year, "y ~ x1 + x2", 0.0, mundlak=True)
