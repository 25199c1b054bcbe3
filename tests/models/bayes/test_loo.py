"""Leave-one-city-out densities against dense conditional normals, and ArviZ integration."""

import arviz as az
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import multivariate_normal

from models.bayes.loo import log_likelihood_dataset, pointwise_loglik
from tests.references import dense_conditional_loglik


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


@pytest.mark.parametrize("spatial_errors", [False, True])
def test_matches_dense_conditional(spatial_errors):
    S = 3
    W, Y, xb, B0, B1, Sigma, rng = setup(S, seed=1 + spatial_errors)
    rho = rng.uniform(-0.5, 0.6, (S, 2)) if spatial_errors else np.zeros((S, 2))
    if spatial_errors:
        rho[0, 1] = 0.0  # one equation without spatial errors in one draw
    got = pointwise_loglik(Y, xb, sp.csr_matrix(W), B0, B1, Sigma, rho if spatial_errors else None)
    ref = dense_conditional_loglik(W, Y, xb, B0, B1, Sigma, rho)
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
    ref = dense_conditional_loglik(W, Y, np.broadcast_to(xb[0], xb.shape), B0, B1, Sigma, rho)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-8)


def test_draws_that_differ_only_in_xb():
    """One B0, B1, Sigma, rho for all draws and S draws of X̃b: every draw is scored (the draw
    count comes from X̃b too), each equal to the dense reference."""
    S = 3
    W, Y, xb, B0, B1, Sigma, rng = setup(S, seed=5, n=10, G=2)
    rho = rng.uniform(-0.3, 0.4, (1, 2))
    got = pointwise_loglik(Y, xb, sp.csr_matrix(W), B0[:1], B1[:1], Sigma[:1], rho)
    rep = lambda a: np.repeat(a[:1], S, axis=0)  # noqa: E731
    ref = dense_conditional_loglik(W, Y, xb, rep(B0), rep(B1), rep(Sigma), rep(rho))
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


# ------------------------------------------------------------------ Student-t errors

def _t_case(outlier: float):
    """6 cities on a ring (one extra link), G = 2, spatial lags, cross effects, a spatial error
    in equation 1, t_3 errors; city 2's error multiplied by ``outlier``."""
    from scipy.stats import multivariate_t

    n, G = 6, 2
    W = np.zeros((n, n))
    for i in range(n):
        W[i, (i - 1) % n] = W[i, (i + 1) % n] = 0.5
    W[0, 3] = 0.3
    W[0] /= W[0].sum()
    B0 = np.array([[0.0, 0.3], [-0.2, 0.0]])
    B1 = np.array([[0.3, 0.1], [0.0, -0.25]])
    rho = np.array([0.4, 0.0])
    Sigma = np.array([[1.0, 0.3], [0.3, 0.5]])
    R = np.eye(G * n) - np.kron(np.diag(rho), W)
    K = R @ (np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W))
    xb = np.random.default_rng(1).normal(size=(n, G))
    eps = multivariate_t(np.zeros(G), Sigma, df=3.0).rvs(n, random_state=2)
    eps[2] *= outlier
    y = np.linalg.solve(K, eps.T.reshape(-1) + R @ xb.T.reshape(-1))
    return dict(W=W, B0=B0, B1=B1, rho=rho, Sigma=Sigma, K=K, R=R, xb=xb, nu=3.0,
                Y=y.reshape(G, n).T)


def _t_brute_force(c: dict, i: int) -> float:
    """log p(y_i | y_−i, θ) = log p(y | θ) − log ∫ p(y | θ) dy_i, the 2-D integral on a
    tan-mapped Gauss–Legendre grid centred at the mode of y_i (p(y | θ) = |det K| Π t(ε_r))."""
    from scipy.optimize import minimize
    from scipy.stats import multivariate_t

    n, G = c["Y"].shape
    t = multivariate_t(np.zeros(G), c["Sigma"], df=c["nu"])
    y0 = c["Y"].T.reshape(-1)
    offset = c["R"] @ c["xb"].T.reshape(-1)
    col = c["K"][:, [i, n + i]]

    def logp(d):                                         # d: (..., 2) shifts of y_i
        e = (c["K"] @ y0 - offset) + d @ col.T
        m = e.shape[0]
        return np.reshape(t.logpdf(e.reshape(m, G, n).transpose(0, 2, 1)), (m, n)).sum(-1)

    mode = minimize(lambda d: -logp(d[None])[0], np.zeros(2), method="BFGS")
    L = np.linalg.cholesky(mode.hess_inv) * 2.0
    s, ws = np.polynomial.legendre.leggauss(400)
    u, du = np.tan(np.pi / 2 * s), np.pi / 2 / np.cos(np.pi / 2 * s) ** 2
    grid = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    vals = logp(mode.x + grid @ L.T)
    wts = np.outer(ws * du, ws * du).reshape(-1)
    top = vals.max()
    log_int = np.log(np.sum(wts * np.exp(vals - top))) + top + np.log(np.linalg.det(L))
    return float(logp(np.zeros((1, 2)))[0] - log_int)


def _t_draws(c: dict, S: int, seed: int = 0, nodes: int | None = None) -> np.ndarray:
    from models.bayes.loo import T_NODES, iter_loglik_t

    n, G = c["Y"].shape
    blocks = iter_loglik_t(c["Y"], sp.csr_matrix(c["W"]), c["B0"], c["B1"], c["Sigma"],
                           c["rho"], np.array([c["nu"]]),
                           lambda idx: np.broadcast_to(c["xb"], (idx.size, n, G)),
                           n_draws=S, seed=seed, nodes=nodes or T_NODES)
    return np.concatenate([b for _, b in blocks])


def test_student_t_conditional_matches_brute_force():
    """At fixed θ, 1/E_{w_−i | y, θ}[1/p(y_i | y_−i, θ, w_−i)] = p(y_i | y_−i, θ) (fast: the
    brute force is a 400 × 400 grid per city; 20,000 scale draws give a Monte Carlo error of
    about 0.002 in the log density)."""
    from scipy.special import logsumexp

    c = _t_case(outlier=1.0)
    S = 20_000
    ell = _t_draws(c, S)
    est = -(logsumexp(-ell, axis=0) - np.log(S))
    ref = np.array([_t_brute_force(c, i) for i in range(6)])
    np.testing.assert_allclose(est, ref, atol=0.012)
    # the Gaussian formula with Σ is far off for these t errors: the comparison has power
    from models.bayes.loo import pointwise_loglik

    gauss = pointwise_loglik(c["Y"], c["xb"], sp.csr_matrix(c["W"]), c["B0"], c["B1"],
                             c["Sigma"] * 3.0, c["rho"])[0]
    assert np.max(np.abs(gauss - ref)) > 0.1


def test_student_t_scale_quadrature_converges_for_an_outlier():
    """The left-out scale integral: 24 nodes agree with 96 for every draw (city 2 is a gross
    outlier, whose integrand peaks sharply near w ≈ G/q)."""
    c = _t_case(outlier=8.0)
    a, b = _t_draws(c, 300, nodes=24), _t_draws(c, 300, nodes=96)
    assert np.max(np.abs(a - b)) < 1e-3


def test_student_t_without_spatial_terms_is_the_t_density():
    """No W, no lags: y_i depends on no other city, p(y_i | y_−i) = t_ν(ε_i; Σ) |det(I − B0)|
    whatever the other scales (exactly, draw by draw)."""
    from scipy.stats import multivariate_t

    from models.bayes.loo import iter_loglik_t

    rng = np.random.default_rng(4)
    n, G = 10, 2
    B0 = np.array([[0.0, 0.4], [0.3, 0.0]])
    Sigma = np.array([[1.0, -0.2], [-0.2, 2.0]])
    Y, xb = rng.normal(size=(n, G)), rng.normal(size=(n, G))
    nu = np.array([1.5, 4.0, 60.0, 400.0])
    out = np.concatenate([b for _, b in iter_loglik_t(
        Y, None, B0, np.zeros((G, G)), Sigma, None, nu,
        lambda idx: np.broadcast_to(xb, (idx.size, n, G)))])
    eps = Y - Y @ B0.T - xb
    for s, v in enumerate(nu):
        ref = multivariate_t(np.zeros(G), Sigma, df=v).logpdf(eps) + np.log(abs(np.linalg.det(
            np.eye(G) - B0)))
        np.testing.assert_allclose(out[s], ref, atol=1e-6)
