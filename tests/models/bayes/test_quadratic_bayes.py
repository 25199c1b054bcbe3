"""Bayesian quadratic model: prior values of the shape probabilities, the log-density against a
dense computation, P(inverted U) on data without any effect of A, and SAR recovery.

Sampling runs are short (2 chains × 400 draws, n = 240 or 225); the recovery checks allow
3 posterior sd, and the probability checks allow ≥ 4 Monte Carlo standard errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import stats

from data_prep.synthetic.simulate import lattice_weights
from models.bayes.idata import coef_grid
from models.bayes.quadratic import build_quadratic_model, sample_quadratic
from models.spec.quadratic import build_quadratic


def _inverted_u(n=240, seed=1):
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 4, n)
    x1 = rng.normal(size=n)
    y = 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 + 0.8 * rng.normal(size=n)
    return pd.DataFrame({"city": [f"c{i:04d}" for i in range(n)], "y": y, "A": A, "x1": x1})


def test_prior_probabilities_match_prior_draws():
    data = build_quadratic(_inverted_u(), "y ~ A + x1", "A")
    model = build_quadratic_model(data)
    expected = model.prior_probabilities
    with model:
        prior = pm.sample_prior_predictive(draws=6000, random_seed=3,
                                           var_names=["inverted_u", "u_shape", "inside_range"]
                                           ).prior
    se = np.sqrt(0.25 * 0.75 / 6000)            # binomial standard error, ≈ 0.0056
    assert expected["inverted_u"] == 0.25 and expected["u_shape"] == 0.25
    assert float(prior["inverted_u"].mean()) == pytest.approx(0.25, abs=4 * se)
    assert float(prior["u_shape"].mean()) == pytest.approx(0.25, abs=4 * se)
    assert float(prior["inside_range"].mean()) == pytest.approx(expected["inside_range"],
                                                                abs=4 * 0.5 / np.sqrt(6000))
    assert 0.05 < expected["inside_range"] < 0.95


# ----------------------------------------------------------------------------- SAR

@pytest.fixture(scope="module")
def sar():
    w = lattice_weights(15)
    W = w.matrix
    n = W.shape[0]
    rng = np.random.default_rng(21)
    A = rng.uniform(0, 4, n)
    x1 = rng.normal(size=n)
    mu = 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 + 0.6 * rng.normal(size=n)
    y = spla.spsolve(sp.identity(n, format="csc") - 0.4 * W.tocsc(), mu)
    df = pd.DataFrame({"city": list(w.cities), "y": y, "A": A, "x1": x1})
    return build_quadratic(df, "y ~ A + x1", "A", weights=w, spatial_lag=True)


def test_sar_loglik_matches_dense_computation(sar):
    model = build_quadratic_model(sar)
    outs = model.replace_rvs_by_values([model[nm] for nm in ("loglik", "coef", "Sigma")])
    evaluate = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    W = sar.system.W.toarray()
    Z, y = sar.design(), sar.y
    n = y.size
    for rho, beta, sd in ((0.3, [0.1, 0.4, -0.3, 0.2], 0.7), (-0.2, [0.0, -0.1, 0.2, 0.5], 1.3)):
        point = {"structural_std": np.array([rho]), "beta_std": np.array(beta),
                 "sd_std_log__": np.log(sd)}
        loglik, coef, sigma = evaluate(point)
        c, s2 = coef[0], sigma[0, 0]
        assert c[0] == pytest.approx(rho)  # W(y) is first; G = 1 keeps ρ unscaled
        resid = y - Z @ c
        dense = (np.linalg.slogdet(np.eye(n) - rho * W)[1]
                 + stats.norm.logpdf(resid, scale=np.sqrt(s2)).sum())
        assert float(loglik) == pytest.approx(dense, rel=1e-9)


def test_sar_student_t_loglik_and_sample(sar):
    """errors="student-t" reaches the quadratic model: the log-density is the SAR Jacobian plus
    a Student-t(ν, σ) density of the residuals (dense check), and a tiny sample has ``nu`` in
    the posterior and its summary row (errors, nu)."""
    model = build_quadratic_model(sar, errors="student-t")
    assert "nu" in [rv.name for rv in model.free_RVs]
    outs = model.replace_rvs_by_values([model[nm] for nm in ("loglik", "coef", "Sigma")])
    evaluate = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    W = sar.system.W.toarray()
    Z, y = sar.design(), sar.y
    n = y.size
    rho, nu = 0.3, 4.5
    point = {"structural_std": np.array([rho]), "beta_std": np.array([0.1, 0.4, -0.3, 0.2]),
             "sd_std_log__": np.log(0.7), "nu_log__": np.log(nu)}
    loglik, coef, sigma = evaluate(point)
    resid = y - Z @ coef[0]
    dense = (np.linalg.slogdet(np.eye(n) - rho * W)[1]
             + stats.t.logpdf(resid, df=nu, scale=np.sqrt(sigma[0, 0])).sum())
    assert float(loglik) == pytest.approx(dense, rel=1e-9)

    idata, post = sample_quadratic(sar, draws=60, tune=60, chains=2, seed=5, errors="student-t")
    assert idata.posterior["nu"].shape == (2, 60)
    row = post.summary[(post.summary.equation == "errors") & (post.summary.term == "nu")]
    assert len(row) == 1 and row["mean"].iloc[0] > 0 and row["hdi_low"].iloc[0] > 0


def test_sar_posterior_recovers_rho_curvature_and_turning_point(sar):
    idata, post = sample_quadratic(sar, draws=400, tune=400, chains=2, seed=5)
    coef = coef_grid(idata.posterior).sel(equation="y")
    for term, truth in (("W(y)", 0.4), ("A", 2.0), ("A^2", -0.5)):
        draws = coef.sel(term=term).values
        assert abs(draws.mean() - truth) < 3 * draws.std(), term
    tp = idata.posterior["turning_point"].values
    assert abs(np.median(tp) - 2.0) < 3 * tp.std()
    assert post.probabilities["inverted_u"] > 0.99 and post.probabilities["inside_range"] > 0.99
    assert post.summary["r_hat"].max() < 1.02   # measured 1.002-1.009 over sampler seeds 1-6
    # total effect (c1 + 2c2·a)/(1 − ρ): same turning point in every draw
    rho = coef.sel(term="W(y)").values
    assert (rho < 1).all()
    c1, c2 = coef.sel(term="A").values, coef.sel(term="A^2").values
    total_slope_at_tp = (c1 + 2 * c2 * tp) / (1 - rho)
    np.testing.assert_allclose(total_slope_at_tp, 0.0, atol=1e-9)
    assert "same point in every draw" in post.describe()


# ----------------------------------------------------------------------------- no effect

def test_no_effect_of_A_gives_the_prior_probability():
    """A symmetric about 0 (so corr(A, A²) = 0) and y with OLS c1 = c2 = 0 exactly.

    The posterior of (c1, c2) is then centred at 0 with correlation r ≈ 0, so by Sheppard's
    formula P(c1 > 0, c2 < 0) = 1/4 + arcsin(corr(c1, −c2))/(2π) ≈ 1/4, the prior value.
    Tolerance 0.07: the indicator's Monte Carlo standard error with 800 draws is ≈ 0.015 (ESS
    ≈ draws here), plus the small posterior correlation.
    """
    rng = np.random.default_rng(4)
    u = rng.uniform(0.1, 2.0, 120)
    A = np.concatenate([u, -u])
    n = A.size
    x1 = rng.normal(size=n)
    X = np.column_stack([np.ones(n), A, A ** 2, x1])
    noise = rng.normal(size=n)
    noise -= X @ np.linalg.lstsq(X, noise, rcond=None)[0]   # orthogonal to 1, A, A², x1
    y = 1.0 + 0.7 * x1 + noise
    df = pd.DataFrame({"city": [f"c{i:04d}" for i in range(n)], "y": y, "A": A, "x1": x1})
    data = build_quadratic(df, "y ~ A + x1", "A")
    idata, post = sample_quadratic(data, draws=400, tune=400, chains=2, seed=9)
    c = coef_grid(idata.posterior).sel(equation="y")
    c1, c2 = c.sel(term="A").values.ravel(), c.sel(term="A^2").values.ravel()
    r = np.corrcoef(c1, -c2)[0, 1]
    assert abs(r) < 0.2
    p = post.probabilities["inverted_u"]
    assert p == pytest.approx(post.prior["inverted_u"], abs=0.07)
    assert p == pytest.approx(0.25 + np.arcsin(r) / (2 * np.pi), abs=0.07)
    assert post.summary.set_index("term").loc["p_inverted_u", "mean"] == pytest.approx(p)
    assert any("heavy tails" in note for note in post.notes)


def test_slope_prior_sd_is_the_root_variance_inflation():
    from models.bayes.quadratic import slope_prior_sd

    df = _inverted_u()
    data = build_quadratic(df, "y ~ A", "A")
    r = np.corrcoef(df.A, df.A ** 2)[0, 1]
    assert slope_prior_sd(data) == pytest.approx(np.sqrt(1 / (1 - r ** 2)), rel=1e-8)
    assert slope_prior_sd(data) > 3            # A on [0, 4]: A and A² nearly collinear
    model = build_quadratic_model(data)
    assert np.allclose(model.prior_sd["beta_std"][1:], slope_prior_sd(data))
    assert build_quadratic_model(data, priors={"beta_sigma": 1.0}).prior_sd["beta_std"][1] == 1.0


def test_durbin_term_without_spatial_lag_builds(sar):
    df = pd.DataFrame({"city": sar.system.cities, "y": sar.y, "A": sar.values,
                       "x1": sar.design()[:, -1]})
    w = lattice_weights(15)
    data = build_quadratic(df, "y ~ A + W(x1)", "A", weights=w)
    assert not data.spatial_lag and data.system.W is not None
    model = build_quadratic_model(data)
    assert "W(x1)" in model.layout.terms and not model.layout.structural
