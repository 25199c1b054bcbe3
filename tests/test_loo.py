"""Leave-one-city-out densities against dense conditional normals, and ArviZ integration."""

import arviz as az
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import multivariate_normal

from models.bayes.loo import log_likelihood_dataset, pointwise_loglik


def ring_weights(n: int) -> np.ndarray:
    """Row-standardised weights: neighbours at distance 1 and 2 on a ring, plus a chord."""
    C = np.zeros((n, n))
    for i in range(n):
        for d in (1, 2):
            C[i, (i + d) % n] = C[(i + d) % n, i] = 1.0
    C[0, n // 2] = C[n // 2, 0] = 1.0
    return C / C.sum(axis=1, keepdims=True)


def setup(S: int, seed: int, n: int = 20, G: int = 2):
    rng = np.random.default_rng(seed)
    W = ring_weights(n)
    B0 = rng.uniform(-0.4, 0.4, (S, G, G)) * (1 - np.eye(G))
    B1 = rng.uniform(-0.3, 0.3, (S, G, G))
    L = rng.normal(size=(S, G, G)) * 0.4 + np.eye(G)
    Sigma = L @ L.transpose(0, 2, 1) + 0.1 * np.eye(G)
    xb = rng.normal(size=(S, n, G))
    Y = rng.normal(size=(n, G))
    return W, Y, xb, B0, B1, Sigma, rng


def dense_reference(W, Y, xb, B0, B1, Sigma, rho):
    """Conditional normal of city r's block given all other values, from the dense covariance."""
    n, G = Y.shape
    S = B0.shape[0]
    y = Y.T.reshape(-1)
    out = np.empty((S, n))
    for s in range(S):
        A = np.eye(G * n) - np.kron(B0[s], np.eye(n)) - np.kron(B1[s], W)
        R = np.zeros((G * n, G * n))
        for g in range(G):
            R[g * n:(g + 1) * n, g * n:(g + 1) * n] = np.eye(n) - rho[s, g] * W
        Ai, Ri = np.linalg.inv(A), np.linalg.inv(R)
        mu = Ai @ xb[s].T.reshape(-1)
        C = Ai @ Ri @ np.kron(Sigma[s], np.eye(n)) @ Ri.T @ Ai.T
        for r in range(n):
            blk = np.array([g * n + r for g in range(G)])
            rest = np.setdiff1d(np.arange(G * n), blk)
            K = C[np.ix_(blk, rest)] @ np.linalg.inv(C[np.ix_(rest, rest)])
            m = mu[blk] + K @ (y[rest] - mu[rest])
            V = C[np.ix_(blk, blk)] - K @ C[np.ix_(rest, blk)]
            out[s, r] = multivariate_normal(m, V).logpdf(y[blk])
    return out


@pytest.mark.parametrize("spatial_errors", [False, True])
def test_matches_dense_conditional(spatial_errors):
    S = 3
    W, Y, xb, B0, B1, Sigma, rng = setup(S, seed=1 + spatial_errors)
    rho = rng.uniform(-0.5, 0.6, (S, 2)) if spatial_errors else np.zeros((S, 2))
    if spatial_errors:
        rho[0, 1] = 0.0  # one equation without spatial errors in one draw
    got = pointwise_loglik(Y, xb, sp.csr_matrix(W), B0, B1, Sigma, rho if spatial_errors else None)
    ref = dense_reference(W, Y, xb, B0, B1, Sigma, rho)
    assert got.shape == (S, 20)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)
    if spatial_errors:  # NaN marks "no spatial error" in the posterior layout
        nan_rho = np.where(rho == 0.0, np.nan, rho)
        np.testing.assert_allclose(pointwise_loglik(Y, xb, sp.csr_matrix(W), B0, B1, Sigma, nan_rho), got)


def test_three_equations_with_spatial_errors_and_broadcast_xb():
    S = 2
    W, Y, xb, B0, B1, Sigma, rng = setup(S, seed=7, n=12, G=3)
    rho = rng.uniform(-0.4, 0.5, (S, 3))
    got = pointwise_loglik(Y, xb[0], sp.csr_matrix(W), B0, B1, Sigma, rho)
    ref = dense_reference(W, Y, np.broadcast_to(xb[0], xb.shape), B0, B1, Sigma, rho)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


def test_draws_that_differ_only_in_xb():
    """One B0, B1, Sigma, rho for all draws and S draws of X̃b: every draw is scored (the draw
    count comes from X̃b too), each equal to the dense reference."""
    S = 3
    W, Y, xb, B0, B1, Sigma, rng = setup(S, seed=5, n=10, G=2)
    rho = rng.uniform(-0.3, 0.4, (1, 2))
    got = pointwise_loglik(Y, xb, sp.csr_matrix(W), B0[:1], B1[:1], Sigma[:1], rho)
    rep = lambda a: np.repeat(a[:1], S, axis=0)  # noqa: E731
    ref = dense_reference(W, Y, xb, rep(B0), rep(B1), rep(Sigma), rep(rho))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


def test_non_spatial_system_without_weights():
    # With B1 = 0 and no spatial errors, cities are independent: the LOO density is the joint one.
    S = 2
    _, Y, xb, B0, _, Sigma, _ = setup(S, seed=3)
    got = pointwise_loglik(Y, xb, None, B0, np.zeros((S, 2, 2)), Sigma)
    for s in range(S):
        Ai = np.linalg.inv(np.eye(2) - B0[s])
        mu = xb[s] @ Ai.T
        cov = Ai @ Sigma[s] @ Ai.T
        np.testing.assert_allclose(got[s], multivariate_normal(np.zeros(2), cov).logpdf(Y - mu), rtol=1e-10)
    with pytest.raises(ValueError, match="W is required"):
        pointwise_loglik(Y, xb, None, B0, B0, Sigma)


def test_arviz_loo_runs_on_the_group():
    chains, draws = 2, 100
    S = chains * draws
    W, Y, _, _, _, _, rng = setup(1, seed=11)
    # Posterior-like draws scattered around one parameter value.
    B0 = np.array([[0.0, 0.3], [-0.2, 0.0]]) + 0.02 * rng.normal(size=(S, 2, 2)) * (1 - np.eye(2))
    B1 = np.array([[0.3, 0.1], [-0.1, 0.2]]) + 0.02 * rng.normal(size=(S, 2, 2))
    Sigma = np.broadcast_to(np.array([[1.0, 0.3], [0.3, 0.8]]), (S, 2, 2))
    xb = np.broadcast_to(rng.normal(size=(20, 2)), (S, 20, 2))
    ll = pointwise_loglik(Y, xb, sp.csr_matrix(W), B0, B1, Sigma)
    cities = [f"c{i}" for i in range(20)]
    group = log_likelihood_dataset(ll, cities, chains)
    assert group["y"].dims == ("chain", "draw", "city")
    idata = az.InferenceData(posterior=log_likelihood_dataset(B1[:, 0, 0, None].repeat(20, 1), cities, chains)
                             .rename({"y": "b"}), log_likelihood=group)
    res = az.loo(idata, pointwise=True)
    assert np.isfinite(res["elpd_loo"])
    assert res["loo_i"].shape == (20,)
    # With well-behaved weights PSIS is close to plain importance sampling: −log mean exp(−ll).
    naive = -np.log(np.exp(-ll).mean(axis=0))
    np.testing.assert_allclose(res["loo_i"].values, naive, atol=0.05)
    with pytest.raises(ValueError, match="chains"):
        log_likelihood_dataset(ll, cities, 3)
