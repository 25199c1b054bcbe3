"""Independent references that several test files compare the project's results with.

Each is written from the definition, densely and slowly, sharing no code with the module under
test: the system's impacts and leave-one-city-out densities from the dense n·G × n·G matrices,
the Tobit by a generic optimiser on a log-likelihood written here, and two synthetic inputs
(a censored panel with a correlated city effect, fitted posteriors with a log-likelihood).
Kept out of the test files so that no test file imports another.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr
from scipy import optimize, stats
from scipy.sparse.linalg import spsolve
from scipy.stats import multivariate_normal

from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system


# ------------------------------------------------------------------ the system, densely

def impacts_brute_force(B0, B1, W, coefs, G):
    """Dense reference: S = Σ_h [𝒜⁻¹]_gh (β_h I + θ_h W), then tr/n, 1'S1/n."""
    n = W.shape[0]
    S = B0.shape[0]
    out = {}
    for name, (beta, theta) in coefs.items():
        res = np.zeros((S, 3, G))
        for s in range(S):
            A = np.eye(G * n) - np.kron(B0[s], np.eye(n)) - np.kron(B1[s], W)
            Ai = np.linalg.inv(A)
            for g in range(G):
                M = sum(Ai[g * n:(g + 1) * n, h * n:(h + 1) * n]
                        @ (beta[s, h] * np.eye(n) + theta[s, h] * W)
                        for h in range(G))
                d, t = np.trace(M) / n, M.sum() / n
                res[s, :, g] = d, t - d, t
        out[name] = res
    return out


def shock_impacts_brute_force(B0, B1, W, G):
    """Dense impacts of a unit shock to each equation: blocks of 𝒜⁻¹, (sample, effect,
    response, shock)."""
    n = W.shape[0]
    res = np.zeros((B0.shape[0], 3, G, G))  # sample, effect, response, shock
    for s in range(B0.shape[0]):
        Ai = np.linalg.inv(np.eye(G * n) - np.kron(B0[s], np.eye(n)) - np.kron(B1[s], W))
        for g in range(G):
            for h in range(G):
                M = Ai[g * n:(g + 1) * n, h * n:(h + 1) * n]
                d, t = np.trace(M) / n, M.sum() / n
                res[s, :, g, h] = d, t - d, t
    return res


def dense_conditional_loglik(W, Y, xb, B0, B1, Sigma, rho):
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


# ------------------------------------------------------------------ the Tobit, by brute force

def _direct_negloglik(params, y, X, lower, upper):
    """−ℓ written independently: σ itself (not log σ) as the last parameter."""
    b, s = params[:-1], params[-1]
    if s <= 0:
        return np.inf
    eta = X @ b
    ll = np.where(np.isfinite(lower) & (y <= lower), stats.norm.logcdf((lower - eta) / s),
                  np.where(np.isfinite(upper) & (y >= upper), stats.norm.logsf((upper - eta) / s),
                           stats.norm.logpdf(y, eta, s)))
    return -ll.sum()


def numerical_hessian(f, x, h=1e-4):
    """Central finite-difference Hessian of f at x."""
    k = x.size
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            ei, ej = np.eye(k)[i] * h, np.eye(k)[j] * h
            H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4 * h * h)
    return H


def tobit_brute_force(y, X, lower, upper):
    """(estimates, standard errors) of the Tobit: Nelder-Mead then BFGS on the direct −ℓ, the
    covariance from its finite-difference Hessian; the scale σ last."""
    lo = -np.inf if lower is None else lower
    up = np.inf if upper is None else upper
    b0 = np.linalg.lstsq(X, y, rcond=None)[0]
    x0 = np.append(b0, np.std(y - X @ b0))
    f = lambda p: _direct_negloglik(p, y, X, lo, up)  # noqa: E731
    res = optimize.minimize(f, x0, method="Nelder-Mead",
                            options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-12})
    res = optimize.minimize(f, res.x, method="BFGS", options={"gtol": 1e-9})
    cov = np.linalg.inv(numerical_hessian(f, res.x))
    return res.x, np.sqrt(np.diag(cov))


# ------------------------------------------------------------------ synthetic inputs

def correlated_city_panel(n_cities: int = 200, n_years: int = 3, seed: int = 7) -> pd.DataFrame:
    """A censored panel whose city effect correlates with x1: x1_rt = c_r + N(0, 1),
    a_r = 0.8 c_r + 0.5 u_r, y* = 2 + 0.5 x1 − 0.3 x2 + a_r + e (sd 1), y = max(y*, 0). A model
    that takes a_r as independent of x1 loads part of a_r on x1: the pooled Tobit's slope tends
    to 0.5 + 0.8 cov(x1, c)/var(x1) = 0.9."""
    rng = np.random.default_rng(seed)
    city = np.repeat(np.arange(n_cities), n_years)
    c = rng.standard_normal(n_cities)
    a = 0.8 * c + 0.5 * rng.standard_normal(n_cities)
    x1 = c[city] + rng.standard_normal(city.size)
    x2 = rng.standard_normal(city.size)
    y = 2.0 + 0.5 * x1 - 0.3 * x2 + a[city] + rng.standard_normal(city.size)
    return pd.DataFrame({"city": [f"c{r:03d}" for r in city],
                         "year": np.tile(np.arange(n_years), n_cities), "x1": x1, "x2": x2,
                         "y": np.maximum(y, 0.0)})


LOO_CHAINS, LOO_DRAWS = 2, 200


def fake_loo_fit(shift: float, n: int = 30, seed: int = 0, deps=("ER", "PSS"), cities=None):
    """InferenceData with a log_likelihood group (chain, draw, city) and a posterior coef:
    ``LOO_CHAINS`` × ``LOO_DRAWS`` draws, log densities around −1.5 − ``shift``."""
    rng = np.random.default_rng(seed)
    base = rng.normal(-1.5, 0.3, n)
    ll = base[None, None] - shift + 0.1 * rng.normal(size=(LOO_CHAINS, LOO_DRAWS, n))
    cities = list(cities or [f"c{i}" for i in range(n)])
    coef = rng.normal(size=(LOO_CHAINS, LOO_DRAWS, len(deps), 1))
    return az.InferenceData(
        posterior=xr.Dataset({"coef": (("chain", "draw", "equation", "term"), coef)},
                             coords={"equation": list(deps), "term": ["x"]}),
        log_likelihood=xr.Dataset({"y": (("chain", "draw", "city"), ll)},
                                  coords={"city": cities}))


# ------------------------------------------------------------------ a panel with effects

def simulated_panel(side: int, T: int, seed: int, city_sd: float = 2.0, year_sd: float = 1.0):
    """Simulated panel: each year a fresh draw of the system, plus city effects a_c and year
    effects τ_t entering every equation structurally, added through the reduced form 𝒜⁻¹(a + τ)."""
    w = lattice_weights(side)
    truth = default_truth()
    n, G = side * side, 2
    W = w.matrix
    deps = truth.dependents
    B0, B1 = np.zeros((G, G)), np.zeros((G, G))
    for g, d in enumerate(deps):
        for h, e in enumerate(deps):
            B1[g, h] = truth.coefficients[d].get(f"W({e})", 0.0)
            B0[g, h] = truth.coefficients[d].get(e, 0.0) if e != d else 0.0
    A = sp.csc_matrix(sp.identity(G * n) - sp.kron(B0, sp.identity(n)) - sp.kron(B1, W))
    rng = np.random.default_rng(seed)
    a = rng.normal(0.0, city_sd, (n, G))
    tau = rng.normal(0.0, year_sd, (T, G))
    frames = []
    for t in range(T):
        sim = simulate_system(w, truth, seed=1000 * seed + t)
        extra = spsolve(A, (a + tau[t]).T.reshape(-1)).reshape(G, n).T
        df = sim.data.copy()
        for g, d in enumerate(deps):
            df[d] = df[d] + extra[:, g]
        df["year"] = 2000 + t
        frames.append(df)
    return pd.concat(frames, ignore_index=True), sim.formulas, truth, w, tau
