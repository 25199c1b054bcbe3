"""The Bayesian censored factor model's reported quantities, without sampling: priors term by
term against scipy, the deterministics against numpy, the parametrisation choice, and the
summaries, contrasts and replicated outcomes on stored draws against arviz/numpy.

Fast by design (no NUTS, a few model compiles): each reported figure must follow its definition
(docs/method.md §5), so a wrong prior scale, a swapped back-transformation or a one-sided HDI fails
here in seconds. The sampling checks (recovery, agreement with the Tobit MLE, shrinkage) are in
``test_censored_bayes.py``.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_prep.errors import InputError
from data_prep.synthetic.censored import simulate_censored_panel
from models.bayes import censored as cm
from models.bayes.censored import (DEFAULT_PRIORS, OBSERVED, censored_factor_model,
                                   check_priors, city_anova_ratio, group_contrasts,
                                   linear_predictor, posterior_predictive, scaling, summary_frame)
from models.spec.factor import factor_data

# every scale different, so a prior read under the wrong name cannot pass
PRIORS = {"intercept_sd": 1.7, "phi_sd": 0.6, "group_sd": 0.35, "city_sd": 0.8,
          "year_sd": 1.3, "sigma_sd": 0.45}


@pytest.fixture(scope="module")
def grouped():
    sim = simulate_censored_panel((5, 4), n_years=4, group_shift=[[0.3, 0.0], [-0.3, 0.1]],
                                  upper=0.9, seed=8)
    return factor_data(sim.data, "y ~ x1 + x2", 0.0, 0.9, group="group", effects="city,year")


@pytest.fixture(scope="module")
def plain():
    sim = simulate_censored_panel((9,), n_years=4, seed=2)
    return factor_data(sim.data, "y ~ x1 + x2", 0.0)


# ------------------------------------------------------------------------ priors and scaling

def test_prior_settings_are_checked():
    assert check_priors(None) == DEFAULT_PRIORS
    assert check_priors({"phi_sd": 2}) == {**DEFAULT_PRIORS, "phi_sd": 2.0}
    with pytest.raises(InputError, match=r"unknown prior 'phi' \(known: intercept_sd, phi_sd"):
        check_priors({"phi": 1.0})
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(InputError, match=f"prior sigma_sd must be a positive scale, not "):
            check_priors({"sigma_sd": bad})
    assert DEFAULT_PRIORS == {"intercept_sd": 2.0, "phi_sd": 1.0, "group_sd": 0.5,
                              "city_sd": 1.0, "year_sd": 1.0, "sigma_sd": 1.0}


def test_scaling_is_the_sample_mean_and_sd(grouped):
    sc = scaling(grouped)
    assert sc["y_center"] == pytest.approx(grouped.y.mean(), rel=1e-12)
    assert sc["y_scale"] == pytest.approx(grouped.y.std(), rel=1e-12)
    np.testing.assert_allclose(sc["z_center"], grouped.Z.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sc["z_scale"], grouped.Z.std(axis=0), rtol=1e-12)
    json.dumps(sc)                                          # stored with the fit as JSON
    flat = cm.FactorData(**{**grouped.__dict__, "y": np.full(grouped.n, 0.5)})
    assert scaling(flat)["y_scale"] == 1.0                  # a constant outcome is not divided by 0


def test_city_anova_ratio_is_the_one_way_f_statistic(grouped):
    samples = [grouped.y[grouped.city == c] for c in range(len(grouped.cities))]
    assert city_anova_ratio(grouped) == pytest.approx(stats.f_oneway(*samples).statistic,
                                                      rel=1e-10)
    # unbalanced cities (the weights n_c matter)
    keep = ~((grouped.city == 0) & (grouped.year > 0))
    sub = grouped.subset(keep)
    samples = [sub.y[sub.city == c] for c in range(len(sub.cities))]
    assert city_anova_ratio(sub) == pytest.approx(stats.f_oneway(*samples).statistic, rel=1e-10)
    same = cm.FactorData(**{**grouped.__dict__, "y": grouped.city.astype(float)})
    assert city_anova_ratio(same) == np.inf                 # no variation within cities
    flat = cm.FactorData(**{**grouped.__dict__, "y": np.full(grouped.n, 0.5)})
    assert city_anova_ratio(flat) == np.inf                 # nor anywhere: still "centred"
    one = grouped.subset(grouped.city == 0)                 # one city: no between-city spread
    assert len(one.cities) == 1 and city_anova_ratio(one) == 0.0
    two = grouped.subset(grouped.city < 2)                 # one between-city degree of freedom
    samples = [two.y[two.city == c] for c in range(2)]
    assert city_anova_ratio(two) == pytest.approx(stats.f_oneway(*samples).statistic, rel=1e-10)
    # one within-city degree of freedom: one city whose first two years differ keeps both,
    # the others their first year only
    first, second = (grouped.y[grouped.year == t] for t in (0, 1))   # one row per city, in order
    c = int(np.flatnonzero(first != second)[0])
    keep = (grouped.year == 0) | ((grouped.city == c) & (grouped.year == 1))
    thin = grouped.subset(keep)
    assert thin.n - len(thin.cities) == 1 and 0 < city_anova_ratio(thin) < np.inf
    samples = [thin.y[thin.city == c] for c in range(len(thin.cities))]
    assert city_anova_ratio(thin) == pytest.approx(stats.f_oneway(*samples).statistic, rel=1e-10)


@pytest.mark.parametrize("ratio,expected", [(2.0, "non-centred"), (2.0 + 1e-9, "centred"),
                                            (2.5, "centred"), (1.0, "non-centred")])
def test_auto_parametrisation_switches_above_a_ratio_of_two(grouped, monkeypatch, ratio,
                                                            expected):
    monkeypatch.setattr(cm, "city_anova_ratio", lambda data: ratio)
    model = censored_factor_model(grouped)
    assert model.city_parametrisation == expected
    assert ("city_z" in model.named_vars) is (expected == "non-centred")
    forced = censored_factor_model(grouped, city_parametrisation="non-centred")
    assert forced.city_parametrisation == "non-centred"


def test_choices_given_as_strings_built_at_run_time(grouped):
    """Settings read from a config or the command line are equal to, not the same object as,
    the literals in the code."""
    centred, shared = "".join(["cen", "tred"]), "".join(["sha", "red"])
    model = censored_factor_model(grouped, city_parametrisation=centred, group_scale=shared)
    assert model.city_parametrisation == "centred" and model["a_city_std"] in model.free_RVs
    assert model["group_sd_std"].ndim == 0                  # one shared scale
    per = censored_factor_model(grouped, group_scale="".join(["per-", "factor"]),
                                group_parametrisation=centred)
    assert per["group_sd_std"].ndim == 1 and per["phi_group_std"] in per.free_RVs


def test_auto_given_at_run_time_still_decides_by_the_ratio(grouped, monkeypatch):
    monkeypatch.setattr(cm, "city_anova_ratio", lambda data: 5.0)
    auto = "".join(["au", "to"])
    assert censored_factor_model(grouped, city_parametrisation=auto).city_parametrisation \
        == "centred"


def test_auto_without_city_effects_and_bad_choices(plain):
    assert censored_factor_model(plain).city_parametrisation == "non-centred"
    assert censored_factor_model(plain, city_parametrisation="centred").city_parametrisation \
        == "centred"
    for kwargs, message in (({"city_parametrisation": "centered"},
                             "city_parametrisation must be auto, centred or non-centred, not "
                             "'centered'"),
                            ({"group_parametrisation": "auto"},
                             "group_parametrisation must be centred or non-centred, not 'auto'"),
                            ({"group_scale": "pooled"},
                             "group_scale must be per-factor or shared, not 'pooled'")):
        with pytest.raises(InputError, match=message):
            censored_factor_model(plain, **kwargs)


def _free_point(model, rng):
    """A random point of the free (transformed) variables and their constrained values."""
    point = {k: v + 0.7 * rng.standard_normal(np.shape(v))
             for k, v in model.initial_point().items()}
    values = {k.removesuffix("_log__"): (np.exp(v) if k.endswith("_log__") else v)
              for k, v in point.items()}
    return point, values


@pytest.mark.parametrize("groups,cities", [("non-centred", "non-centred"),
                                           ("centred", "centred")])
@pytest.mark.parametrize("scale", ["shared", "per-factor"])
def test_prior_log_densities_term_by_term(grouped, groups, cities, scale):
    model = censored_factor_model(grouped, PRIORS, city_parametrisation=cities,
                                  group_parametrisation=groups, group_scale=scale)
    assert model.factor_priors == PRIORS and model.prior_sd == {"phi_std": PRIORS["phi_sd"]}
    rng = np.random.default_rng(11)
    for _ in range(2):
        point, v = _free_point(model, rng)
        s = np.broadcast_to(v["group_sd_std"], (2,))
        expected = {
            "alpha_std": stats.norm.logpdf(v["alpha_std"], 0, PRIORS["intercept_sd"]),
            "phi_std": stats.norm.logpdf(v["phi_std"], 0, PRIORS["phi_sd"]).sum(),
            "group_sd_std": stats.halfnorm.logpdf(v["group_sd_std"],
                                                  scale=PRIORS["group_sd"]).sum(),
            "city_sd_std": stats.halfnorm.logpdf(v["city_sd_std"], scale=PRIORS["city_sd"]),
            "tau_free_std": stats.norm.logpdf(v["tau_free_std"], 0, PRIORS["year_sd"]).sum(),
            "sigma_std": stats.halfnorm.logpdf(v["sigma_std"], scale=PRIORS["sigma_sd"]),
        }
        if groups == "centred":
            expected["phi_group_std"] = stats.norm.logpdf(
                v["phi_group_std"], v["phi_std"][None, :], s[None, :]).sum()
        else:
            expected["group_z"] = stats.norm.logpdf(v["group_z"]).sum()
        if cities == "centred":
            expected["a_city_std"] = stats.norm.logpdf(v["a_city_std"], 0,
                                                       v["city_sd_std"]).sum()
        else:
            expected["city_z"] = stats.norm.logpdf(v["city_z"]).sum()
        assert set(expected) == {rv.name for rv in model.free_RVs}
        for name, value in expected.items():
            logp = model.compile_logp(vars=[model[name]], jacobian=False, sum=True)
            assert logp(point) == pytest.approx(value, rel=1e-10), name


def _deterministics(model, names):
    outputs = model.replace_rvs_by_values([model[n] for n in names])
    return model.compile_fn(outputs, inputs=model.value_vars, point_fn=True,
                            on_unused_input="ignore")


@pytest.mark.parametrize("groups", ["non-centred", "centred"])
def test_deterministics_are_the_back_transformed_parameters(grouped, groups):
    sc = scaling(grouped)
    sy, sz, mz = sc["y_scale"], np.asarray(sc["z_scale"]), np.asarray(sc["z_center"])
    model = censored_factor_model(grouped, city_parametrisation="non-centred",
                                  group_parametrisation=groups, group_scale="per-factor")
    names = ["phi", "sigma", "phi_group", "phi_group_std", "tau_std", "a_city_std"]
    fn = _deterministics(model, names)
    rng = np.random.default_rng(5)
    for _ in range(3):
        point, v = _free_point(model, rng)
        phi, sigma, phi_group, phi_group_std, tau, a_city = fn(point)
        np.testing.assert_allclose(phi, v["phi_std"] * sy / sz, rtol=1e-12)
        assert sigma == pytest.approx(v["sigma_std"] * sy, rel=1e-12)
        want_g = (v["phi_group_std"] if groups == "centred"
                  else v["phi_std"] + v["group_sd_std"] * v["group_z"])
        np.testing.assert_allclose(phi_group_std, want_g, rtol=1e-12)
        np.testing.assert_allclose(phi_group, want_g * sy / sz, rtol=1e-12)
        np.testing.assert_allclose(tau, np.append(0.0, v["tau_free_std"]), rtol=1e-12)
        assert tau.shape == (len(grouped.years),)       # the first year is the baseline
        np.testing.assert_allclose(a_city, v["city_sd_std"] * v["city_z"], rtol=1e-12)
    assert "Intercept" not in model.named_vars          # with groups there is no single intercept


def test_intercept_is_the_mean_outcome_at_zero_factors(plain):
    """Intercept = E μ at Z = 0 on the original scale: ȳ + s_y (α − Σ φ̃_k z̄_k / s_k)."""
    sc = scaling(plain)
    model = censored_factor_model(plain)
    fn = _deterministics(model, ["Intercept", "phi"])
    rng = np.random.default_rng(9)
    for _ in range(3):
        point, v = _free_point(model, rng)
        intercept, phi = fn(point)
        # the outcome model on the original scale, evaluated at Z = 0 directly
        zs0 = (0.0 - np.asarray(sc["z_center"])) / np.asarray(sc["z_scale"])
        expected = sc["y_center"] + sc["y_scale"] * (v["alpha_std"] + zs0 @ v["phi_std"])
        assert intercept == pytest.approx(expected, rel=1e-12)


def test_bounds_reach_the_likelihood_on_the_standardised_scale():
    """Upper bound only, and both bounds: the observed density is the Tobit density of the
    standardised outcome at the standardised bounds (a missing bound adds nothing)."""
    for lower, upper in ((None, 0.9), (0.0, 0.9), (0.0, None)):
        sim = simulate_censored_panel((6,), n_years=4, lower=lower, upper=upper, seed=4)
        data = factor_data(sim.data, "y ~ x1 + x2", lower, upper)
        model = censored_factor_model(data)
        logp = model.compile_logp(vars=[model[OBSERVED]], sum=True)
        sc = scaling(data)
        point, v = _free_point(model, np.random.default_rng(1))
        mu = linear_predictor({k: np.asarray(x)[None] for k, x in v.items()}, data, sc)[0]
        ys = (data.y - sc["y_center"]) / sc["y_scale"]
        lo = -np.inf if lower is None else (lower - sc["y_center"]) / sc["y_scale"]
        up = np.inf if upper is None else (upper - sc["y_center"]) / sc["y_scale"]
        s = v["sigma_std"]
        expected = np.where(ys <= lo, stats.norm.logcdf((lo - mu) / s),
                            np.where(ys >= up, stats.norm.logsf((up - mu) / s),
                                     stats.norm.logpdf(ys, mu, s))).sum()
        assert (data.at_lower.any() or data.at_upper.any())
        assert logp(point) == pytest.approx(expected, rel=1e-7), (lower, upper)


# ----------------------------------------------------------------------- linear predictor

def test_linear_predictor_against_a_loop_over_rows(grouped):
    sc = scaling(grouped)
    rng = np.random.default_rng(3)
    S, G, K, C, T = 3, len(grouped.groups), 2, len(grouped.cities), len(grouped.years)
    draws = {"alpha_std": rng.normal(size=S), "phi_std": rng.normal(size=(S, K)),
             "group_sd_std": rng.uniform(0.1, 1, size=(S, K)), "group_z": rng.normal(size=(S, G, K)),
             "city_sd_std": rng.uniform(0.1, 1, size=S), "city_z": rng.normal(size=(S, C)),
             "tau_free_std": rng.normal(size=(S, T - 1))}
    mu = linear_predictor(draws, grouped, sc)
    zs = (grouped.Z - np.asarray(sc["z_center"])) / np.asarray(sc["z_scale"])
    for s in range(S):
        tau = np.append(0.0, draws["tau_free_std"][s])
        for i in range(grouped.n):
            g, c, t = grouped.group[i], grouped.city[i], grouped.year[i]
            slope = draws["phi_std"][s] + draws["group_sd_std"][s] * draws["group_z"][s, g]
            want = (draws["alpha_std"][s] + zs[i] @ slope
                    + draws["city_sd_std"][s] * draws["city_z"][s, c] + tau[t])
            assert mu[s, i] == pytest.approx(want, rel=1e-12, abs=1e-12)
    # a shared scale (one s per draw) and centred draws give the same predictor
    shared = {**draws, "group_sd_std": draws["group_sd_std"][:, :1]}
    centred = {k: v for k, v in shared.items() if k not in ("group_z", "group_sd_std")}
    centred["phi_group_std"] = (draws["phi_std"][:, None, :]
                                + draws["group_sd_std"][:, None, :1] * draws["group_z"])
    centred["a_city_std"] = draws["city_sd_std"][:, None] * draws["city_z"]
    np.testing.assert_allclose(linear_predictor(shared, grouped, sc),
                               linear_predictor(centred, grouped, sc), rtol=1e-12)


def test_linear_predictor_without_groups_or_effects(plain):
    sc = scaling(plain)
    draws = {"alpha_std": np.array([0.3, -0.2]), "phi_std": np.array([[0.5, -1.0], [2.0, 0.1]])}
    zs = (plain.Z - np.asarray(sc["z_center"])) / np.asarray(sc["z_scale"])
    want = draws["alpha_std"][:, None] + draws["phi_std"] @ zs.T
    np.testing.assert_allclose(linear_predictor(draws, plain, sc), want, rtol=1e-12)


# ------------------------------------------------------------- results from stored draws

def _posterior(chains=3, draws=200, groups=("g1", "g2"), seed=0, intercept=False):
    rng = np.random.default_rng(seed)
    G = len(groups)
    post = {"phi": rng.normal([0.5, -0.3], [0.2, 0.1], size=(chains, draws, 2)),
            "sigma": rng.gamma(9.0, 0.05, size=(chains, draws))}
    dims = {"phi": ["factor"]}
    coords = {"factor": ["x1", "x2"]}
    if G:
        post["phi_group"] = rng.normal(0, 1, size=(chains, draws, G, 2)) \
            + np.linspace(-1, 1, G)[:, None]
        dims["phi_group"] = ["group", "factor"]
        coords["group"] = list(groups)
    if intercept:
        post["Intercept"] = rng.normal(1.0, 0.3, size=(chains, draws))
    idata = az.from_dict(posterior=post, dims=dims, coords=coords)
    idata.posterior.attrs["outcome"] = "Interact"
    return idata


def _expected_row(values, chains):
    flat = values.reshape(-1)
    hdi = az.hdi(flat, hdi_prob=0.94)
    return [flat.mean(), flat.std(ddof=1), hdi[0], hdi[1],
            az.rhat(values) if chains > 1 else np.nan, az.ess(values, method="bulk")]


@pytest.mark.parametrize("chains", [3, 2, 1])
def test_summary_frame_rows_against_arviz(chains):
    idata = _posterior(chains=chains)
    frame = summary_frame(idata)
    assert list(frame["term"]) == ["x1", "x2", "x1[g1]", "x2[g1]", "x1[g2]", "x2[g2]", "sigma"]
    assert set(frame["equation"]) == {"Interact"}
    post = idata.posterior
    sources = [post["phi"].sel(factor="x1"), post["phi"].sel(factor="x2")]
    sources += [post["phi_group"].sel(group=g, factor=f) for g in ("g1", "g2")
                for f in ("x1", "x2")]
    sources.append(post["sigma"])
    cols = ["mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk"]
    for (_, row), da in zip(frame.iterrows(), sources):
        want = _expected_row(da.transpose("chain", "draw").values, chains)
        np.testing.assert_allclose(row[cols].to_numpy(float), want, rtol=1e-12, equal_nan=True)
    assert frame["hdi_low"].lt(frame["mean"]).all() and frame["mean"].lt(frame["hdi_high"]).all()
    assert bool(frame["r_hat"].isna().all()) is (chains == 1)
    assert summary_frame(idata, "other")["equation"].eq("other").all()


def test_summary_frame_without_groups_starts_with_the_intercept():
    idata = _posterior(groups=(), intercept=True)
    frame = summary_frame(idata)
    assert list(frame["term"]) == ["Intercept", "x1", "x2", "sigma"]
    want = _expected_row(idata.posterior["Intercept"].transpose("chain", "draw").values, 3)
    np.testing.assert_allclose(frame.iloc[0][["mean", "sd", "hdi_low", "hdi_high", "r_hat",
                                              "ess_bulk"]].to_numpy(float), want, rtol=1e-12)
    tiny = summary_frame(_posterior(chains=1, draws=2, groups=()))
    assert tiny[["hdi_low", "hdi_high"]].isna().all().all()   # no HDI from two draws
    with pytest.warns(RuntimeWarning):                      # the sd of one draw is undefined
        one = summary_frame(_posterior(chains=1, draws=1, groups=()))
    assert one[["hdi_low", "hdi_high"]].isna().all().all()    # nor from one
    three = summary_frame(_posterior(chains=1, draws=3, groups=()))
    assert np.isfinite(three[["hdi_low", "hdi_high"]].to_numpy()).all()   # but from three


def test_group_contrasts_against_numpy():
    idata = _posterior(groups=("a", "b", "c"))
    pg = idata.posterior["phi_group"]
    default = group_contrasts(idata)
    assert list(default["contrast"]) == ["a - c", "a - c", "b - c", "b - c"]
    assert list(default["factor"]) == ["x1", "x2", "x1", "x2"]
    chosen = group_contrasts(idata, [("c", "a")])
    for frame, pairs in ((default, [("a", "c"), ("b", "c")]), (chosen, [("c", "a")])):
        rows = iter(frame.itertuples())
        for g, h in pairs:
            for f in ("x1", "x2"):
                row = next(rows)
                d = (pg.sel(group=g, factor=f) - pg.sel(group=h, factor=f)).values.reshape(-1)
                hdi = az.hdi(d, hdi_prob=0.94)
                np.testing.assert_allclose(
                    [row.mean, row.sd, row.hdi_low, row.hdi_high, row.prob_positive],
                    [d.mean(), d.std(ddof=1), hdi[0], hdi[1], (d > 0).mean()], rtol=1e-12)
    assert 0 < chosen["prob_positive"].iloc[0] < 1
    itself = group_contrasts(idata, [("b", "b")])          # a difference of exactly 0 is not > 0
    assert (itself["prob_positive"] == 0).all() and (itself["mean"] == 0).all()
    with pytest.raises(InputError, match=r"contrast a - z: unknown group z \(groups: a, b, c\)"):
        group_contrasts(idata, [("a", "z")])
    with pytest.raises(InputError, match="contrasts need a fit with group slopes"):
        group_contrasts(_posterior(groups=()))


def test_fit_censored_passes_settings_and_records_the_choices(grouped, monkeypatch):
    """The sampler is replaced by prior draws: what is tested is what fit_censored adds."""
    import pymc as pm

    from models.bayes import sampling

    seen = {}

    def fake_sample(model, **kwargs):
        seen.update(kwargs)
        with model:
            prior = pm.sample_prior_predictive(draws=20, random_seed=1).prior
        idata = az.InferenceData(posterior=prior)
        idata.attrs["convergence_report"] = '["ok"]'
        return idata

    monkeypatch.setattr(sampling, "sample", fake_sample)
    cm.fit_censored(grouped)
    assert seen == {"draws": 1000, "tune": 1000, "chains": 4, "seed": 0, "sampler": "nutpie",
                    "progress": False, "target_accept": 0.9, "max_treedepth": None,
                    "checks": None}                              # the documented defaults
    idata = cm.fit_censored(grouped, {"phi_sd": 0.7}, draws=11, tune=12, chains=3, seed=4,
                            sampler="pymc", group_scale="per-factor",
                            city_parametrisation="centred")
    assert seen == {"draws": 11, "tune": 12, "chains": 3, "seed": 4, "sampler": "pymc",
                    "progress": False, "target_accept": 0.9, "max_treedepth": None,
                    "checks": None}
    attrs = idata.posterior.attrs
    assert attrs["outcome"] == "y" and json.loads(attrs["factors"]) == ["x1", "x2"]
    assert attrs["group_column"] == "group" and attrs["effects"] == "city,year"
    assert (attrs["lower"], attrs["upper"]) == (0.0, 0.9)
    assert json.loads(attrs["scaling"]) == scaling(grouped)
    assert json.loads(attrs["priors"]) == {**DEFAULT_PRIORS, "phi_sd": 0.7}
    assert attrs["convergence_report"] == '["ok"]'
    assert attrs["city_effects"] == "hierarchical (centred)"
    assert attrs["group_slopes"] == "non-centred, HalfNormal scale per-factor"
    assert attrs["year_effects"] == "fixed (first year baseline)"


def test_fit_censored_records_missing_bounds_as_empty(monkeypatch):
    from models.bayes import sampling

    sim = simulate_censored_panel((6,), n_years=3, lower=None, upper=0.9, seed=4)
    data = factor_data(sim.data, "y ~ x1 + x2", None, 0.9)
    monkeypatch.setattr(sampling, "sample", lambda model, **kw: _posterior(groups=()))
    attrs = cm.fit_censored(data).posterior.attrs
    assert (attrs["lower"], attrs["upper"]) == ("", 0.9)
    assert attrs["group_column"] == "" and attrs["effects"] == ""
    assert attrs["city_effects"] == "hierarchical (non-centred)"


def test_posterior_predictive_against_a_direct_replication(grouped):
    """Draws spread evenly over the chains, μ + σ ε on the standardised scale, back to the
    original scale, then censored at both bounds."""
    rng = np.random.default_rng(6)
    C, D, G, K = 2, 30, len(grouped.groups), 2
    post = {"alpha_std": rng.normal(size=(C, D)), "phi_std": rng.normal(size=(C, D, K)),
            "phi_group_std": rng.normal(size=(C, D, G, K)),
            "a_city_std": rng.normal(size=(C, D, len(grouped.cities))),
            "tau_free_std": rng.normal(size=(C, D, len(grouped.years) - 1)),
            "sigma_std": rng.uniform(0.3, 1.2, size=(C, D))}
    sc = scaling(grouped)
    sc_other = {**sc, "y_center": sc["y_center"] + 0.2}
    idata = az.from_dict(posterior=post, dims={"phi_std": ["factor"],
                                                "phi_group_std": ["group", "factor"],
                                                "a_city_std": ["city"], "tau_free_std": ["yf"]})
    idata.posterior.attrs["scaling"] = json.dumps(sc_other)
    rep = posterior_predictive(idata, grouped, max_draws=7, seed=3)
    flat = {k: v.reshape(C * D, *v.shape[2:]) for k, v in post.items()}
    take = np.unique(np.linspace(0, C * D - 1, 7).astype(int))
    assert take[0] == 0 and take[-1] == C * D - 1          # both chains are used
    draws = {k: v[take] for k, v in flat.items()}
    mu = linear_predictor(draws, grouped, sc_other)        # the stored scaling is used
    noise = np.random.default_rng(3).standard_normal(mu.shape)
    want = np.clip(sc_other["y_center"] + sc_other["y_scale"]
                   * (mu + draws["sigma_std"][:, None] * noise), 0.0, 0.9)
    np.testing.assert_allclose(rep, want, rtol=1e-12)
    assert (rep == 0.0).any() and (rep == 0.9).any()
    assert posterior_predictive(idata, grouped, max_draws=500).shape == (C * D, grouped.n)
    many = az.from_dict(posterior={k: np.concatenate([v] * 4, axis=1) for k, v in post.items()},
                        dims={"phi_std": ["factor"], "phi_group_std": ["group", "factor"],
                              "a_city_std": ["city"], "tau_free_std": ["yf"]})
    assert posterior_predictive(many, grouped).shape == (200, grouped.n)   # the default cap


def test_posterior_predictive_without_stored_scaling_uses_the_data(plain):
    rng = np.random.default_rng(2)
    post = {"alpha_std": rng.normal(size=(1, 5)), "phi_std": rng.normal(size=(1, 5, 2)),
            "sigma_std": rng.uniform(0.3, 1.0, size=(1, 5))}
    idata = az.from_dict(posterior=post, dims={"phi_std": ["factor"]})
    np.testing.assert_array_equal(posterior_predictive(idata, plain),
                                  posterior_predictive(idata, plain, seed=0))  # documented seed
    rep = posterior_predictive(idata, plain, seed=1)
    sc = scaling(plain)
    draws = {k: v[0] for k, v in post.items()}
    mu = linear_predictor(draws, plain, sc)
    noise = np.random.default_rng(1).standard_normal(mu.shape)
    want = np.maximum(sc["y_center"] + sc["y_scale"]
                      * (mu + draws["sigma_std"][:, None] * noise), 0.0)
    np.testing.assert_allclose(rep, want, rtol=1e-12)
