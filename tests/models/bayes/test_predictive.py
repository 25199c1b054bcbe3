"""Predictive draws against the dense analytic reduced-form mean and covariance (n = 15)."""

import numpy as np
import pytest
import scipy.sparse as sp

from models.bayes.predictive import posterior_predictive


def ring_weights(n: int) -> np.ndarray:
    C = np.zeros((n, n))
    for i in range(n):
        for d in (1, 3):
            C[i, (i + d) % n] = C[(i + d) % n, i] = 1.0
    return C / C.sum(axis=1, keepdims=True)


def analytic(W, xb, B0, B1, Sigma, rho):
    n, G = xb.shape
    A = np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W)
    R = np.zeros((G * n, G * n))
    for g in range(G):
        R[g * n:(g + 1) * n, g * n:(g + 1) * n] = np.eye(n) - rho[g] * W
    Ai, Ri = np.linalg.inv(A), np.linalg.inv(R)
    return Ai @ xb.T.reshape(-1), Ai @ Ri @ np.kron(Sigma, np.eye(n)) @ Ri.T @ Ai.T


@pytest.mark.parametrize("rho", [None, np.array([0.4, -0.3])])
def test_moments_match_dense_reduced_form(rho):
    n, G, N = 15, 2, 20000
    rng = np.random.default_rng(0)
    W = ring_weights(n)
    xb = rng.normal(size=(n, G))
    B0 = np.array([[0.0, 0.4], [-0.3, 0.0]])
    B1 = np.array([[0.3, 0.2], [-0.15, 0.25]])
    Sigma = np.array([[1.0, 0.3], [0.3, 0.8]])
    draws = posterior_predictive(xb, sp.csr_matrix(W), np.broadcast_to(B0, (N, G, G)), B1, Sigma, rho, seed=1)
    assert draws.shape == (N, n, G)
    mu, C = analytic(W, xb, B0, B1, Sigma, np.zeros(G) if rho is None else rho)
    y = draws.transpose(0, 2, 1).reshape(N, -1)  # stacked by equation
    # Monte Carlo standard errors: sd/√N for the mean, √((C_ij² + C_ii C_jj)/N) for the covariance.
    z_mean = (y.mean(0) - mu) / np.sqrt(np.diag(C) / N)
    assert np.abs(z_mean).max() < 4.5
    se_cov = np.sqrt((C ** 2 + np.outer(np.diag(C), np.diag(C))) / N)
    assert np.abs((np.cov(y.T) - C) / se_cov).max() < 5.0
    # The spatial-error filter matters for the covariance (guards against ignoring rho).
    if rho is not None:
        _, C0 = analytic(W, xb, B0, B1, Sigma, np.zeros(G))
        assert np.abs((np.cov(y.T) - C0) / se_cov).max() > 10


def test_seeds_and_per_draw_parameters():
    n, G, S = 15, 2, 4
    rng = np.random.default_rng(2)
    W = sp.csr_matrix(ring_weights(n))
    xb = rng.normal(size=(S, n, G))
    B0 = rng.uniform(-0.3, 0.3, (S, G, G)) * (1 - np.eye(G))
    B1 = rng.uniform(-0.3, 0.3, (S, G, G))
    Sigma = np.broadcast_to(np.eye(G), (S, G, G))
    a = posterior_predictive(xb, W, B0, B1, Sigma, seed=5)
    b = posterior_predictive(xb, W, B0, B1, Sigma, seed=5)
    c = posterior_predictive(xb, W, B0, B1, Sigma, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    # With a negligible error scale each draw is its own reduced-form mean 𝒜_s⁻¹ X̃b_s.
    tiny = posterior_predictive(xb, W, B0, B1, Sigma * 1e-20, seed=0)
    for s in range(S):
        mu, _ = analytic(W.toarray(), xb[s], B0[s], B1[s], np.eye(G), np.zeros(G))
        np.testing.assert_allclose(tiny[s].T.reshape(-1), mu, rtol=1e-8, atol=1e-8)
    with pytest.raises(ValueError, match="W is required"):
        posterior_predictive(xb, None, B0, B1, Sigma)
