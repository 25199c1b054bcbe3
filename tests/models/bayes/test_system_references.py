"""Bayesian reporting layer against independent references.

* Prior log-densities, term by term, against scipy at random points (likelihood potential left
  out: ``compile_logp(vars=[rv], jacobian=False)``); the LKJ η of the G ≥ 3 Cholesky prior through
  a difference of differences that cancels every normalising constant and Jacobian.
* Posterior summary (HDI, mean, sd, R-hat, ESS) against ``arviz`` on the stored draws, and the
  posterior table's dagger against those HDIs.
* ``add_effects_and_loo`` (spatial errors, non-uniform quadrature weights) against the dense
  dense brute-force impacts and conditional normals of ``tests/references.py``.
* ``convergence_report`` on constructed InferenceData with and without divergences, and the
  PyMC-sampler fallback.
"""

from __future__ import annotations

import json
import sys

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import special, stats

from data_prep.spectrum.chooser import Spectrum
from data_prep.synthetic.simulate import SystemTruth, default_truth, lattice_weights, simulate_system
from models.bayes.postprocess import add_effects_and_loo, summary_frame
from models.bayes.sampling import convergence_report
from models.bayes.system import build_system_model
from models.spec.coefficient_tables import posterior_frame, posterior_table
from models.spec.system import build_system, parse_system
from tests.references import (dense_conditional_loglik, impacts_brute_force,
                              shock_impacts_brute_force)


# ------------------------------------------------------------------------------ priors

def _three_equation_truth() -> SystemTruth:
    coefficients = {
        "y1": {"W(y1)": 0.2, "y2": 0.3, "Intercept": 1.0, "x1": 1.0, "z1": 0.7},
        "y2": {"W(y2)": 0.3, "y3": -0.2, "Intercept": -0.5, "x1": 0.5, "z2": 1.0},
        "y3": {"W(y3)": -0.2, "y1": 0.25, "Intercept": 0.2, "x2": -0.7, "z3": 0.9},
    }
    return SystemTruth(coefficients, np.array([[1.0, 0.3, 0.1], [0.3, 0.8, -0.2],
                                               [0.1, -0.2, 0.6]]))


def _model(G: int, errors: str = "none", priors=None):
    w = lattice_weights(5)
    sim = simulate_system(w, None if G == 2 else _three_equation_truth(), seed=2)
    system = build_system(parse_system(sim.formulas, spatial_errors=errors), sim.data,
                          weights=sim.W, check=False)
    return build_system_model(system, np.linalg.eigvals(w.matrix.toarray()).real, priors)


def _random_points(model, k: int, seed: int):
    rng = np.random.default_rng(seed)
    start = model.initial_point()
    return [{name: v + rng.normal(0.0, 0.7, np.shape(v)) for name, v in start.items()}
            for _ in range(k)]


def _logp(model, name, point):
    return float(model.compile_logp(vars=[model[name]], jacobian=False)(point))


# distinct values so that any swap or ignored setting changes the density
PRIORS = {"structural_sigma": 0.37, "beta_sigma": 1.3, "intercept_sigma": 4.1, "sd_sigma": 0.8,
          "lkj_eta": 3.5}


@pytest.mark.parametrize("priors", [None, PRIORS])
def test_prior_terms_match_scipy(priors):
    hp = {"structural_sigma": 0.5, "beta_sigma": 1.0, "intercept_sigma": 2.5, "sd_sigma": 1.0,
          "lkj_eta": 2.0, **(priors or {})}
    model = _model(2, errors="ER", priors=priors)
    labels = list(model.coords["exogenous"])
    is_icpt = np.array([lab.endswith(": Intercept") for lab in labels])
    assert is_icpt.sum() == 2 and (~is_icpt).sum() >= 4
    lam = np.linalg.eigvals(lattice_weights(5).matrix.toarray()).real
    lo, hi = 1 / lam.min(), 1 / lam.max()         # the whole admissible interval
    for point in _random_points(model, 4, seed=1):
        s, b = point["structural_std"], point["beta_std"]
        sd = np.exp(point["sd_std_log__"])
        u = special.expit(point["corr_u_logodds__"])
        rho = lo + (hi - lo) * special.expit(point["rho_error_interval__"])
        ref = {
            "structural_std": stats.norm(0, hp["structural_sigma"]).logpdf(s).sum(),
            "beta_std": (stats.norm(0, hp["intercept_sigma"]).logpdf(b[is_icpt]).sum()
                         + stats.norm(0, hp["beta_sigma"]).logpdf(b[~is_icpt]).sum()),
            "sd_std": stats.halfnorm(scale=hp["sd_sigma"]).logpdf(sd).sum(),
            "corr_u": stats.beta(hp["lkj_eta"], hp["lkj_eta"]).logpdf(u),
            "rho_error": stats.uniform(lo, hi - lo).logpdf(rho).sum(),
        }
        for name, value in ref.items():
            # rel 1e-6: PyTensor's Beta normaliser differs from scipy's betaln at ~4e-7
            assert _logp(model, name, point) == pytest.approx(value, rel=1e-6), name
        total = model.compile_logp(vars=model.free_RVs, jacobian=False)(point)
        assert total == pytest.approx(sum(ref.values()), rel=1e-6)


def test_g2_correlation_prior_is_lkj():
    """For G = 2 the LKJ(η) density of the correlation r is ∝ (1 − r²)^(η − 1): the Beta(η, η)
    prior on u = (r + 1)/2 must give that shape (difference between two points, η = 3.5)."""
    model = _model(2, priors={"lkj_eta": 3.5})
    pts = _random_points(model, 2, seed=5)
    r = [2 * special.expit(p["corr_u_logodds__"]) - 1 for p in pts]
    got = _logp(model, "corr_u", pts[0]) - _logp(model, "corr_u", pts[1])
    ref = 2.5 * (np.log1p(-r[0] ** 2) - np.log1p(-r[1] ** 2))
    assert got == pytest.approx(ref, rel=1e-9)


def test_g3_lkj_eta_and_sd_prior():
    """G = 3 (LKJCholeskyCov): [log p_η1(a) − log p_η2(a)] − [log p_η1(b) − log p_η2(b)]
    = (η1 − η2)(log det C_a − log det C_b), C the correlation matrix; every normalising constant,
    the sd prior and the Cholesky Jacobian cancel."""
    eta1, eta2 = 4.0, 1.5
    m1 = _model(3, priors={"lkj_eta": eta1, "sd_sigma": 0.8})
    m2 = _model(3, priors={"lkj_eta": eta2, "sd_sigma": 0.8})
    a, b = _random_points(m1, 2, seed=3)
    chol_fn = m1.compile_fn(m1.replace_rvs_by_values([m1["Sigma"]])[0], inputs=m1.value_vars,
                            point_fn=True, on_unused_input="ignore")

    def logdet_corr(point):
        S = chol_fn(point)
        return np.linalg.slogdet(S)[1] - np.log(np.diag(S)).sum()

    diff = ((_logp(m1, "chol_std", a) - _logp(m2, "chol_std", a))
            - (_logp(m1, "chol_std", b) - _logp(m2, "chol_std", b)))
    assert diff == pytest.approx((eta1 - eta2) * (logdet_corr(a) - logdet_corr(b)), rel=1e-8)
    assert abs(logdet_corr(a) - logdet_corr(b)) > 0.05       # the points differ in correlation
    # the coefficient priors of the G = 3 model follow the same settings
    point = a
    labels = list(m1.coords["exogenous"])
    icpt = np.array([lab.endswith(": Intercept") for lab in labels])
    b_ = point["beta_std"]
    assert _logp(m1, "beta_std", point) == pytest.approx(
        stats.norm(0, 2.5).logpdf(b_[icpt]).sum() + stats.norm(0, 1.0).logpdf(b_[~icpt]).sum())
    assert _logp(m1, "structural_std", point) == pytest.approx(
        stats.norm(0, 0.5).logpdf(point["structural_std"]).sum())


def test_prior_sd_reported_for_contraction():
    model = _model(2, priors=PRIORS)
    labels = list(model.coords["exogenous"])
    icpt = np.array([lab.endswith(": Intercept") for lab in labels])
    assert model.prior_sd["structural_std"] == PRIORS["structural_sigma"]
    np.testing.assert_array_equal(model.prior_sd["beta_std"],
                                  np.where(icpt, PRIORS["intercept_sigma"],
                                           PRIORS["beta_sigma"]))


# ------------------------------------------------------------------------------ summary / HDI

def _fake_posterior(seed: int = 0, chains: int = 2, draws: int = 400) -> az.InferenceData:
    """Skewed draws (HDI ≠ central interval ≠ mean ± c) with one absent term (NaN)."""
    rng = np.random.default_rng(seed)
    terms = ["W(ER)", "PSS", "Intercept", "x1", "z1", "ER", "z2"]
    vals = np.empty((chains, draws, 2, len(terms)))
    for g in range(2):
        for t in range(len(terms)):
            shape = 1.5 + t + 3 * g
            shift = 0.8 if (t + g) % 2 else 0.2      # some HDIs exclude 0, some do not
            vals[:, :, g, t] = rng.gamma(shape, 0.1, (chains, draws)) - 0.1 * shape * shift
    vals[:, :, 0, terms.index("ER")] = np.nan
    vals[:, :, 0, terms.index("z2")] = np.nan
    vals[:, :, 1, terms.index("PSS")] = np.nan
    vals[:, :, 1, terms.index("z1")] = np.nan
    coef = xr.DataArray(vals, dims=("chain", "draw", "equation", "term"),
                        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                                "equation": ["ER", "PSS"], "term": terms})
    return az.InferenceData(posterior=xr.Dataset({"coef": coef}))


@pytest.mark.parametrize("hdi_prob", [0.94, 0.8])
def test_summary_matches_arviz_on_the_draws(hdi_prob):
    idata = _fake_posterior()
    frame = summary_frame(idata, hdi_prob=hdi_prob)
    coef = idata.posterior["coef"]
    assert len(frame) == 10
    for row in frame.itertuples():
        da = coef.sel(equation=row.equation, term=row.term)
        x = da.values                                   # (chain, draw)
        lo, hi = az.hdi(x.ravel(), hdi_prob=hdi_prob)
        assert (row.hdi_low, row.hdi_high) == pytest.approx((lo, hi), rel=1e-12)
        assert row.mean == pytest.approx(x.mean())
        assert row.sd == pytest.approx(x.std(ddof=1))
        assert row.r_hat == pytest.approx(az.rhat(x))
        assert row.ess_bulk == pytest.approx(az.ess(x, method="bulk"))
        # the HDI is the shortest interval: no shorter window of the sorted draws has the mass
        srt = np.sort(x.ravel())
        k = int(np.floor(hdi_prob * srt.size))
        assert hi - lo <= (srt[k:] - srt[:srt.size - k]).min() + 1e-12
    # skewed draws: the HDI is not symmetric about the mean
    asym = (frame.hdi_high - frame["mean"]) - (frame["mean"] - frame.hdi_low)
    assert asym.abs().max() > 0.01


def test_posterior_table_dagger_follows_the_hdi():
    idata = _fake_posterior(seed=1)
    frame = summary_frame(idata)
    table = posterior_table({"B": frame}).set_index("term")
    for row in posterior_frame(frame).itertuples():
        x = idata.posterior["coef"].sel(equation=row.equation, term=row.term).values.ravel()
        lo, hi = az.hdi(x, hdi_prob=0.94)
        excludes = lo > 0 or hi < 0
        label = "Constant" if row.term == "Intercept" else row.term
        cell = table.loc[label, f"B: {row.equation}"]
        assert cell.endswith("†") == excludes, (row.equation, row.term, lo, hi, cell)
    flags = [table.loc["Constant" if t == "Intercept" else t, f"B: {e}"].endswith("†")
             for e, t in zip(frame.equation, frame.term)]
    assert any(flags) and not all(flags)


# ------------------------------------------------------------------------------ effects + LOO

def _system_and_posterior(errors: str, S_chain: int = 2, S_draw: int = 2, seed: int = 0):
    """A 5 × 5 lattice system and a small constructed posterior around the truth."""
    w = lattice_weights(5)
    truth = default_truth()
    truth.coefficients["ER"]["W(x1)"] = 0.4          # a Durbin term, for θ in the impacts
    if errors != "none":
        truth.rho["ER"] = 0.4
    sim = simulate_system(w, truth, seed=3)
    system = build_system(parse_system(sim.formulas, spatial_errors=errors), sim.data,
                          weights=sim.W, check=False)
    rng = np.random.default_rng(seed)
    terms = list(dict.fromkeys(t for eq in system.spec.equations for t in eq.terms))
    deps = list(system.spec.dependents)
    shape = (S_chain, S_draw)
    coef = np.full(shape + (2, len(terms)), np.nan)
    for g, eq in enumerate(system.spec.equations):
        for t in eq.terms:
            coef[..., g, terms.index(t)] = (truth.coefficients[eq.dependent][t]
                                            + rng.normal(0, 0.05, shape))
    L = np.linalg.cholesky(truth.Sigma)
    Ls = L + rng.normal(0, 0.05, shape + (2, 2)) * np.tril(np.ones((2, 2)))
    Sigma = Ls @ np.swapaxes(Ls, -1, -2)
    data = {"coef": (("chain", "draw", "equation", "term"), coef),
            "Sigma": (("chain", "draw", "equation", "equation2"), Sigma)}
    if errors != "none":
        rho = np.full(shape + (2,), np.nan)
        rho[..., 0] = 0.4 + rng.normal(0, 0.05, shape)
        data["rho"] = (("chain", "draw", "equation"), rho)
    post = xr.Dataset(data, coords={"chain": np.arange(S_chain), "draw": np.arange(S_draw),
                                    "equation": deps, "equation2": deps, "term": terms})
    return sim, system, az.InferenceData(posterior=post)


def _flat(da):
    return da.stack(sample=("chain", "draw")).transpose("sample", ...).values


def _dense_parts(sim, idata):
    """B0, B1, betas/thetas and X̃b per draw read straight from the data frame and the terms."""
    post = idata.posterior
    coef = _flat(post["coef"])
    terms = [str(t) for t in post["term"].values]
    deps = [str(d) for d in post["equation"].values]
    W = sim.W.toarray()
    S, G, n = coef.shape[0], len(deps), W.shape[0]
    B0, B1 = np.zeros((S, G, G)), np.zeros((S, G, G))
    coefs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    xb = np.zeros((S, n, G))
    for g in range(G):
        for j, t in enumerate(terms):
            v = coef[:, g, j]
            if np.isnan(v).all():
                continue
            inner = t[2:-1] if t.startswith("W(") else None
            if inner in deps:
                B1[:, g, deps.index(inner)] = v
            elif t in deps:
                B0[:, g, deps.index(t)] = v
            elif t == "Intercept":
                xb[:, :, g] += v[:, None]
            else:
                base = inner or t
                col = sim.data[base].to_numpy()
                xb[:, :, g] += v[:, None] * ((W @ col) if inner else col)[None, :]
                b, th = coefs.setdefault(base, (np.zeros((S, G)), np.zeros((S, G))))
                (th if inner else b)[:, g] = v
    return B0, B1, coefs, xb, W


@pytest.mark.parametrize("errors", ["ER", "none"])
def test_add_effects_and_loo_matches_dense(errors):
    sim, system, idata = _system_and_posterior(errors)
    lam = np.linalg.eigvals(sim.W.toarray()).real
    notes = add_effects_and_loo(idata, system, lam)
    assert notes == []
    B0, B1, coefs, xb, W = _dense_parts(sim, idata)
    ref = impacts_brute_force(B0, B1, W, coefs, 2)
    imp = idata.posterior["impact"]
    assert imp.dims == ("chain", "draw", "effect", "response", "variable")
    for name, values in ref.items():
        got = _flat(imp.sel(variable=name))
        np.testing.assert_allclose(got, values, rtol=1e-9, atol=1e-12)
    shocks = _flat(imp.sel(variable=["ER", "PSS"]))
    np.testing.assert_allclose(shocks, shock_impacts_brute_force(B0, B1, W, 2), rtol=1e-9, atol=1e-12)

    Sigma = _flat(idata.posterior["Sigma"])
    rho = (np.nan_to_num(_flat(idata.posterior["rho"])) if errors != "none"
           else np.zeros((B0.shape[0], 2)))
    ll_ref = dense_conditional_loglik(W, system.Y, xb, B0, B1, Sigma, rho)
    ll = idata.log_likelihood["y"]
    assert ll.dims == ("chain", "draw", "city")
    assert list(ll["city"].values) == [str(c) for c in system.cities]
    np.testing.assert_allclose(_flat(ll), ll_ref, rtol=1e-8, atol=1e-8)
    if errors != "none":
        # the spatial error matters: ignoring ρ changes the densities
        no_rho = dense_conditional_loglik(W, system.Y, xb, B0, B1, Sigma, np.zeros_like(rho))
        assert np.abs(no_rho - ll_ref).max() > 1e-2


def test_impacts_with_nonuniform_quadrature_weights():
    """Nodes = the distinct eigenvalues, weights = their multiplicities (non-uniform, not summing
    to one): the weighted route must reproduce the dense brute force exactly."""
    sim, system, idata = _system_and_posterior("none", S_chain=1, S_draw=3, seed=4)
    W = sim.W.toarray()
    d = (W > 0).sum(axis=1).astype(float)
    sym = np.sqrt(d)[:, None] * W / np.sqrt(d)[None, :]
    lam = np.linalg.eigvalsh((sym + sym.T) / 2)
    nodes, counts = np.unique(np.round(lam, 9), return_counts=True)
    assert counts.max() > 1 and len(set(counts)) > 1          # genuinely non-uniform
    add_effects_and_loo(idata, system, Spectrum(nodes, counts.astype(float), "test"), loo=False)
    B0, B1, coefs, _, W = _dense_parts(sim, idata)
    ref = impacts_brute_force(B0, B1, W, coefs, 2)
    for name, values in ref.items():
        got = _flat(idata.posterior["impact"].sel(variable=name))
        np.testing.assert_allclose(got, values, rtol=1e-7, atol=1e-10)
    assert "log_likelihood" not in idata.groups()


# ------------------------------------------------------------------------------ convergence

def _report_idata(diverging: np.ndarray, chains=4, draws=500, seed=0) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    post = xr.Dataset({"coef": (("chain", "draw", "equation", "term"),
                                rng.standard_normal((chains, draws, 1, 2)))},
                      coords={"equation": ["y"], "term": ["a", "b"]})
    stats_ = xr.Dataset({"diverging": (("chain", "draw"), diverging)})
    return az.InferenceData(posterior=post, sample_stats=stats_)


def test_convergence_report_counts_divergences():
    div = np.zeros((4, 500), dtype=bool)
    clean = convergence_report(_report_idata(div))
    assert clean[0].startswith("Convergence checks passed") and "0 divergences" in clean[0]
    assert len(clean) == 1
    div[1, [3, 70, 400]] = True
    lines = convergence_report(_report_idata(div))
    assert lines[0].startswith("Convergence checks FAILED") and "3 divergences" in lines[0]
    assert any("3 of 2000 transitions diverged" in line for line in lines)


def test_convergence_report_flags_disagreeing_chains_and_low_ess():
    idata = _report_idata(np.zeros((4, 500), dtype=bool))
    idata.posterior["coef"][0] = idata.posterior["coef"][0] + 3.0  # chain 0 elsewhere
    lines = convergence_report(idata)
    assert lines[0].startswith("Convergence checks FAILED")
    rhat = float(az.rhat(idata.posterior)["coef"].max())
    assert f"largest R-hat {rhat:.3f}" in lines[0]
    assert any("chains disagree" in line for line in lines)
    assert any("add excluded exogenous variables" in line for line in lines)   # system advice
    own = convergence_report(idata, advice="Draw more samples.")
    assert any(line.endswith("the chains disagree. Draw more samples.") for line in own)
    assert not any("excluded exogenous" in line for line in own)
    short = _report_idata(np.zeros((2, 50), dtype=bool), chains=2, draws=50)
    lines = convergence_report(short)
    assert any("smallest bulk effective sample size" in line for line in lines)


def test_pymc_fallback_when_nutpie_is_missing(monkeypatch):
    from models.bayes.sampling import sample

    truth = SystemTruth({"y": {"W(y)": 0.3, "Intercept": 1.0, "x1": 1.0}}, np.array([[1.0]]))
    w = lattice_weights(4)
    sim = simulate_system(w, truth, seed=1)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W, check=False)
    model = build_system_model(system, np.linalg.eigvals(w.matrix.toarray()).real)
    monkeypatch.setitem(sys.modules, "nutpie", None)        # import nutpie -> ImportError
    with pytest.warns(UserWarning, match="falling back to PyMC"):
        idata = sample(model, draws=20, tune=20, chains=1, seed=3, progress=False)
    assert idata.attrs["sampler"] == "pymc"
    coef = idata.posterior["coef"]
    assert coef.dims == ("chain", "draw", "coefficient")     # stacked (models.bayes.idata)
    assert coef.shape == (1, 20, 3) and np.isfinite(coef.values).all()
    assert "structural_std" in idata.unconstrained_posterior
    report = json.loads(idata.attrs["convergence_report"])
    assert report[0].startswith("Convergence checks FAILED")        # 20 draws: ESS < 400
    assert any("R-hat cannot be computed" in line for line in report)
    with pytest.raises(ValueError, match="sampler must be"):
        sample(model, sampler="stan")


def test_excluded_variables_have_no_impact_and_thinning_keeps_all_when_small():
    from models.bayes.postprocess import thinned_draws

    sim, system, idata = _system_and_posterior("none", S_chain=1, S_draw=2, seed=6)
    lam = np.linalg.eigvals(sim.W.toarray()).real
    add_effects_and_loo(idata, system, lam, loo=False, exclude_variables=("x2",))
    variables = list(idata.posterior["impact"]["variable"].values)
    assert "x2" not in variables and {"x1", "z1", "z2", "ER", "PSS"} <= set(variables)
    np.testing.assert_array_equal(thinned_draws(100, 2, 500), np.arange(100))
    np.testing.assert_array_equal(thinned_draws(100, 4, 100), np.arange(0, 100, 4))
    np.testing.assert_array_equal(thinned_draws(10, 3, 10), np.arange(0, 10, 3))


def test_add_effects_with_binary_weights_uses_the_exact_total():
    """W not row-standardised (binary contiguity, rows sum to 2–4): the total impact must come
    from the sparse route, checked against the dense brute force."""
    import scipy.sparse as sp

    sim, _, idata = _system_and_posterior("none", S_chain=1, S_draw=2, seed=7)
    Wb = sp.csr_matrix((sim.W > 0).astype(float))
    system = build_system(parse_system(sim.formulas), sim.data, weights=Wb, check=False)
    lam = np.linalg.eigvalsh(Wb.toarray())
    sim.W = Wb
    add_effects_and_loo(idata, system, lam, loo=False)
    B0, B1, coefs, _, W = _dense_parts(sim, idata)
    ref = impacts_brute_force(B0, B1, W, coefs, 2)
    for name, values in ref.items():
        got = _flat(idata.posterior["impact"].sel(variable=name))
        np.testing.assert_allclose(got, values, rtol=1e-8, atol=1e-10)


def test_prior_sigma_mapping_g2():
    """G = 2: Σ̃ = diag(sd) R diag(sd) with R the correlation r = 2u − 1 (the LKJ prior is on r),
    reported on the data scale as Σ = Σ̃ ∘ s s'."""
    model = _model(2, priors=PRIORS)
    fn = model.compile_fn(model.replace_rvs_by_values([model["Sigma"]])[0],
                          inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    s = model.layout.y_scale
    for point in _random_points(model, 3, seed=9):
        sd = np.exp(point["sd_std_log__"])
        r = 2 * special.expit(point["corr_u_logodds__"]) - 1
        R = np.array([[1.0, r], [r, 1.0]])
        np.testing.assert_allclose(fn(point), np.outer(sd * s, sd * s) * R, rtol=1e-12)


def test_thinning_cap_edges_and_predictive_default():
    """thinned_draws keeps every step-th draw, step = ⌈chains·draws / max(max_draws, 1)⌉; the
    posterior predictive thins only above the documented default cap of 500 draws."""
    from models.bayes.postprocess import add_posterior_predictive, thinned_draws

    np.testing.assert_array_equal(thinned_draws(10, 1, 1), [0])
    np.testing.assert_array_equal(thinned_draws(10, 1, 0), [0])       # a cap below 1 means 1
    np.testing.assert_array_equal(thinned_draws(10, 1, 2), [0, 5])
    for draws, kept in ((500, 500), (501, 251)):
        _, system, idata = _system_and_posterior("none", S_chain=1, S_draw=draws, seed=2)
        add_posterior_predictive(idata, system, seed=1)
        pp = idata.posterior_predictive
        assert pp.sizes["draw"] == kept and pp.attrs["thinned_from_draws"] == draws


def test_prior_g1_and_rho_interval_with_binary_weights():
    """G = 1: HalfNormal error sd, Σ = sd² s²; a binary W (λ_max ≈ 3.5, not 1): the spatial-error
    prior is Uniform(1/λ_min, 1/λ_max)."""
    import scipy.sparse as sp

    w = lattice_weights(5)
    Wb = sp.csr_matrix((w.matrix > 0).astype(float))
    truth = SystemTruth({"y": {"W(y)": 0.1, "Intercept": 1.0, "x1": 1.0}}, np.array([[1.0]]))
    sim = simulate_system(Wb, truth, seed=1)
    system = build_system(parse_system(sim.formulas, spatial_errors="all"), sim.data,
                          weights=Wb, check=False)
    lam = np.linalg.eigvalsh(Wb.toarray())
    model = build_system_model(system, lam, {"sd_sigma": 0.7})
    lo, hi = 1 / lam.min(), 1 / lam.max()
    assert hi < 0.5
    fn = model.compile_fn(model.replace_rvs_by_values([model["Sigma"]])[0],
                          inputs=model.value_vars, point_fn=True, on_unused_input="ignore")
    s = model.layout.y_scale[0]
    for point in _random_points(model, 3, seed=4):
        sd = np.exp(point["sd_std_log__"])
        rho = lo + (hi - lo) * special.expit(point["rho_error_interval__"])
        assert _logp(model, "sd_std", point) == pytest.approx(
            float(stats.halfnorm(scale=0.7).logpdf(sd)), rel=1e-9)
        assert _logp(model, "rho_error", point) == pytest.approx(
            float(stats.uniform(lo, hi - lo).logpdf(rho).sum()), rel=1e-9)
        np.testing.assert_allclose(fn(point), [[(sd * s) ** 2]], rtol=1e-12)


def test_rho_prior_interval_when_the_spectrum_has_no_sign():
    """A W whose eigenvalues are all 0 (a directed chain: nilpotent) gives no finite 1/λ bound:
    the spatial-error prior falls back to Uniform(−1, 1) on both ends."""
    import scipy.sparse as sp

    n = 12
    chain = sp.csr_matrix((np.ones(n - 1), (np.arange(n - 1), np.arange(1, n))), shape=(n, n))
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"city": [f"c{i}" for i in range(n)], "x1": rng.normal(size=n),
                       "y": rng.normal(size=n)})
    system = build_system(parse_system(["y ~ x1"], spatial_errors="all"), df, weights=chain,
                          check=False)
    model = build_system_model(system, np.zeros(n))
    for point in _random_points(model, 3, seed=6):
        rho = -1.0 + 2.0 * special.expit(point["rho_error_interval__"])
        assert _logp(model, "rho_error", point) == pytest.approx(
            float(stats.uniform(-1.0, 2.0).logpdf(rho).sum()), rel=1e-8)


def test_system_without_structural_terms_is_a_normal_linear_regression():
    """No spatial or endogenous term (θ_s empty): the likelihood is Σ_r log N(y_r | x_r'b, σ²)."""
    rng = np.random.default_rng(3)
    n = 40
    df = pd.DataFrame({"city": [f"c{i}" for i in range(n)], "x1": rng.normal(size=n)})
    df["y"] = 1.0 + 0.5 * df["x1"] + rng.normal(size=n)
    system = build_system(parse_system(["y ~ x1"]), df, check=False)
    model = build_system_model(system, None)
    outputs = model.replace_rvs_by_values([model.potentials[0], model["coef"], model["Sigma"]])
    fn = model.compile_fn(outputs, inputs=model.value_vars, point_fn=True,
                          on_unused_input="ignore")
    X = np.column_stack([np.ones(n), df["x1"]])
    for point in _random_points(model, 3, seed=7):
        loglik, coef, Sigma = fn(point)
        resid = df["y"].to_numpy() - X @ np.asarray(coef)[0]
        expected = stats.norm(0.0, np.sqrt(Sigma[0, 0])).logpdf(resid).sum()
        assert float(loglik) == pytest.approx(float(expected), rel=1e-10)


def test_complex_spectrum_reaches_the_model_as_data():
    """A non-symmetric W (3 nearest neighbours) has complex eigenvalues; their imaginary powers
    are a pm.Data input (so a reused compiled model sees a new map's spectrum), not a constant."""
    from data_prep.weights import weights_from_coordinates

    rng = np.random.default_rng(8)
    cities = [f"c{i}" for i in range(30)]
    w = weights_from_coordinates(rng.random((30, 2)), cities, k=3)
    sim = simulate_system(w, SystemTruth({"y": {"W(y)": 0.3, "Intercept": 1.0, "x1": 1.0}},
                                         np.array([[1.0]])), seed=1)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W, check=False)
    lam = np.linalg.eigvals(w.matrix.toarray())
    assert np.abs(lam.imag).max() > 1e-3
    model = build_system_model(system, lam)
    logp = model.compile_logp()
    point = model.initial_point()
    point["structural_std"] = point["structural_std"] + 0.4
    before = logp(point)
    imag = model["eigen_powers_imag"]
    np.testing.assert_allclose(imag.get_value(), np.vander(lam / np.abs(lam).max(), 2,
                                                           increasing=True).imag, atol=1e-12)
    imag.set_value(np.zeros_like(imag.get_value()))
    assert abs(logp(point) - before) > 1e-6


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_rho_prior_interval_for_a_spectrum_inside_minus_one_one(scale):
    """A row-standardised queen lattice is not bipartite: −1 < λ_min < 0, so the lower end of
    the spatial-error prior is 1/λ_min < −1, not −1; scaled by 1/2 (λ_max = 1/2) the upper end
    is 2."""
    w = lattice_weights(5, "queen")
    W = w.matrix * scale
    lam = np.linalg.eigvals(W.toarray()).real
    assert -1.0 < lam.min() < -0.1 and lam.max() == pytest.approx(scale)
    truth = SystemTruth({"y": {"Intercept": 1.0, "x1": 1.0}}, np.array([[1.0]]))
    sim = simulate_system(w, truth, seed=2)
    system = build_system(parse_system(sim.formulas, spatial_errors="all"), sim.data,
                          weights=W, check=False)
    model = build_system_model(system, lam)
    lo, hi = 1.0 / lam.min(), 1.0 / lam.max()
    for point in _random_points(model, 3, seed=9):
        rho = lo + (hi - lo) * special.expit(point["rho_error_interval__"])
        assert _logp(model, "rho_error", point) == pytest.approx(
            float(stats.uniform(lo, hi - lo).logpdf(rho).sum()), rel=1e-8)


@pytest.mark.parametrize("bad_draw", [0, 3])
def test_add_effects_and_loo_reports_non_finite_densities(bad_draw):
    """One draw whose leave-one-out densities are not finite (an infinite intercept), first or
    last of the draws: the notes say LOO is unreliable; a clean posterior gives no note."""
    sim, system, idata = _system_and_posterior("none")
    assert add_effects_and_loo(idata.copy(), system, np.linalg.eigvals(sim.W.toarray()).real) \
        == []
    coef = idata.posterior["coef"].values.copy()
    chain, draw = divmod(bad_draw, coef.shape[1])
    terms = [str(t) for t in idata.posterior["term"].values]
    coef[chain, draw, 0, terms.index("Intercept")] = np.inf     # the mean, not the precision
    idata.posterior["coef"] = (idata.posterior["coef"].dims, coef)
    with np.errstate(all="ignore"):
        notes = add_effects_and_loo(idata, system, np.linalg.eigvals(sim.W.toarray()).real)
    assert notes == ["some leave-one-city-out densities are not finite; LOO is unreliable"]
