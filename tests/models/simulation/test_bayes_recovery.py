"""The Bayesian system recovers simulated truth; cross-checks against GS3SLS and spreg's ML_Lag.

Fast test: a simulated two-equation system (n = 400 lattice, identified by one excluded exogenous
variable per equation) sampled through scripts/sample_posteriors.py (2 chains × 500 draws, fixed
seed); 90 % central intervals must cover the truth with binomial slack (docs/method.md §8: with 14
coefficients ≥ 4 misses has probability 0.044 when the intervals are right), R-hat ≤ 1.02 (the
measured spread of this short run) and no divergences. The same run checks the output contract (NetCDF layout, summary.csv) and bad input.
Slow tests compare posterior means with GS3SLS and the posterior mode (MAP) with spreg's ML_Lag.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep.synthetic.simulate import SystemTruth, lattice_weights, simulate_system
from models.bayes.idata import coef_grid
from tests.fixtures import write_lattice_case

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "sample_posteriors.py"
SUMMARY_COLUMNS = ["equation", "term", "mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk"]


def _argv(folder: Path, formulas, *extra) -> list[str]:
    argv = [sys.executable, str(SCRIPT)]
    for f in formulas:
        argv += ["--equation", f]
    return argv + ["--data", str(folder / "d.csv"), "--weights", str(folder / "w.gal"), *extra]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    case = write_lattice_case(tmp_path_factory.mktemp("bayes"), side=20, seed=7)
    return case.folder, case.sim


def _truth_frame(truth: SystemTruth) -> pd.Series:
    return pd.Series({(eq, t): v for eq, terms in truth.coefficients.items()
                      for t, v in terms.items()})


def test_script_recovers_truth_and_writes_contract(simulated):
    import arviz as az

    folder, sim = simulated
    out = folder / "run" / "post.nc"
    proc = subprocess.run(_argv(folder, sim.formulas, "--draws", "500", "--tune", "500",
                                "--chains", "2", "--seed", "11", "--out", str(out), "--quiet"),
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout

    idata = az.from_netcdf(out)
    coef = idata.posterior["coef"]
    assert coef.dims == ("chain", "draw", "coefficient")          # present pairs only
    assert coef.shape[:2] == (2, 500)
    assert list(dict.fromkeys(coef["coef_equation"].values)) == ["ER", "PSS"]
    assert "ER: z2" not in coef["coefficient"].values              # absent terms: no entry
    assert np.isfinite(coef.sel(coefficient="ER: z1")).all()
    coef = coef_grid(idata.posterior)
    assert idata.posterior["Sigma"].dims == ("chain", "draw", "equation", "equation2")
    assert "log_likelihood" in idata.groups() and "impact" in idata.posterior
    assert int(idata.sample_stats["diverging"].sum()) == 0

    summary = pd.read_csv(out.parent / "post_summary.csv")
    assert list(summary.columns) == SUMMARY_COLUMNS
    truth = _truth_frame(sim.truth)
    assert sorted(zip(summary.equation, summary.term)) == sorted(truth.index)
    # Measured slack: over seeds 11-18 this fit's largest R-hat (14 coefficients, 2 chains x 500
    # draws) ranged 1.005-1.012, so 1.01 would test luck; a fit that has not converged (the
    # multi-modal paper specification) gives R-hat above 1.5.
    assert summary["r_hat"].max() <= 1.02
    assert np.allclose(summary["mean"], [float(coef.sel(equation=e, term=t).mean())
                                         for e, t in zip(summary.equation, summary.term)])

    draws = coef.stack(sample=("chain", "draw"))
    misses = []
    for (eq, term), value in truth.items():
        lo, hi = np.quantile(draws.sel(equation=eq, term=term).values, [0.05, 0.95])
        if not lo <= value <= hi:
            misses.append((eq, term, value, lo, hi))
    assert len(misses) <= 3, misses
    Sigma = idata.posterior["Sigma"].mean(("chain", "draw")).values
    assert np.allclose(Sigma, sim.truth.Sigma, atol=0.25)


def test_script_bad_input_writes_nothing(simulated):
    folder, sim = simulated
    out = folder / "bad" / "post.nc"
    formulas = [sim.formulas[0].replace("z1", "nonexistent"), sim.formulas[1]]
    proc = subprocess.run(_argv(folder, formulas, "--draws", "10", "--tune", "10", "--out",
                                str(out)), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "nonexistent" in proc.stderr
    assert not out.exists() and not (out.parent / "post_summary.csv").exists()


def test_same_seed_same_draws():
    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model
    from models.spec.system import build_system, parse_system

    w = lattice_weights(6)
    sim = simulate_system(w, seed=2)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W, check=False)
    model = build_system_model(system, np.linalg.eigvals(w.matrix.toarray()).real)
    runs = [sample(model, draws=30, tune=30, chains=2, seed=5, progress=False) for _ in range(2)]
    other = sample(model, draws=30, tune=30, chains=2, seed=6, progress=False)
    a, b, c = (r.posterior["coef"].values for r in (*runs, other))
    assert np.array_equal(a, b, equal_nan=True)
    assert not np.array_equal(a, c, equal_nan=True)
    assert runs[0].attrs["convergence_report"]

    from models.bayes.sampling import convergence_report

    # a posterior no narrower than its prior is flagged as weakly identified
    flagged = convergence_report(runs[0], prior_sd={"structural_std": 0.01})
    assert any("barely inform" in line for line in flagged)
    assert not any("barely inform" in line
                   for line in convergence_report(runs[0], prior_sd={"structural_std": 100.0}))


# ------------------------------------------------------------------------------------ slow

@pytest.mark.slow
def test_posterior_means_agree_with_gs3sls():
    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model
    from models.frequentist import estimate
    from models.spec.system import build_system, parse_system

    w = lattice_weights(32)
    sim = simulate_system(w, seed=21)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W)
    model = build_system_model(system, np.linalg.eigvalsh(_symmetric_form(w.matrix)))
    idata = sample(model, draws=1000, tune=1000, chains=4, seed=3, progress=False)
    coef = coef_grid(idata.posterior)
    freq = estimate(system, "gs3sls")
    for (eq, term), est in freq.params.items():
        draws = coef.sel(equation=eq, term=term).values.ravel()
        combined = np.hypot(draws.std(), freq.std_errors[(eq, term)])
        assert abs(draws.mean() - est) <= 2.0 * combined, (eq, term, draws.mean(), est)


def _symmetric_form(W) -> np.ndarray:
    """D^{1/2} W D^{-1/2} for a row-standardised W from a symmetric relation (dense, test only)."""
    W = W.toarray()
    d = (W > 0).sum(axis=1).astype(float)
    S = np.sqrt(d)[:, None] * W / np.sqrt(d)[None, :]
    return (S + S.T) / 2


@pytest.mark.slow
def test_lag_model_map_matches_spreg_ml_lag():
    """G = 1 spatial lag model: the posterior mode (MAP, weak priors, n = 2,500) equals spreg's
    maximum-likelihood ML_Lag within 0.1 posterior sd (mode vs MLE, as docs/method.md §8 advises)."""
    import pymc as pm
    from spreg import ML_Lag

    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model
    from models.spec.system import build_system, parse_system

    truth = SystemTruth({"y": {"W(y)": 0.45, "Intercept": 1.0, "x1": 1.0, "x2": -0.5}},
                        np.array([[1.0]]))
    w = lattice_weights(50, "queen")
    sim = simulate_system(w, truth, seed=4)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W)
    lam = np.linalg.eigvalsh(_symmetric_form(w.matrix))
    model = build_system_model(system, lam)
    with model:
        mode = pm.find_MAP(progressbar=False)
    idata = sample(model, draws=500, tune=500, chains=2, seed=1, progress=False)
    sd = coef_grid(idata.posterior).std(("chain", "draw")).sel(equation="y")

    from data_prep.weights import to_libpysal

    X = sim.data[["x1", "x2"]].to_numpy()
    ml = ML_Lag(sim.data[["y"]].to_numpy(), X, w=to_libpysal(w), method="ord")
    ml_values = dict(zip(["Intercept", "x1", "x2", "W(y)"], np.ravel(ml.betas)))
    terms = list(model.coords["term"])
    for term, value in ml_values.items():
        got = float(mode["coef"][0, terms.index(term)])
        assert abs(got - value) <= 0.1 * float(sd.sel(term=term)), (term, got, value)
