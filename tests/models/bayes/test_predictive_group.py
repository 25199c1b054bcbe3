"""The ``posterior_predictive`` group (models.bayes.postprocess.add_posterior_predictive).

Reference: with every posterior draw at the true parameters, the replicates are draws from
N(𝒜⁻¹X̃b, 𝒜⁻¹R⁻¹(Σ ⊗ I)R⁻ᵀ𝒜⁻ᵀ), computed here densely; their mean over draws must match
that mean within Monte Carlo error. Also: dims, thinning, seeding, and the script's --predictive flag (run in-process).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import arviz as az
import numpy as np
import pytest
import xarray as xr

from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
from models.bayes.postprocess import add_posterior_predictive, thinned_draws
from models.spec.system import build_system, parse_system

ROOT = Path(__file__).resolve().parents[3]


def _fixture(rho: float | None, chains: int = 2, draws: int = 400):
    truth = default_truth()
    if rho is not None:
        truth.rho = {"ER": rho}
    w = lattice_weights(6)
    sim = simulate_system(w, truth, seed=4)
    spec = parse_system(sim.formulas, spatial_errors="ER" if rho is not None else "none")
    system = build_system(spec, sim.data, weights=w, check=False)
    deps = list(spec.dependents)
    terms: list[str] = []
    for eq in system.spec.equations:
        terms += [t for t in eq.terms if t not in terms]
    coef = np.full((len(deps), len(terms)), np.nan)
    for g, d in enumerate(deps):
        for t, v in truth.coefficients[d].items():
            coef[g, terms.index(t)] = v
    tile = lambda a: np.broadcast_to(a, (chains, draws) + a.shape).copy()  # noqa: E731
    post = {"coef": (("chain", "draw", "equation", "term"), tile(coef)),
            "Sigma": (("chain", "draw", "equation", "equation2"), tile(truth.Sigma))}
    if rho is not None:
        post["rho"] = (("chain", "draw", "equation"), tile(np.array([rho, np.nan])))
    ds = xr.Dataset(post, coords={"chain": np.arange(chains), "draw": np.arange(draws),
                                  "equation": deps, "equation2": deps, "term": terms})
    return az.InferenceData(posterior=ds), system, truth, coef, terms


def _dense_moments(system, truth, coef, terms):
    W = system.W.toarray()
    n, G = system.n, system.G
    B0, B1 = system.spec.structural_matrices(
        lambda eq, t: coef[list(system.spec.dependents).index(eq), terms.index(t)])
    A = np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W)
    xb = np.column_stack([system.X[g] @ coef[g, [terms.index(x) for x in eq.exogenous]]
                          for g, eq in enumerate(system.spec.equations)])
    Ainv = np.linalg.inv(A)
    mean = (Ainv @ xb.T.reshape(-1)).reshape(G, n).T
    R = np.eye(G * n)
    for g, d in enumerate(system.spec.dependents):
        r = truth.rho.get(d, 0.0)
        R[g * n:(g + 1) * n, g * n:(g + 1) * n] = np.eye(n) - r * W
    M = Ainv @ np.linalg.inv(R)
    cov = M @ np.kron(truth.Sigma, np.eye(n)) @ M.T
    return mean, np.sqrt(np.diag(cov)).reshape(G, n).T


@pytest.mark.parametrize("rho", [None, 0.4])
def test_predictive_mean_matches_reduced_form(rho):
    idata, system, truth, coef, terms = _fixture(rho)
    add_posterior_predictive(idata, system, seed=7, max_draws=500)
    pp = idata.posterior_predictive
    assert set(pp.data_vars) == {"ER", "PSS"}
    assert pp["ER"].dims == ("chain", "draw", "city")
    # 2 × 400 draws thinned to every 2nd draw of each chain: 2 × 200 = 400 ≤ 500
    assert pp.sizes["chain"] == 2 and pp.sizes["draw"] == 200
    assert list(pp["draw"].values[:3]) == [0, 2, 4]
    assert list(pp["city"].values) == [str(c) for c in system.cities]
    mean, sd = _dense_moments(system, truth, coef, terms)
    S = 400
    for g, dep in enumerate(["ER", "PSS"]):
        reps = pp[dep].values.reshape(S, -1)
        z = (reps.mean(axis=0) - mean[:, g]) / (sd[:, g] / np.sqrt(S))
        assert np.mean(z ** 2) < 1.6          # χ²_36 / 36 exceeds 1.6 with probability < 1 %
        assert np.max(np.abs(z)) < 4.5
        ratio = reps.std(axis=0, ddof=1) / sd[:, g]
        assert 0.85 < np.mean(ratio) < 1.15


def test_seeded_and_thinning():
    a, system, *_ = _fixture(None, chains=2, draws=50)
    b, *_ = _fixture(None, chains=2, draws=50)
    c, *_ = _fixture(None, chains=2, draws=50)
    add_posterior_predictive(a, system, seed=3)
    add_posterior_predictive(b, system, seed=3)
    add_posterior_predictive(c, system, seed=4)
    assert a.posterior_predictive.sizes["draw"] == 50            # no thinning below the cap
    assert np.array_equal(a.posterior_predictive["ER"].values, b.posterior_predictive["ER"].values)
    assert not np.allclose(a.posterior_predictive["ER"].values,
                           c.posterior_predictive["ER"].values)
    assert list(thinned_draws(1000, 4, 500)) == list(range(0, 1000, 8))
    assert list(thinned_draws(10, 1, 500)) == list(range(10))


def test_script_predictive_flag(tmp_path, lattice_files):
    case = lattice_files(side=6, seed=2)
    sim = case.sim
    out = tmp_path / "post.nc"
    argv = [sys.executable, str(ROOT / "scripts" / "sample_posteriors.py"), *case.arguments(),
            "--draws", "100", "--tune", "150", "--chains", "2", "--seed", "1", "--quiet",
            "--no-effects", "--predictive", "--predictive-draws", "100", "--out", str(out)]
    # in-process (the imports are already loaded): the script's main() with its argv
    script = importlib.import_module("models.cli.sample_posteriors")
    assert script.main(argv[2:]) == 0
    idata = az.from_netcdf(out)
    pp = idata.posterior_predictive
    assert pp["ER"].dims == ("chain", "draw", "city") and pp.sizes["draw"] == 50
    observed = sim.data["ER"].to_numpy()
    assert np.corrcoef(pp["ER"].mean(("chain", "draw")).values, observed)[0, 1] > 0.8
