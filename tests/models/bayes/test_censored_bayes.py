"""The hierarchical censored factor model: its log-likelihood against a direct computation, its
agreement with the Tobit MLE under weak priors, and slope recovery and shrinkage on simulated
censored panels."""

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from data_prep.synthetic.censored import simulate_censored_panel
from models.bayes.censored import (OBSERVED, censored_factor_model, fit_censored,
                                   group_contrasts, linear_predictor, posterior_predictive,
                                   scaling, summary_frame)
from models.spec.factor import factor_data
from models.frequentist.tobit import fit_tobit
from tests.references import correlated_city_panel


def _direct_censored_loglik(y, mu, sigma, lower, upper):
    """Σ log Φ((L−μ)/σ) at L, log Φ((μ−U)/σ) at U, log φ inside: the Tobit density."""
    lo = y <= lower
    up = y >= upper
    inside = ~(lo | up)
    return (stats.norm.logcdf((lower - mu[lo]) / sigma).sum()
            + stats.norm.logsf((upper - mu[up]) / sigma).sum()
            + stats.norm.logpdf(y[inside], mu[inside], sigma).sum())


@pytest.mark.parametrize("upper,group,effects,form", [
    (None, None, "", "auto"), (0.9, "group", "city,year", "non-centred"),
    (0.9, "group", "city,year", "centred")])
def test_loglik_equals_direct_computation(upper, group, effects, form):
    sim = simulate_censored_panel((5, 4), n_years=4, upper=upper, seed=8)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, upper, group=group, effects=effects)
    model = censored_factor_model(data, city_parametrisation=form,
                                  group_parametrisation="non-centred" if form == "auto" else form,
                                  group_scale="per-factor" if form == "non-centred" else "shared")
    logp = model.compile_logp(vars=[model[OBSERVED]], sum=True)
    rng = np.random.default_rng(0)
    sc = scaling(data)
    for _ in range(3):
        point = {k: v + 0.5 * rng.standard_normal(np.shape(v))
                 for k, v in model.initial_point().items()}
        values = {k.replace("_log__", ""): (np.exp(v) if k.endswith("_log__") else v)
                  for k, v in point.items()}
        if "city_z" in values:      # non-centred: a = sd_city · z, written out here
            values["a_city_std"] = values["city_sd_std"] * values["city_z"]
        if "group_z" in values:     # non-centred: φ_g = φ + s ⊙ z_g
            values["phi_group_std"] = values["phi_std"] + values["group_sd_std"] * values["group_z"]
        mu = linear_predictor({k: np.asarray(v)[None] for k, v in values.items()}, data, sc)[0]
        ys = (data.y - sc["y_center"]) / sc["y_scale"]
        lo = (0.0 - sc["y_center"]) / sc["y_scale"]
        up = np.inf if upper is None else (upper - sc["y_center"]) / sc["y_scale"]
        expected = _direct_censored_loglik(ys, mu, values["sigma_std"], lo, up)
        # PyMC evaluates the normal log-cdf by its own formula: equal to about 1e-8 relative
        assert logp(point) == pytest.approx(expected, rel=1e-7)


def test_weak_prior_posterior_close_to_mle():
    """Posterior mean and mode vs the Tobit MLE with weak priors (n = 600, about 52 % censored at
    0, year effects on both sides).

    Measured with data seeds 0, 1, 2 (2 chains x 500 draws): the posterior mean sits 0.10-0.20
    posterior sd from the MLE for the slopes and 0.45-0.52 sd *above* it for sigma (docs/method.md §8:
    0.18 and 0.56 sd at 75 % censoring). The sigma gap is not an error: the posterior of a scale
    is right-skewed and averages over the slopes, which is what the ML divisor-n bias ignores.
    So the slopes are held to 0.35 sd, sigma to (0, 0.8) sd, and the exact comparison is made
    with the posterior mode: find_MAP (no Jacobian, priors sd 100) equals the MLE to 3.5e-5
    relative in those seeds (bound 1e-3). Posterior sd / ML standard error: 0.995-1.083."""
    sim = simulate_censored_panel((50, 50), n_years=6, seed=0)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, effects="year")
    assert data.at_lower.mean() > 0.3
    mle = fit_tobit(data).to_frame().set_index("term")
    weak = {"intercept_sd": 100.0, "phi_sd": 100.0, "year_sd": 100.0, "sigma_sd": 100.0}
    mode = pm.find_MAP(model=censored_factor_model(data, weak), progressbar=False)
    mode = {"x1": mode["phi"][0], "x2": mode["phi"][1], "sigma": float(mode["sigma"])}
    idata = fit_censored(data, weak, draws=500, tune=500, chains=2, seed=1)
    post = summary_frame(idata).set_index("term")
    for term in ("x1", "x2", "sigma"):
        assert mode[term] == pytest.approx(mle.loc[term, "estimate"], rel=1e-3)
        gap = (post.loc[term, "mean"] - mle.loc[term, "estimate"]) / post.loc[term, "sd"]
        if term == "sigma":
            assert 0 < gap < 0.8, gap
        else:
            assert abs(gap) < 0.35, (term, gap)
        assert post.loc[term, "sd"] == pytest.approx(mle.loc[term, "std_error"], rel=0.15)
    # measured largest R-hat 1.001-1.013 over sampler seeds 1-6 (1.005 on seed 1): 1.03 leaves
    # room for chance, and a fit that has not converged is far above it
    assert post["r_hat"].max() < 1.03


@pytest.fixture(scope="module")
def grouped_fit():
    """Three groups of 15 cities, slopes differing by group, about half censored at 0."""
    shift = [[0.4, 0.0], [0.0, 0.3], [-0.4, -0.3]]
    sim = simulate_censored_panel((15, 15, 15), n_years=6, group_shift=shift, seed=3)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group", effects="city,year")
    idata = fit_censored(data, draws=500, tune=500, chains=2, seed=2)
    return sim, data, idata


def test_group_slopes_recovered(grouped_fit):
    """90 % intervals of the 6 group slopes: with independent 90 % intervals P(≥ 3 misses) =
    1.6 %, so at most 2 misses are allowed."""
    sim, data, idata = grouped_fit
    assert data.at_lower.mean() >= 0.3
    draws = idata.posterior["phi_group"].stack(s=("chain", "draw")).values   # (G, K, S)
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=-1)
    truth = sim.truth["phi_group"]
    misses = int(((truth < lo) | (truth > hi)).sum())
    assert misses <= 2
    # the group slopes are told apart: x1 of g1 above that of g3 with high probability
    c = group_contrasts(idata, [("g1", "g3")]).set_index("factor")
    assert c.loc["x1", "prob_positive"] > 0.95 and c.loc["x1", "hdi_low"] > 0
    summary = summary_frame(idata)
    assert {"x1[g1]", "x2[g3]", "sigma", "x1"} <= set(summary["term"])
    assert summary["r_hat"].max() < 1.05


def test_posterior_predictive_is_censored(grouped_fit):
    _, data, idata = grouped_fit
    rep = posterior_predictive(idata, data, max_draws=50)
    assert rep.shape == (50, data.n) and rep.min() >= 0.0
    share = (rep <= 0).mean(axis=1)
    # the observed share of censored cells lies inside the replicated range
    assert share.min() <= data.at_lower.mean() <= share.max()


def test_small_group_shrinks_toward_overall_slope():
    """Three groups of 12 cities share the slopes; a fourth of 2 cities deviates by 0.4 in x1.
    For both factors its posterior mean is closer to the overall slope than its own separate
    Tobit estimate is (the agreeing groups make the group scale s small, which pulls the small
    group in). Measured (seed 5, shared scale): own / pooled / overall = 0.483 / 0.547 / 0.530
    for x1 and -0.181 / -0.252 / -0.248 for x2. (The pooled value
    need not lie between the two: the slopes of x1 and x2 are estimated jointly.)"""
    shift = [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.4, 0.0]]
    sim = simulate_censored_panel((12, 12, 12, 2), n_years=6, group_shift=shift, sd_city=0.0,
                                  sd_year=0.0, seed=5)
    data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group")
    idata = fit_censored(data, draws=500, tune=500, chains=2, seed=4)
    small = sim.data[sim.data["group"] == "g4"]
    alone = fit_tobit(factor_data(small, "y ~ x1 + x2", 0.0)).to_frame().set_index("term")
    post = summary_frame(idata).set_index("term")
    for f in ("x1", "x2"):
        own, overall = alone.loc[f, "estimate"], post.loc[f, "mean"]
        pooled = post.loc[f"{f}[g4]", "mean"]
        assert abs(pooled - overall) < abs(own - overall), f


@pytest.mark.slow
def test_group_slope_coverage_over_replications():
    """90 % intervals of the group slopes over 12 simulated panels (3 groups x 12 cities x 6
    years, about half censored, 2 factors → 72 intervals). Under exact calibration the number
    covered is Binomial(72, 0.9) if the intervals were independent (they are not quite: the
    slopes of one data set share sigma and the pooling scale); its 0.5 % and 99.5 % quantiles
    bound the test."""
    shift = [[0.3, 0.0], [0.0, 0.2], [-0.3, -0.2]]
    covered = total = 0
    for rep in range(12):
        sim = simulate_censored_panel((12, 12, 12), n_years=6, group_shift=shift, seed=100 + rep)
        data = factor_data(sim.data, "y ~ x1 + x2", 0.0, group="group", effects="city,year")
        idata = fit_censored(data, draws=500, tune=500, chains=2, seed=rep)
        draws = idata.posterior["phi_group"].stack(s=("chain", "draw")).values
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=-1)
        truth = sim.truth["phi_group"]
        covered += int(((truth >= lo) & (truth <= hi)).sum())
        total += truth.size
    low, high = stats.binom.ppf([0.005, 0.995], total, 0.9)
    assert low <= covered <= high, (covered, total)


def test_mundlak_means_let_random_city_effects_correlate_with_a_factor():
    """Random city effects taken as independent of x1, on a panel whose city effect correlates
    with it (tests.references.correlated_city_panel; truth 0.5), put part of the city effect on
    x1; with the Mundlak means the posterior recovers 0.5. Measured (2 chains x 300 draws,
    seed 1): 0.81 (sd 0.05) without, 0.53 (sd 0.06) with the means."""
    frame = correlated_city_panel()
    plain = factor_data(frame, "y ~ x1 + x2", 0.0, effects="city")
    data = factor_data(frame, "y ~ x1 + x2", 0.0, effects="city", mundlak=True)
    without = summary_frame(fit_censored(plain, draws=300, tune=300, chains=2, seed=1))
    idata = fit_censored(data, draws=300, tune=300, chains=2, seed=1)
    with_means = summary_frame(idata)
    assert with_means["term"].tolist() == ["Intercept", "x1", "x2", "mean(x1)", "mean(x2)",
                                           "sigma"]
    assert idata.posterior["xi"].dims == ("chain", "draw", "mundlak")
    assert idata.posterior.attrs["city_effect_assumption"].endswith("(Mundlak)")
    biased, fixed = without.set_index("term").loc["x1"], with_means.set_index("term").loc["x1"]
    assert biased["mean"] - 0.5 > 4 * biased["sd"]
    assert abs(fixed["mean"] - 0.5) < 3 * fixed["sd"]
    # the device's linear predictor is the model's: replicated outcomes follow the data
    reps = posterior_predictive(idata, data, max_draws=50)
    assert abs(reps.mean() - frame["y"].mean()) < 0.1
