"""The hierarchical censored factor model (docs/method.md §5; the Bayesian side of the paper's Table 10).

    y_rt = min(max(y*_rt, L), U),  y*_rt ~ Normal(μ_rt, σ),
    μ_rt = α + a_r + τ_t + Σ_k Z̃_rtk φ_{g(r),k},

built with ``pm.Censored(pm.Normal.dist(μ, σ), lower=L, upper=U)``, whose log-density is
log Φ((L − μ)/σ) at the lower bound, log Φ((μ − U)/σ) at the upper bound and the normal log-pdf
inside (a Tobit likelihood). Everything is fitted on a standardised scale: the outcome (and its
bounds) by its sample mean and sd, each factor Z̃_k = (Z_k − mean)/sd; the results are reported on
the original scale as deterministics ``phi`` (factor), ``phi_group`` (group, factor), ``sigma`` and,
without groups, ``Intercept`` (the mean of μ at zero factors, the first year and the average city).
After sampling the posterior holds only these (and ``xi``); the standardised variables
(``alpha_std``, ``phi_std``, ``sigma_std``, the city and year effects …) are in the group
``unconstrained_posterior`` (:mod:`models.bayes.idata`).

Structure **(choices, documented defaults)**:

* Group slopes, partially pooled toward the overall φ: φ_g ~ Normal(φ, s) with
  s ~ HalfNormal(``group_sd``). ``group_scale``: "shared" (default; one s for all factors, on
  the standardised scale where the factors are comparable) or "per-factor" (s_k per factor:
  groups may differ in one factor and agree in another, but with a handful of groups each s_k
  rests on a few deviations). Measured on the demo panel (Interact_PSS by tier, 241 cities,
  city and year effects, 2 × 300 draws after 500 tuning steps): per-factor scales gave 9-38
  divergences and R-hat up to 1.25 in either parametrisation; the shared scale none, with
  R-hat ≤ 1.02 and bulk-ESS ≥ 170 for every reported slope (s itself mixes slowly: ESS 26,
  its posterior is near 0 as the demo has no group differences; another seed of the same fit
  gave worst R-hat 1.14 over all variables, driven by s: use ≥ 1000 draws for the tables).
  φ is the location of the
  group slopes, not a sample-size-weighted average; a group with few cities is pulled toward it.
  ``group_parametrisation``: "non-centred" (default,
  φ_g = φ + s ⊙ z_g, z_g ~ Normal(0, 1); right when groups are small or s is near 0) or
  "centred" (φ_g sampled directly; right when every group has many cities, which pins φ_g
  and makes the non-centred z_g = (φ_g − φ)/s a funnel in s).
* City effects hierarchical: a_r ~ Normal(0, sd_city), sd_city ~ HalfNormal(``city_sd``) (random
  effects: no incidental-parameter problem, unlike Tobit dummies). Parametrisation
  ``city_parametrisation``: "centred" (a_r sampled directly) suits panels whose cities differ much
  more than the years of one city (each a_r is pinned by its own data; the non-centred form then
  makes a funnel-like coupling of sd_city and z_r), "non-centred" (a_r = sd_city · z_r,
  z_r ~ Normal(0, 1)) suits weakly informed city effects; "auto" (default) chooses centred when
  the one-way ANOVA ratio of between-city to within-city mean squares of y exceeds 2. Measured:
  the ratio is 268 for the demo's Interact_PSS (148 for Interact_PSD), 1.6 for the simulated
  panels of the tests (non-centred there).
* Mundlak device (``data.mundlak``, :mod:`models.spec.factor`; off by default): the city means
  x̄_r of the factors that vary within cities enter with common slopes ξ (deterministic
  ``xi`` (dim ``mundlak``) on the original scale, summary terms ``mean(x)``; one slope for all groups, since
  they stand for the part of a_r that the factors predict), ξ_k ~ Normal(0, ``phi_sd``) on the
  standardised scale. Assumptions: without it, the random city effects are independent of the
  factors, and a city effect that correlates with a factor biases that factor's slope (toward
  the pooled estimate); with it, a_r = x̄_r'ξ + u_r (Mundlak's correlated random effects), u_r
  independent of the factors, and φ estimates what the fixed-effects Tobit estimates (the
  within-city effect), without its incidental-parameter bias.
* Year effects fixed: τ_1 = 0 (the first year is the baseline, as the Tobit's dummies),
  τ_t ~ Normal(0, ``year_sd``) otherwise.
* Priors on the standardised scale (:data:`DEFAULT_PRIORS`, overridable by a dict):
  α ~ Normal(0, ``intercept_sd``), φ_k ~ Normal(0, ``phi_sd``), σ ~ HalfNormal(``sigma_sd``).
  With ``phi_sd = 1`` a one-sd change of a factor moving the outcome by more than two of its sds
  is a priori unlikely.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from data_prep.errors import InputError
from models.bayes.idata import posterior_and_internal
from models.bayes import sampling  # sampling.sample looked up per call: tests replace it
from models.spec.factor import FactorData

DEFAULT_PRIORS = {"intercept_sd": 2.0, "phi_sd": 1.0, "group_sd": 0.5, "city_sd": 1.0,
                  "year_sd": 1.0, "sigma_sd": 1.0}
OBSERVED = "outcome"
HDI_PROB = 0.94


def check_priors(priors: dict | None) -> dict:
    """The default prior scales updated by ``priors``; unknown names and bad scales refused."""
    out = dict(DEFAULT_PRIORS)
    for key, value in (priors or {}).items():
        if key not in DEFAULT_PRIORS:
            raise InputError(f"unknown prior {key!r} (known: {', '.join(DEFAULT_PRIORS)})")
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"prior {key} must be a positive scale, not {value}")
        out[key] = float(value)
    return out


def scaling(data: FactorData) -> dict:
    """Centres and scales of the outcome, the factors and the Mundlak means (stored with the
    fit, JSON-safe; the last two empty without the device)."""
    y_scale = float(np.std(data.y))
    return {"y_center": float(np.mean(data.y)), "y_scale": y_scale if y_scale > 0 else 1.0,
            "z_center": data.Z.mean(0).tolist(), "z_scale": data.Z.std(0).tolist(),
            "m_center": data.M.mean(0).tolist(), "m_scale": data.M.std(0).tolist()}


def _standardised_means(data: FactorData, sc: dict) -> np.ndarray:
    """(n, K_m) Mundlak means on the standardised scale."""
    return (data.M - np.asarray(sc["m_center"])) / np.asarray(sc["m_scale"])


def city_anova_ratio(data: FactorData) -> float:
    """Between-city over within-city mean square of y (one-way ANOVA F ratio)."""
    n_c = np.bincount(data.city)
    means = np.bincount(data.city, data.y) / n_c
    between = np.sum(n_c * (means - data.y.mean()) ** 2) / max(len(n_c) - 1, 1)
    within = np.sum((data.y - means[data.city]) ** 2) / max(data.n - len(n_c), 1)
    return float(between / within) if within > 0 else np.inf


def censored_factor_model(data: FactorData, priors: dict | None = None, *,
                          city_parametrisation: str = "auto",
                          group_parametrisation: str = "non-centred",
                          group_scale: str = "shared") -> pm.Model:
    """The PyMC model of ``data`` (its groups and effects decide the structure, see module doc)."""
    pr = check_priors(priors)
    if city_parametrisation not in ("auto", "centred", "non-centred"):
        raise InputError(f"city_parametrisation must be auto, centred or non-centred, not "
                         f"{city_parametrisation!r}")
    if group_parametrisation not in ("centred", "non-centred"):
        raise InputError(f"group_parametrisation must be centred or non-centred, not "
                         f"{group_parametrisation!r}")
    if group_scale not in ("per-factor", "shared"):
        raise InputError(f"group_scale must be per-factor or shared, not {group_scale!r}")
    centred = (city_parametrisation == "centred"
               or (city_parametrisation == "auto" and "city" in data.effects
                   and city_anova_ratio(data) > 2.0))
    sc = scaling(data)
    my, sy = sc["y_center"], sc["y_scale"]
    mz, sz = np.asarray(sc["z_center"]), np.asarray(sc["z_scale"])
    lower = -np.inf if data.lower is None else (data.lower - my) / sy
    upper = np.inf if data.upper is None else (data.upper - my) / sy
    coords = {"factor": list(data.factors), "obs": np.arange(data.n)}
    if data.mundlak:
        coords["mundlak"] = list(data.mundlak_terms)
    if data.groups:
        coords["group"] = list(data.groups)
    if "city" in data.effects:
        coords["city"] = [str(c) for c in data.cities]
    if "year" in data.effects:
        coords["year"] = [str(y) for y in data.years]
        coords["year_free"] = coords["year"][1:]
    with pm.Model(coords=coords) as model:
        Zs = pm.Data("Z_std", (data.Z - mz) / sz, dims=("obs", "factor"))
        ys = pm.Data("y_std", (data.y - my) / sy, dims="obs")
        alpha = pm.Normal("alpha_std", 0.0, pr["intercept_sd"])
        phi = pm.Normal("phi_std", 0.0, pr["phi_sd"], dims="factor")
        mu = alpha
        if data.groups:
            gidx = pm.Data("group_idx", data.group, dims="obs")
            if group_scale == "shared":
                s = pm.HalfNormal("group_sd_std", pr["group_sd"])
            else:
                s = pm.HalfNormal("group_sd_std", pr["group_sd"], dims="factor")
            if group_parametrisation == "centred":
                phi_g = pm.Normal("phi_group_std", phi, s, dims=("group", "factor"))
            else:
                z = pm.Normal("group_z", 0.0, 1.0, dims=("group", "factor"))
                phi_g = pm.Deterministic("phi_group_std", phi + s * z, dims=("group", "factor"))
            mu = mu + (Zs * phi_g[gidx]).sum(axis=1)
            pm.Deterministic("phi_group", phi_g * sy / sz, dims=("group", "factor"))
        else:
            mu = mu + Zs @ phi
        xi_shift = 0.0
        if data.mundlak:
            Ms = pm.Data("M_std", _standardised_means(data, sc), dims=("obs", "mundlak"))
            xi = pm.Normal("xi_std", 0.0, pr["phi_sd"], dims="mundlak")
            mu = mu + Ms @ xi
            sm = np.asarray(sc["m_scale"])
            pm.Deterministic("xi", xi * sy / sm, dims="mundlak")
            xi_shift = pt.sum(xi * sy / sm * np.asarray(sc["m_center"]))
        if "city" in data.effects:
            cidx = pm.Data("city_idx", data.city, dims="obs")
            sd_city = pm.HalfNormal("city_sd_std", pr["city_sd"])
            if centred:
                a_city = pm.Normal("a_city_std", 0.0, sd_city, dims="city")
            else:
                zc = pm.Normal("city_z", 0.0, 1.0, dims="city")
                a_city = pm.Deterministic("a_city_std", sd_city * zc, dims="city")
            mu = mu + a_city[cidx]
        if "year" in data.effects:
            tidx = pm.Data("year_idx", data.year, dims="obs")
            tau_free = pm.Normal("tau_free_std", 0.0, pr["year_sd"], dims="year_free")
            tau = pm.Deterministic("tau_std", pt.concatenate([pt.zeros(1), tau_free]),
                                   dims="year")
            mu = mu + tau[tidx]
        sigma = pm.HalfNormal("sigma_std", pr["sigma_sd"])
        pm.Censored(OBSERVED, pm.Normal.dist(mu, sigma), lower=lower, upper=upper,
                    observed=ys, dims="obs")
        pm.Deterministic("phi", phi * sy / sz, dims="factor")
        pm.Deterministic("sigma", sigma * sy)
        if not data.groups:
            pm.Deterministic("Intercept", my + sy * alpha - pt.sum(phi * sy / sz * mz)
                             - xi_shift)
    model.factor_scaling = sc
    model.city_parametrisation = "centred" if centred else "non-centred"
    model.factor_priors = pr
    model.prior_sd = {"phi_std": pr["phi_sd"]}
    model.rhat_advice = ("Draw more samples ({draws}) or raise the target acceptance "
                         "({target_accept}); a pooling scale near zero "
                         "(groups that do not differ) mixes slowly, so try the other "
                         "group parametrisation or fewer groups.")
    return model


def linear_predictor(draws: dict, data: FactorData, sc: dict) -> np.ndarray:
    """(S, n) μ on the standardised scale from (S, ...) arrays of the free variables' values."""
    Zs = (data.Z - np.asarray(sc["z_center"])) / np.asarray(sc["z_scale"])
    alpha = np.asarray(draws["alpha_std"])
    S = alpha.shape[0]
    if data.groups:
        phi_g = (np.asarray(draws["phi_group_std"]) if "phi_group_std" in draws else
                 np.asarray(draws["phi_std"])[:, None, :]
                 + np.asarray(draws["group_sd_std"]).reshape(alpha.shape[0], 1, -1)
                 * np.asarray(draws["group_z"]))
        mu = np.einsum("nk,snk->sn", Zs, phi_g[:, data.group, :])
    else:
        mu = np.asarray(draws["phi_std"]) @ Zs.T
    mu = mu + alpha[:, None]
    if data.mundlak:
        mu = mu + np.asarray(draws["xi_std"]) @ _standardised_means(data, sc).T
    if "city" in data.effects:
        a = (np.asarray(draws["a_city_std"]) if "a_city_std" in draws else
             np.asarray(draws["city_sd_std"])[:, None] * np.asarray(draws["city_z"]))
        mu = mu + a[:, data.city]
    if "year" in data.effects:
        tau = np.concatenate([np.zeros((S, 1)), np.asarray(draws["tau_free_std"])], axis=1)
        mu = mu + tau[:, data.year]
    return mu


def fit_censored(data: FactorData, priors: dict | None = None, *, draws: int = 1000,
                 tune: int = 1000, chains: int = 4, seed: int = 0, sampler: str = "nutpie",
                 progress: bool = False, city_parametrisation: str = "auto",
                 group_parametrisation: str = "non-centred", group_scale: str = "shared",
                 target_accept: float = 0.9, max_treedepth: int | None = None,
                 checks=None) -> az.InferenceData:
    """Build and sample the model (models.bayes.sampling.sample: nutpie, convergence report).

    ``target_accept`` 0.9 (above NUTS' usual 0.8): hierarchical scales near zero make small steps
    necessary. ``max_treedepth`` and ``checks`` go to the sampler as they are."""
    model = censored_factor_model(data, priors, city_parametrisation=city_parametrisation,
                                  group_parametrisation=group_parametrisation,
                                  group_scale=group_scale)
    idata = sampling.sample(model, draws=draws, tune=tune, chains=chains, seed=seed,
                            sampler=sampler, progress=progress, target_accept=target_accept,
                            max_treedepth=max_treedepth, checks=checks)
    idata.posterior.attrs.update({
        "outcome": data.outcome, "factors": json.dumps(list(data.factors)),
        "group_column": data.group_column or "", "effects": ",".join(data.effects),
        "mundlak": json.dumps(list(data.mundlak_terms)),
        "lower": "" if data.lower is None else data.lower,
        "upper": "" if data.upper is None else data.upper,
        "scaling": json.dumps(model.factor_scaling), "priors": json.dumps(model.factor_priors),
        "convergence_report": idata.attrs.get("convergence_report", "[]"),
        "year_effects": "fixed (first year baseline)",
        "city_effects": f"hierarchical ({model.city_parametrisation})",
        "city_effect_assumption": ("correlated with the factors through their city means "
                                   "(Mundlak)" if data.mundlak else
                                   "independent of the factors"),
        "group_slopes": f"{group_parametrisation}, HalfNormal scale {group_scale}"})
    return idata


def _stats(values: np.ndarray, chains: int) -> dict:
    """mean, sd, 94 % HDI, R-hat, bulk ESS of one (chain, draw) array."""
    flat = values.reshape(-1)
    hdi = az.hdi(flat, hdi_prob=HDI_PROB) if flat.size > 2 else np.array([np.nan, np.nan])
    return {"mean": float(flat.mean()), "sd": float(flat.std(ddof=1)),
            "hdi_low": float(hdi[0]), "hdi_high": float(hdi[1]),
            "r_hat": float(az.rhat(values)) if chains > 1 else np.nan,
            "ess_bulk": float(az.ess(values, method="bulk"))}


def summary_frame(idata: az.InferenceData, outcome: str | None = None) -> pd.DataFrame:
    """Contract-2 posterior summary: Intercept (without groups), overall slopes ``x``, the
    Mundlak slopes ``mean(x)`` (with the device), group slopes ``x[g]``, then ``sigma``;
    equation = the outcome; 94 % HDIs."""
    post = idata.posterior
    outcome = outcome or str(post.attrs.get("outcome", "y"))
    chains = post.sizes["chain"]
    rows = []

    def add(term, da):
        rows.append({"equation": outcome, "term": term,
                     **_stats(da.transpose("chain", "draw").values, chains)})

    if "Intercept" in post:
        add("Intercept", post["Intercept"])
    for f in post["phi"]["factor"].values:
        add(str(f), post["phi"].sel(factor=f))
    if "xi" in post:
        for term in post["xi"]["mundlak"].values:
            add(str(term), post["xi"].sel(mundlak=term))
    if "phi_group" in post:
        for g in post["group"].values:
            for f in post["factor"].values:
                add(f"{f}[{g}]", post["phi_group"].sel(group=g, factor=f))
    add("sigma", post["sigma"])
    return pd.DataFrame(rows, columns=["equation", "term", "mean", "sd", "hdi_low", "hdi_high",
                                       "r_hat", "ess_bulk"])


def group_contrasts(idata: az.InferenceData, pairs=None) -> pd.DataFrame:
    """Posterior of φ_g − φ_h per factor for each (g, h) in ``pairs`` (default: every group
    against the last one). Columns contrast, factor, mean, sd, hdi_low, hdi_high (94 %),
    prob_positive = P(φ_g − φ_h > 0)."""
    post = idata.posterior
    if "phi_group" not in post:
        raise InputError("contrasts need a fit with group slopes (--group)")
    groups = [str(g) for g in post["group"].values]
    if pairs is None:
        pairs = [(g, groups[-1]) for g in groups[:-1]]
    rows = []
    for g, h in pairs:
        g, h = str(g), str(h)
        missing = [x for x in (g, h) if x not in groups]
        if missing:
            raise InputError(f"contrast {g} - {h}: unknown group {', '.join(missing)} "
                             f"(groups: {', '.join(groups)})")
        diff = post["phi_group"].sel(group=g) - post["phi_group"].sel(group=h)
        for f in post["factor"].values:
            vals = diff.sel(factor=f).transpose("chain", "draw").values
            hdi = az.hdi(vals.reshape(-1), hdi_prob=HDI_PROB)
            rows.append({"contrast": f"{g} - {h}", "factor": str(f),
                         "mean": float(vals.mean()), "sd": float(vals.std(ddof=1)),
                         "hdi_low": float(hdi[0]), "hdi_high": float(hdi[1]),
                         "prob_positive": float((vals > 0).mean())})
    return pd.DataFrame(rows)


def posterior_predictive(idata: az.InferenceData, data: FactorData, *, max_draws: int = 200,
                         seed: int = 0) -> np.ndarray:
    """(S, n) replicated outcomes on the original scale, censored at the bounds, from at most
    ``max_draws`` posterior draws spread evenly over the chains."""
    # the standardised parameters sit in the sampling-scale group (models.bayes.idata)
    post = posterior_and_internal(idata).stack(sample=("chain", "draw"))
    total = post.sizes["sample"]
    take = np.unique(np.linspace(0, total - 1, min(max_draws, total)).astype(int))
    names = [v for v in ("alpha_std", "phi_std", "phi_group_std", "xi_std", "a_city_std",
                         "tau_free_std", "sigma_std") if v in post]
    draws = {v: post[v].isel(sample=take).transpose("sample", ...).values for v in names}
    sc = json.loads(post.attrs["scaling"]) if "scaling" in post.attrs else scaling(data)
    mu = linear_predictor(draws, data, sc)
    rng = np.random.default_rng(seed)
    ys = mu + draws["sigma_std"][:, None] * rng.standard_normal(mu.shape)
    y = sc["y_center"] + sc["y_scale"] * ys
    if data.lower is not None:
        y = np.maximum(y, data.lower)
    if data.upper is not None:
        y = np.minimum(y, data.upper)
    return y
