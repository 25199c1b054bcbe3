"""Heteroskedasticity-robust GS2SLS / GS3SLS (docs/method.md §2c) against independent references.

One equation: spreg 1.9 ``GM_Combo_Het`` and ``GM_Error_Het`` (``step1c=False``, default
``max_iter=1``, ``w_lags=2``; the inverse (I − ρW)⁻¹ of ``inv_method`` enters spreg only with
``step1c=True``) and ``GM_Lag(robust="white")``, on heteroskedastic SARAR / SAR-error data of a
20 × 20 lattice (n = 400) with error sd exp(x1/2). Estimates to 1e-6 (spreg's ρ is an
L-BFGS-B iterate, ours the exact minimiser of the same quartic), standard errors and the joint
covariance of (δ, ρ) to 1e-4 relative. The system: a dense transcription of the sandwich
V = (Ẑ'ΩẐ)⁻¹(Ẑ'ΩŜΩẐ)(Ẑ'ΩẐ)⁻¹, Ŝ = Σ_r ε̂_rε̂_r' ⊗ e_re_r', written here with n × n matrices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, default_truth, lattice_weights, simulate_system
from models.frequentist import estimate
from models.spec.system import build_system, parse_system

TERMS = ["Intercept", "x1", "x2"]  # spreg's order: constant, x, then yend (W_y), then lambda


def _pysal_w(W: sp.csr_matrix):
    from libpysal.weights import WSP

    return WSP(sp.csr_matrix(W)).to_W(silence_warnings=True)


def _one_equation(lag: float, seed: int = 5):
    coefficients = {"Intercept": 1.0, "x1": 1.0, "x2": -0.7}
    if lag:
        coefficients["W(y)"] = lag
    truth = SystemTruth({"y": coefficients}, np.array([[1.0]]), rho={"y": 0.5})
    weights = lattice_weights(20)
    rng = np.random.default_rng(seed)
    exog = pd.DataFrame({"x1": rng.standard_normal(400), "x2": rng.standard_normal(400)})
    return simulate_system(weights, truth, seed=seed, exogenous=exog,
                           error_sd=np.exp(0.5 * exog["x1"].to_numpy()))


@pytest.fixture(scope="module")
def sarar():
    return _one_equation(lag=0.4)


def _spreg_arrays(sim):
    return sim.data[["y"]].to_numpy(), sim.data[["x1", "x2"]].to_numpy(), _pysal_w(sim.W)


def _assert_matches(ours, ref, order):
    est = np.r_[ours.params[order].to_numpy(), ours.rho["y"]]
    np.testing.assert_allclose(est, ref.betas.ravel(), rtol=0, atol=1e-6)
    frame = ours.to_frame()
    labels = [t for _, t in order] + ["rho"]
    assert sorted(frame["term"]) == sorted(labels) and frame["term"].iloc[-1] == "rho"
    se = frame.set_index("term").loc[labels, "std_error"]
    np.testing.assert_allclose(se.to_numpy(), np.sqrt(np.diag(ref.vm)), rtol=1e-4)
    joint = ours.joint_cov["y"].loc[labels, labels]
    np.testing.assert_allclose(joint.to_numpy(), ref.vm, rtol=1e-4, atol=1e-10)


def test_robust_gs2sls_matches_spreg_gm_combo_het(sarar):
    from spreg import GM_Combo_Het

    system = build_system(parse_system(["y ~ W(y) + x1 + x2"], spatial_errors="all"),
                          sarar.data, weights=sarar.W)
    ours = estimate(system, "gs2sls", heteroskedastic=True)
    y, X, w = _spreg_arrays(sarar)
    ref = GM_Combo_Het(y, X, w=w, w_lags=2, step1c=False, inv_method="true_inv")
    # spreg's H = [1, X, WX, W²X] spans the same space as ours
    _, names = system.instruments(spatial=True)
    assert set(names) == {"Intercept", "x1", "x2", "W(x1)", "W(x2)", "W2(x1)", "W2(x2)"}
    order = [("y", t) for t in TERMS + ["W(y)"]]
    _assert_matches(ours, ref, order)
    assert ours.cov_type == "robust"
    # the endogenous lag correlates δ̂ and ρ̂ (ADKP's α terms); a homoskedastic-style
    # block-diagonal covariance would miss it
    assert abs(ours.joint_cov["y"].loc["W(y)", "rho"]) > 1e-6
    # the robust standard errors are not the homoskedastic ones (the data are heteroskedastic)
    plain = estimate(system, "gs2sls")
    assert not np.allclose(plain.std_errors.to_numpy(), ours.std_errors.to_numpy(), rtol=0.02)
    assert "rho" not in set(plain.to_frame()["term"])


def test_robust_gs2sls_without_lag_matches_spreg_gm_error_het():
    from spreg import GM_Error_Het

    sim = _one_equation(lag=0.0, seed=8)
    system = build_system(parse_system(["y ~ x1 + x2"], spatial_errors="all"), sim.data,
                          weights=sim.W)
    ours = estimate(system, "gs2sls", heteroskedastic=True)
    y, X, w = _spreg_arrays(sim)
    ref = GM_Error_Het(y, X, w=w, step1c=False)
    _assert_matches(ours, ref, [("y", t) for t in TERMS])


def test_white_spatial_2sls_matches_spreg_gm_lag(sarar):
    from spreg import GM_Lag

    system = build_system(parse_system(["y ~ W(y) + x1 + x2"]), sarar.data, weights=sarar.W)
    y, X, w = _spreg_arrays(sarar)
    ref = GM_Lag(y, X, w=w, w_lags=2, robust="white")
    order = [("y", t) for t in TERMS + ["W(y)"]]
    for method in ("2sls", "gs2sls"):  # without spatial errors gs2sls is the spatial 2SLS
        ours = estimate(system, method, heteroskedastic=True)
        np.testing.assert_allclose(ours.params[order].to_numpy(), ref.betas.ravel(), rtol=1e-9)
        np.testing.assert_allclose(ours.std_errors[order].to_numpy(),
                                   np.sqrt(np.diag(ref.vm)), rtol=1e-8)
        assert "rho" not in set(ours.to_frame()["term"])


# ---------------------------------------------------------------- the system
def _dense_robust_3sls(system, rhos: dict[str, float]):
    """3SLS of the equations filtered at the given ρ, robust sandwich, all n × n dense."""
    n = system.n
    Wd = system.W.toarray()
    H, _ = system.instruments(spatial=True)
    P = H @ np.linalg.solve(H.T @ H, H.T)
    ys, Zs = [], []
    for j, eq in enumerate(system.spec.equations):
        r = rhos.get(eq.dependent) or 0.0
        F = np.eye(n) - r * Wd
        ys.append(F @ system.Y[:, j])
        Zs.append(F @ np.asarray(system.Z(j), float))
    E = np.column_stack([y - Z @ np.linalg.solve(Z.T @ P @ Z, Z.T @ P @ y)
                         for y, Z in zip(ys, Zs)])
    Sigma = E.T @ E / n
    sizes = [Z.shape[1] for Z in Zs]
    Zhat = np.zeros((len(Zs) * n, sum(sizes)))
    Zbig = np.zeros_like(Zhat)
    for j, (Z, c0) in enumerate(zip(Zs, np.cumsum([0] + sizes[:-1]))):
        Zhat[j * n:(j + 1) * n, c0:c0 + Z.shape[1]] = P @ Z
        Zbig[j * n:(j + 1) * n, c0:c0 + Z.shape[1]] = Z
    Om = np.kron(np.linalg.inv(Sigma), np.eye(n))
    bread = np.linalg.inv(Zhat.T @ Om @ Zhat)
    delta = bread @ Zhat.T @ Om @ np.concatenate(ys)
    eps = (np.concatenate(ys) - Zbig @ delta).reshape(len(Zs), n).T  # row r: ε̂_r'
    S = np.zeros((len(Zs) * n,) * 2)
    for r in range(n):
        idx = np.arange(len(Zs)) * n + r
        S[np.ix_(idx, idx)] = np.outer(eps[r], eps[r])
    V = bread @ (Zhat.T @ Om @ S @ Om @ Zhat) @ bread
    return delta, np.sqrt(np.diag(V))


@pytest.mark.parametrize("errors", ["none", "ER"])
def test_robust_gs3sls_matches_dense_sandwich(errors):
    truth = default_truth()
    truth.rho["ER"] = 0.5 if errors == "ER" else 0.0
    weights = lattice_weights(8)  # n = 64
    rng = np.random.default_rng(2)
    exog = pd.DataFrame({c: rng.standard_normal(64) for c in ("x1", "x2", "z1", "z2")})
    sim = simulate_system(weights, truth, seed=3, exogenous=exog,
                          error_sd=np.exp(0.5 * exog["x1"].to_numpy()))
    system = build_system(parse_system(sim.formulas, spatial_errors=errors), sim.data,
                          weights=sim.W)
    ours = estimate(system, "gs3sls", heteroskedastic=True)
    delta, se = _dense_robust_3sls(system, ours.rho)
    np.testing.assert_allclose(ours.params.to_numpy(), delta, rtol=1e-8)
    np.testing.assert_allclose(ours.std_errors.to_numpy(), se, rtol=1e-8)
    terms = ours.to_frame()["term"]
    assert (terms == "rho").sum() == (1 if errors == "ER" else 0)
    if errors == "ER":
        # ρ̂ of the system is the one-equation robust GM of that equation's 2SLS residuals
        alone = estimate(system, "gs2sls", heteroskedastic=True)
        assert ours.rho["ER"] == pytest.approx(alone.rho["ER"], rel=1e-12)
        assert ours.rho_std_errors["ER"] == pytest.approx(alone.rho_std_errors["ER"], rel=1e-12)


def test_heteroskedastic_and_clustered_exclude_each_other(sarar):
    system = build_system(parse_system(["y ~ W(y) + x1 + x2"]), sarar.data, weights=sarar.W)
    with pytest.raises(InputError, match="exclude each other"):
        estimate(system, "gs2sls", heteroskedastic=True, cov_type="clustered",
                 clusters=np.arange(system.n) // 4)


# ---------------------------------------------------------------- Monte Carlo coverage
def test_reduced_monte_carlo_coverage():
    """60 replications at n = 196: every robust 95 % interval covers inside the 0.1 % binomial
    tails of exact coverage, and the homoskedastic intervals of the slope on x1 (the covariate
    driving the error variance) cover less than the robust ones in both equations."""
    from models.simulation.het_coverage import binomial_band, coverage_table

    table = coverage_table(60, side=14, seed=7).set_index(["equation", "term"])
    lo, hi = binomial_band(60)
    assert table["robust"].between(lo, hi).all(), table
    assert table.loc[("ER", "rho"), "homoskedastic"] != table.loc[("ER", "rho"),
                                                                  "homoskedastic"]  # NaN
    for eq in ("ER", "PSS"):
        assert table.loc[(eq, "x1"), "homoskedastic"] < table.loc[(eq, "x1"), "robust"]


@pytest.mark.slow
def test_full_monte_carlo_coverage():
    """The benchmark's study (1,000 replications, n = 400): robust coverage 93–97 % for 14 of
    the 15 coefficients; the endogenous PSS in the ER equation covers 92.6 % (its homoskedastic
    interval 93.1 %: 2SLS finite-sample bias, not the variance formula), so the floor for
    every coefficient is 92 %. The homoskedastic intervals of the x1 slopes under-cover."""
    from models.simulation.het_coverage import coverage_table

    table = coverage_table(1000, side=20).set_index(["equation", "term"])
    assert table["robust"].between(0.92, 0.97).all(), table
    assert table["robust"].between(0.93, 0.97).sum() >= len(table) - 1, table
    for eq in ("ER", "PSS"):
        assert table.loc[(eq, "x1"), "homoskedastic"] < 0.93
