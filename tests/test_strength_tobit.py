"""The Tobit's reported figures and guards: p-values against scipy's normal survival function,
each group's separate fit, the parameter-count and Hessian guards, the hidden-effects line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_prep.errors import InputError
from data_prep.simulate_censored import simulate_censored_panel
from models.factor_data import factor_data
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
