"""Fast posterior-vs-peer checks (the default run's version of the slow ones in
tests/models/simulation/test_bayes_recovery.py).

* G = 2 system on a 16 × 16 rook lattice (n = 256), nutpie 2 chains × 400 draws: every posterior
  mean within 1.0 combined sd of the GS3SLS estimate (combined sd = √(posterior var + GS3SLS
  se²)). Both are consistent for the same parameter and use the same data, so their difference is
  below either spread (FIML vs IV: measured largest |difference| / combined sd 0.54 on seed 4,
  0.52 on seed 3; the slow version allows 2). R-hat ≤ 1.03 (measured 1.005-1.016 over
  seeds 1-8) and no divergence.
* G = 1 spatial lag model on a 20 × 20 queen lattice (n = 400): the posterior mode (MAP, weak
  priors) equals spreg's maximum-likelihood ``ML_Lag`` within 0.1 ML standard error per
  coefficient (mode vs MLE differ only by the prior's pull, O(1/n) of a standardised unit).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.synthetic.simulate import SystemTruth, lattice_weights, simulate_system
from models.bayes.idata import coef_grid
from models.spec.system import build_system, parse_system


def _symmetric_spectrum(W) -> np.ndarray:
    """Eigenvalues of a row-standardised W from a symmetric relation via D^{1/2} W D^{-1/2}."""
    W = W.toarray()
    d = (W > 0).sum(axis=1).astype(float)
    S = np.sqrt(d)[:, None] * W / np.sqrt(d)[None, :]
    return np.linalg.eigvalsh((S + S.T) / 2)


def test_posterior_means_agree_with_gs3sls_fast():
    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model
    from models.frequentist import estimate

    w = lattice_weights(16)
    sim = simulate_system(w, seed=21)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W)
    model = build_system_model(system, _symmetric_spectrum(w.matrix))
    idata = sample(model, draws=400, tune=400, chains=2, seed=4, progress=False)
    report = json.loads(idata.attrs["convergence_report"])
    assert int(idata.sample_stats["diverging"].sum()) == 0, report
    coef = coef_grid(idata.posterior)
    freq = estimate(system, "gs3sls")
    worst = 0.0
    for (eq, term), est in freq.params.items():
        draws = coef.sel(equation=eq, term=term).values.ravel()
        combined = np.hypot(draws.std(), freq.std_errors[(eq, term)])
        worst = max(worst, abs(draws.mean() - est) / combined)
        assert abs(draws.mean() - est) <= 1.0 * combined, (eq, term, draws.mean(), est)
    print(f"largest |posterior mean - GS3SLS| / combined sd = {worst:.3f}")
    import arviz as az

    rh = az.rhat(idata.posterior[["coef", "Sigma"]])
    rhat = max(float(np.nanmax(rh[v].values)) for v in rh.data_vars)
    # 2 chains × 400 draws: measured largest R-hat 1.005-1.016 over sampler seeds 1-8 (1.010
    # on this seed), so 1.01 would test luck; a fit that has not converged is far above 1.03
    assert rhat <= 1.03, report
    # the report's headline states the same figure
    assert f"largest R-hat {rhat:.3f}" in report[0]


def test_lag_model_map_matches_spreg_ml_lag_fast():
    import pymc as pm
    from spreg import ML_Lag

    from data_prep.weights import to_libpysal
    from models.bayes.system import build_system_model

    truth = SystemTruth({"y": {"W(y)": 0.45, "Intercept": 1.0, "x1": 1.0, "x2": -0.5}},
                        np.array([[1.0]]))
    w = lattice_weights(20, "queen")
    sim = simulate_system(w, truth, seed=4)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W)
    model = build_system_model(system, _symmetric_spectrum(w.matrix))
    with model:
        mode = pm.find_MAP(progressbar=False)
    X = sim.data[["x1", "x2"]].to_numpy()
    ml = ML_Lag(sim.data[["y"]].to_numpy(), X, w=to_libpysal(w), method="ord")
    names = ["Intercept", "x1", "x2", "W(y)"]
    ml_values = dict(zip(names, np.ravel(ml.betas)))
    ml_se = dict(zip(names, np.sqrt(np.diag(ml.vm))))
    terms = list(model.coords["term"])
    for term, value in ml_values.items():
        got = float(mode["coef"][0, terms.index(term)])
        assert abs(got - value) <= 0.1 * ml_se[term], (term, got, value, ml_se[term])
    # error variance: MAP of Σ vs the ML σ² within 5 % (ML divides by n, the mode is close)
    assert float(mode["Sigma"][0, 0]) == pytest.approx(float(ml.sig2), rel=0.05)
