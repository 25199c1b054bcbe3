"""Lee & Yu (2010) within transformation: basis properties, effects removal, dense likelihood."""

import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr
from scipy.stats import multivariate_normal

from models.bayes.panel import (effective_sample_size, jacobian_multiplier, panel_log_jacobian,
                                remove_year_effects, within_loglik, within_matrix, within_transform)


def ring_weights(n: int) -> np.ndarray:
    C = np.zeros((n, n))
    for i in range(n):
        for d in (1, 2):
            C[i, (i + d) % n] = C[(i + d) % n, i] = 1.0
    C[0, n // 2] = C[n // 2, 0] = 1.0
    return C / C.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("T", [2, 3, 7, 12])
def test_within_matrix_is_orthonormal_contrast_basis(T):
    F = within_matrix(T)
    assert F.shape == (T, T - 1)
    np.testing.assert_allclose(F.T @ F, np.eye(T - 1), atol=1e-13)
    np.testing.assert_allclose(F.T @ np.ones(T), 0.0, atol=1e-13)
    np.testing.assert_allclose(F @ F.T, np.eye(T) - np.ones((T, T)) / T, atol=1e-13)
    with pytest.raises(ValueError, match="at least 2 years"):
        within_matrix(1)


def test_city_and_year_effects_are_removed():
    rng = np.random.default_rng(0)
    n, T = 9, 6
    base = rng.normal(size=(n, T))
    city, year = rng.normal(size=(n, 1)) * 5, rng.normal(size=(1, T)) * 5
    with_city = base + city
    np.testing.assert_allclose(within_transform(with_city), within_transform(base), atol=1e-12)
    both = base + city + year
    np.testing.assert_allclose(remove_year_effects(within_transform(both)),
                               remove_year_effects(within_transform(base)), atol=1e-12)
    # The transformed data keep all the variation of the within-demeaned data (norm preserved).
    demeaned = base - base.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(within_transform(base)), np.linalg.norm(demeaned))
    # Year axis elsewhere, and the xarray route agree with the numpy one.
    np.testing.assert_allclose(within_transform(with_city.T, axis=0), within_transform(with_city).T)
    da = xr.DataArray(with_city, dims=("city", "year"),
                      coords={"city": [f"c{i}" for i in range(n)], "year": np.arange(2010, 2010 + T)},
                      name="ER")
    ds = xr.Dataset({"ER": da, "tier": ("city", np.arange(n))})
    out = within_transform(ds)
    assert set(out.data_vars) == {"ER"} and out["ER"].dims == ("city", "contrast")
    np.testing.assert_allclose(out["ER"].values, within_transform(base), atol=1e-12)
    np.testing.assert_allclose(remove_year_effects(da + year.ravel()[None]).values,
                               remove_year_effects(da).values, atol=1e-12)
    with pytest.raises(ValueError, match="balanced panel"):
        within_transform(np.where(np.arange(T) == T - 1, np.nan, with_city))


def test_sample_sizes():
    assert jacobian_multiplier(12) == 11
    assert effective_sample_size(241, 12) == 241 * 11
    assert effective_sample_size(241, 12, year_effects=True) == 240 * 11


def system_draw(G, seed):
    rng = np.random.default_rng(seed)
    B0 = rng.uniform(-0.3, 0.3, (G, G)) * (1 - np.eye(G))
    B1 = rng.uniform(-0.3, 0.3, (G, G))
    L = rng.normal(size=(G, G)) * 0.3 + np.eye(G)
    return B0, B1, L @ L.T + 0.1 * np.eye(G), rng


@pytest.mark.parametrize("spatial_errors", [False, True])
def test_jacobian_is_T_minus_one_times_cross_section(spatial_errors):
    n, G, T = 14, 2, 5
    W = ring_weights(n)
    d = (W > 0).sum(axis=1)
    lam = np.linalg.eigvalsh((W > 0) / np.sqrt(np.outer(d, d)))
    B0, B1, _, rng = system_draw(G, 3)
    rho = rng.uniform(-0.4, 0.5, G) if spatial_errors else None
    A = np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W)
    cross = np.linalg.slogdet(A)[1]
    if spatial_errors:
        cross += sum(np.linalg.slogdet(np.eye(n) - rho[g] * W)[1] for g in range(G))
    np.testing.assert_allclose(panel_log_jacobian(B0, B1, lam, T, rho=rho), (T - 1) * cross, rtol=1e-10)
    # Year effects: the Jacobian of the system on W* = F_n'WF_n (one unit eigenvalue removed).
    Fn = within_matrix(n)
    Ws = Fn.T @ W @ Fn
    As = np.eye(G * (n - 1)) - np.kron(B0, np.eye(n - 1)) - np.kron(B1, Ws)
    cross_s = np.linalg.slogdet(As)[1]
    if spatial_errors:
        cross_s += sum(np.linalg.slogdet(np.eye(n - 1) - rho[g] * Ws)[1] for g in range(G))
    np.testing.assert_allclose(panel_log_jacobian(B0, B1, lam, T, year_effects=True, rho=rho),
                               (T - 1) * cross_s, rtol=1e-10)


def dense_within_density(Y, xb, W, B0, B1, Sigma, rho, year_effects):
    """log density of the transformed data z_c = (I_G ⊗ F_n') Σ_t F_T[t, c] y_t, all dense."""
    n, T, G = Y.shape
    FT = within_matrix(T)
    P = np.kron(np.eye(G), within_matrix(n).T) if year_effects else np.eye(G * n)
    A = np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W)
    R = np.zeros((G * n, G * n))
    for g in range(G):
        R[g * n:(g + 1) * n, g * n:(g + 1) * n] = np.eye(n) - rho[g] * W
    Ai, Ri = np.linalg.inv(A), np.linalg.inv(R)
    Omega = P @ Ai @ Ri @ np.kron(Sigma, np.eye(n)) @ Ri.T @ Ai.T @ P.T
    total = 0.0
    for c in range(T - 1):
        y_c = sum(FT[t, c] * Y[:, t, :].T.reshape(-1) for t in range(T))
        x_c = sum(FT[t, c] * xb[:, t, :].T.reshape(-1) for t in range(T))
        total += multivariate_normal(P @ Ai @ x_c, Omega).logpdf(P @ y_c)
    return total


@pytest.mark.parametrize("year_effects", [False, True])
@pytest.mark.parametrize("spatial_errors", [False, True])
def test_within_loglik_matches_dense_density(year_effects, spatial_errors):
    n, G, T = 10, 2, 4
    W = ring_weights(n)
    d = (W > 0).sum(axis=1)
    lam = np.linalg.eigvalsh((W > 0) / np.sqrt(np.outer(d, d)))
    B0, B1, Sigma, rng = system_draw(G, 5 + 2 * year_effects + spatial_errors)
    rho = rng.uniform(-0.4, 0.5, G) if spatial_errors else np.zeros(G)
    Y, xb = rng.normal(size=(n, T, G)), rng.normal(size=(n, T, G))
    got = within_loglik(Y, xb, sp.csr_matrix(W), B0, B1, Sigma, lam,
                        rho=rho if spatial_errors else None, year_effects=year_effects)
    ref = dense_within_density(Y, xb, W, B0, B1, Sigma, rho, year_effects)
    np.testing.assert_allclose(got, [ref], rtol=1e-10)
    # Adding city effects (and year effects when removed) to the data leaves the likelihood unchanged.
    shifted = Y + rng.normal(size=(n, 1, G)) * 3
    if year_effects:
        shifted = shifted + rng.normal(size=(1, T, G)) * 3
    again = within_loglik(shifted, xb, sp.csr_matrix(W), B0, B1, Sigma, lam,
                          rho=rho if spatial_errors else None, year_effects=year_effects)
    np.testing.assert_allclose(again, got, rtol=1e-10)
