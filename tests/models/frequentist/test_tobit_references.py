"""The Tobit's reported figures and guards: p-values against scipy's normal survival function,
each group's separate fit, the parameter-count and Hessian guards, the hidden-effects line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_prep.errors import InputError
from data_prep.synthetic.censored import simulate_censored_panel
from models.spec.factor import factor_data
from models.frequentist.tobit import fit_tobit, fit_tobit_groups, tobit


def _censored(n=300, seed=3):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n)])
    y = np.maximum(X @ np.array([0.2, 0.8, -0.5]) + rng.normal(size=n), 0.0)
    return y, X


def test_pvalues_are_two_sided_normal_and_sigma_has_none():
    y, X = _censored()
    fit = tobit(y, X, lower=0.0, upper=None, names=["Intercept", "x1", "x2"], outcome="y")
    frame = fit.to_frame()
    assert list(frame["term"]) == ["Intercept", "x1", "x2", "sigma"]
    z = frame["estimate"] / frame["std_error"]
    np.testing.assert_allclose(frame["statistic"], z, rtol=1e-12)
    coef = frame.iloc[:3]
    np.testing.assert_allclose(coef["p_value"], 2 * stats.norm.sf(np.abs(z[:3])), rtol=1e-12)
    assert np.isnan(frame["p_value"].iloc[3]) and np.all(np.isfinite(coef["p_value"]))


def test_every_group_gets_its_own_fit():
    sim = simulate_censored_panel((10, 12), n_years=5, group_shift=[[0.3, 0], [-0.3, 0]],
                                  seed=4)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group", effects="year")
    frame = fit_tobit_groups(data).to_frame().set_index("term")
    for g in ("g1", "g2"):
        alone = fit_tobit(factor_data(sim.data[sim.data["group"] == g], "y ~ x1 + x2", 0.0,
                                      effects="year")).to_frame().set_index("term")
        assert frame.loc[f"x1[{g}]", "estimate"] == pytest.approx(alone.loc["x1", "estimate"],
                                                                  rel=1e-8)


def test_hidden_effects_are_announced_only_when_present():
    sim = simulate_censored_panel((10, 12), n_years=5, seed=4)
    with_effects = fit_tobit(factor_data(sim.data, "y ~ x1 + x2", 0.0, effects="year"))
    assert "fixed-effect dummies estimated, not shown" in with_effects.summary()
    plain = fit_tobit(factor_data(sim.data, "y ~ x1 + x2", 0.0))
    assert "fixed-effect dummies" not in plain.summary()


def test_too_few_observations_refused():
    for rows in (4, 3):            # k + 1 = 4 parameters: as many as, or more than, the rows
        frame = pd.DataFrame({"city": list("abcd")[:rows], "year": 2000,
                              "y": [0.0, 0.5, 1.0, 0.0][:rows], "x1": [0.1, 0.4, 0.9, -0.3][:rows],
                              "x2": [1.0, -1.0, 0.5, 0.2][:rows]})
        with pytest.raises(InputError, match=f"4 parameters for {rows} observations"):
            fit_tobit(factor_data(frame, "y ~ x1 + x2", 0.0))


@pytest.mark.parametrize("variance", [-0.5, 0.0])
def test_non_negative_definite_hessian_refused(monkeypatch, variance):
    """A covariance with a zero or slightly negative variance (a flat likelihood) is refused."""
    y, X = _censored()
    real_inv = np.linalg.inv

    def bad_inv(a):
        out = real_inv(a)
        out[1, 1] = variance
        return out

    monkeypatch.setattr(np.linalg, "inv", bad_inv)
    with pytest.raises(InputError, match="not negative definite"):
        tobit(y, X, 0.0, None, ["Intercept", "x1", "x2"], "y")


def test_censoring_counts_and_the_uncensored_note():
    y, X = _censored()
    names = ["Intercept", "x1", "x2"]
    two = tobit(y, X, 0.0, 1.5, names, "y")
    assert (two.n_lower, two.n_upper) == (int((y <= 0).sum()), int((y >= 1.5).sum()))
    upper_only = tobit(np.minimum(y + 1.0, 2.0), X, None, 2.0, names, "y")
    assert upper_only.n_lower == 0 and upper_only.n_upper == int((y + 1.0 >= 2.0).sum())
    sim = simulate_censored_panel((10, 12), n_years=5, seed=4)
    censored = fit_tobit(factor_data(sim.data, "y ~ x1 + x2", 0.0))
    assert not any("is censored" in n for n in censored.notes)


def test_grouped_frame_has_a_plain_index_and_small_groups_are_named():
    sim = simulate_censored_panel((10, 12), n_years=5, group_shift=[[0.3, 0], [-0.3, 0]],
                                  seed=4)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group", effects="year")
    frame = fit_tobit_groups(data).to_frame()
    assert list(frame.index) == list(range(len(frame)))
    # a group exactly as large as the parameter count (3) passes the size check; one fewer fails
    from models.frequentist.tobit import check_group_sizes

    cities = sim.data["city"].unique()
    keep = set(cities[:10]) | set(cities[10:13])          # g1: 10 cities, g2: 3 cities
    ok = factor_data(sim.data[sim.data["city"].isin(keep)], "y ~ x1 + x2", 0.0, group="group")
    check_group_sizes(ok)
    keep = set(cities[:10]) | set(cities[10:12])          # g2: 2 cities < 3 parameters
    small = factor_data(sim.data[sim.data["city"].isin(keep)], "y ~ x1 + x2", 0.0,
                        group="group")
    with pytest.raises(InputError, match=r"g2 \(2\) has fewer cities than the 3 parameters"):
        check_group_sizes(small)


def test_singular_information_and_non_convergence_are_reported(monkeypatch):
    y, X = _censored()
    names = ["Intercept", "x1", "x2"]
    with pytest.raises(InputError, match="did not converge"):
        tobit(y, X, 0.0, None, names, "y", max_iter=1)

    def singular(a):
        raise np.linalg.LinAlgError("singular")

    monkeypatch.setattr(np.linalg, "inv", singular)
    with pytest.raises(InputError, match="information matrix is singular"):
        tobit(y, X, 0.0, None, names, "y")


def test_separation_message_names_the_group_and_no_city_warning_without_city_effects():
    import warnings

    sim = simulate_censored_panel((6, 6), n_years=4, seed=1)
    d = sim.data.copy()
    d.loc[d["year"] == 2012, "y"] = 0.0
    with pytest.raises(InputError, match=r"Tobit of y \(tier = 1\): every observation"):
        fit_tobit(factor_data(d, "y ~ x1 + x2", 0.0, effects="year"), label="tier = 1")
    grouped = simulate_censored_panel((10, 12), n_years=5, seed=4)
    data = factor_data(grouped.data, "y ~ x1 + x2", 0.0, group="group", effects="year")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_tobit_groups(data)
    assert not [w for w in caught if "incidental" in str(w.message).lower()]


def _direct_loglik(fit, y, X, lower, upper):
    """ℓ at the reported estimates, written with scipy's normal and no shared code."""
    eta, s = X @ fit.beta, fit.sigma
    lo = -np.inf if lower is None else lower
    up = np.inf if upper is None else upper
    return np.where(y <= lo, stats.norm.logcdf((lo - eta) / s),
                    np.where(y >= up, stats.norm.logsf((up - eta) / s),
                             stats.norm.logpdf(y, eta, s))).sum()


@pytest.mark.parametrize("lower,upper", [(0.0, None), (None, 1.5), (0.0, 1.5), (None, None)])
def test_reported_loglik_equals_a_direct_computation(lower, upper):
    """One-sided, two-sided and uncensored samples: no bound adds a term of its own."""
    y, X = _censored()
    y = np.clip(y, lower, upper) if upper is not None else y
    fit = tobit(y, X, lower, upper)
    assert fit.loglik == pytest.approx(_direct_loglik(fit, y, X, lower, upper), rel=1e-10)


def test_values_beyond_a_bound_count_as_censored_at_it():
    """Stata's convention (``ll(#)``: y ≤ # is left-censored): latent values passed as they are
    give the fit of the data clipped to the bounds."""
    rng = np.random.default_rng(8)
    X = np.column_stack([np.ones(200), rng.normal(size=200)])
    latent = X @ np.array([0.3, 1.0]) + rng.normal(size=200)
    raw = tobit(latent, X, -0.2, 1.2)
    clipped = tobit(np.clip(latent, -0.2, 1.2), X, -0.2, 1.2)
    np.testing.assert_allclose(raw.beta, clipped.beta, rtol=1e-7)
    assert (raw.n_lower, raw.n_upper) == (int((latent <= -0.2).sum()), int((latent >= 1.2).sum()))
    assert raw.loglik == pytest.approx(clipped.loglik, rel=1e-10)


@pytest.mark.parametrize("case", ["none", "one lower", "upper only", "one each side"])
def test_uncensored_note_only_when_nothing_is_censored(case):
    """A separate group's sample may reach no bound (the full sample must reach one): the note
    appears then, and only then — not for one censored row, nor one side only, nor equal
    counts on both sides."""
    rng = np.random.default_rng(2)
    y = rng.normal(size=60)
    y[:2] = [-5.0, 5.0]                       # rows 0-1: the bounds are reached in the full sample
    order = np.argsort(y[2:]) + 2             # the rest, lowest first
    keep = {"none": [], "one lower": [order[0]], "upper only": list(order[-3:]),
            "one each side": [order[0], order[-1]]}[case]
    lower = float(y[order[0]]) if case in ("one lower", "one each side") else -3.0
    upper = float(y[order[-3]]) if case == "upper only" else (
        float(y[order[-1]]) if case == "one each side" else 3.0)
    y = np.clip(y, lower, upper)
    frame = pd.DataFrame({"city": [f"c{i:02d}" for i in range(60)], "year": 2000, "y": y,
                          "x1": rng.normal(size=60)})
    data = factor_data(frame, "y ~ x1", lower, upper)
    fit = fit_tobit(data.subset(np.arange(60) >= 2))
    assert (fit.n_lower > 0 or fit.n_upper > 0) == bool(keep), (case, fit.n_lower, fit.n_upper)
    noted = any("no observation of this sample is censored" in n for n in fit.notes)
    assert noted is (not keep), (case, fit.n_lower, fit.n_upper)


def test_default_names_collinearity_and_unbounded_counts():
    y, X = _censored()
    fit = tobit(y, X, 0.0)
    assert list(fit.to_frame()["term"]) == ["x0", "x1", "x2", "sigma"]
    assert (fit.n_upper, fit.n_lower) == (0, int((y <= 0).sum()))
    collinear = np.column_stack([X, X[:, 1] + X[:, 2]])
    with pytest.raises(InputError, match=r"collinear \(the design matrix has rank 3 < 4 "
                                         r"columns\)"):
        tobit(y, collinear, 0.0)


def test_labels_appear_only_when_given():
    y, X = _censored()
    plain = tobit(y, X, 0.0)
    assert plain.summary().startswith("Tobit ML: y, n = 300")
    plain.label = "tier = 2"
    assert plain.summary().startswith("Tobit ML (tier = 2): y, n = 300")
    frame = pd.DataFrame({"city": list("abcd"), "year": 2000, "y": [0.0, 0.5, 1.0, 0.0],
                          "x1": [0.1, 0.4, 0.9, -0.3], "x2": [1.0, -1.0, 0.5, 0.2]})
    data = factor_data(frame, "y ~ x1 + x2", 0.0)
    with pytest.raises(InputError, match=r"^Tobit of y: 4 parameters"):
        fit_tobit(data)
    with pytest.raises(InputError, match=r"^Tobit of y \(east\): 4 parameters"):
        fit_tobit(data, label="east")


def test_five_rows_are_enough_for_four_parameters():
    """The guard's boundary: n = k + 2 passes (k + 1 = n is refused above)."""
    frame = pd.DataFrame({"city": list("abcde"), "year": 2000, "y": [0.0, 0.5, 1.0, 0.2, 0.7],
                          "x1": [0.1, 0.4, 0.9, -0.3, 0.5], "x2": [1.0, -1.0, 0.5, 0.2, 0.0]})
    try:
        fit_tobit(factor_data(frame, "y ~ x1 + x2", 0.0))
    except InputError as err:          # a fit may fail on its own, never on the count
        assert "parameters for" not in str(err)


def test_incidental_parameter_warnings_point_at_the_caller():
    """``stacklevel``: the warning names the line that called the fit, not the library's."""
    import inspect
    import warnings

    sim = simulate_censored_panel((10, 12), n_years=8, seed=1)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group", effects="city")
    for fit in (fit_tobit, fit_tobit_groups):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno + 1
            fit(data)
        hits = [w for w in caught if "incidental" in str(w.message)]
        assert len(hits) == 1 and (hits[0].filename, hits[0].lineno) == (__file__, line)
