"""System impacts against a dense brute force (np.linalg.inv of the dense 𝒜) on n = 25."""

import numpy as np
import pytest
import scipy.sparse as sp

from models.bayes.effects import impacts
from tests.references import impacts_brute_force, shock_impacts_brute_force


def lattice(side: int) -> np.ndarray:
    """Binary rook contiguity on a side × side lattice (dense, test only)."""
    n = side * side
    C = np.zeros((n, n))
    for i in range(side):
        for j in range(side):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < side and j + dj < side:
                    a, b = i * side + j, (i + di) * side + j + dj
                    C[a, b] = C[b, a] = 1.0
    return C


def knn_weights(n: int, k: int, seed: int) -> np.ndarray:
    """Row-standardised k-nearest-neighbour weights: asymmetric, complex spectrum."""
    xy = np.random.default_rng(seed).uniform(size=(n, 2))
    d = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(d, np.inf)
    C = np.zeros((n, n))
    rows = np.repeat(np.arange(n), k)
    C[rows, np.argsort(d, axis=1)[:, :k].ravel()] = 1.0
    return C / C.sum(axis=1, keepdims=True)


def draws(G: int, S: int, seed: int):
    rng = np.random.default_rng(seed)
    B0 = rng.uniform(-0.3, 0.3, (S, G, G)) * (1 - np.eye(G))
    B1 = rng.uniform(-0.25, 0.25, (S, G, G))
    return B0, B1


def make_betas(G, S, durbin, seed, deps):
    """x1 in every equation, x2 only in the last; Durbin lags optional."""
    rng = np.random.default_rng(seed)
    coefs = {"x1": (np.zeros((S, G)), np.zeros((S, G))), "x2": (np.zeros((S, G)), np.zeros((S, G)))}
    betas = {}
    for h in range(G):
        b, t = rng.normal(size=S), rng.normal(size=S) if durbin else None
        betas[(deps[h], "x1")] = (b, t)
        coefs["x1"][0][:, h] = b
        if durbin:
            coefs["x1"][1][:, h] = t
    b, t = rng.normal(size=S), rng.normal(size=S) if durbin else None
    betas[(deps[-1], "x2")] = (b, t) if durbin else b
    coefs["x2"][0][:, G - 1] = b
    if durbin:
        coefs["x2"][1][:, G - 1] = t
    return betas, coefs


@pytest.mark.parametrize("G", [2, 3])
@pytest.mark.parametrize("durbin", [False, True])
def test_row_standardised_matches_dense(G, durbin):
    C = lattice(5)
    d = C.sum(axis=1)
    W = C / d[:, None]
    # Spectrum from the symmetric similar form D^{-1/2} C D^{-1/2}.
    lam = np.linalg.eigvalsh(C / np.sqrt(np.outer(d, d)))
    S = 3
    B0, B1 = draws(G, S, seed=G + 10 * durbin)
    deps = ["ER", "PSS", "PSD"][:G]
    betas, coefs = make_betas(G, S, durbin, seed=1, deps=deps)
    ds = impacts(B0, B1, betas, lam, dependents=deps)
    ref = impacts_brute_force(B0, B1, W, coefs, G)
    assert ds.impact.dims == ("sample", "effect", "response", "variable")
    assert list(ds.effect.values) == ["direct", "indirect", "total"]
    for name in ("x1", "x2"):
        np.testing.assert_allclose(ds.impact.sel(variable=name).values, ref[name], rtol=1e-9, atol=1e-12)
    # Shocks to each equation's disturbance: S = [𝒜⁻¹]_gh.
    shocks = ds.impact.sel(variable=deps).values
    np.testing.assert_allclose(shocks, shock_impacts_brute_force(B0, B1, W, G), rtol=1e-9, atol=1e-12)
    assert list(ds.variable_kind.values) == ["exogenous"] * 2 + ["shock"] * G


@pytest.mark.parametrize("G", [2, 3])
def test_not_row_standardised_uses_sparse_total(G):
    C = lattice(5)
    lam_max = np.linalg.eigvalsh(C).max()
    W = C / lam_max  # binary scaled by its spectral radius: W1 != 1
    lam = np.linalg.eigvalsh(W)
    S = 2
    B0, B1 = draws(G, S, seed=5)
    deps = ["a", "b", "c"][:G]
    betas, coefs = make_betas(G, S, True, seed=2, deps=deps)
    ds = impacts(B0, B1, betas, lam, row_standardised=False, W=sp.csr_matrix(W), dependents=deps)
    ref = impacts_brute_force(B0, B1, W, coefs, G)
    for name in ("x1", "x2"):
        np.testing.assert_allclose(ds.impact.sel(variable=name).values, ref[name], rtol=1e-9, atol=1e-12)
    # The closed-form total would be wrong here: guard that the route matters.
    wrong = impacts(B0, B1, betas, lam, dependents=deps)
    assert not np.allclose(wrong.impact.sel(effect="total").values, ds.impact.sel(effect="total").values)
    with pytest.raises(ValueError, match="W is required"):
        impacts(B0, B1, betas, lam, row_standardised=False, dependents=deps)


def test_complex_spectrum_and_integer_equations():
    W = knn_weights(25, 3, seed=4)
    lam = np.linalg.eigvals(W)
    assert np.abs(lam.imag).max() > 1e-6  # the case being tested
    G, S = 2, 2
    B0, B1 = draws(G, S, seed=8)
    betas, coefs = make_betas(G, S, True, seed=3, deps=[0, 1])
    ds = impacts(B0, B1, betas, lam, shocks=False)
    ref = impacts_brute_force(B0, B1, W, coefs, G)
    assert list(ds.variable.values) == ["x1", "x2"]
    for name in ("x1", "x2"):
        np.testing.assert_allclose(ds.impact.sel(variable=name).values, ref[name], rtol=1e-8, atol=1e-12)


def test_single_draw_quadrature_weights_and_errors():
    C = lattice(4)
    d = C.sum(axis=1)
    lam = np.linalg.eigvalsh(C / np.sqrt(np.outer(d, d)))
    B0 = np.array([[0.0, 0.4], [-0.3, 0.0]])
    B1 = np.array([[0.3, 0.2], [-0.15, 0.25]])
    betas = {("y1", "x"): (np.array([1.0]), np.array([0.5]))}
    a = impacts(B0, B1, betas, lam, dependents=["y1", "y2"])
    # Equal quadrature weights on the exact nodes reproduce the exact spectrum.
    b = impacts(B0, B1, betas, lam, dependents=["y1", "y2"], spectrum_weights=np.full(lam.size, 1 / lam.size))
    np.testing.assert_allclose(a.impact.values, b.impact.values)
    assert a.impact.shape == (1, 3, 2, 3)
    # Non-spatial system: total = direct, indirect = 0, equal to the reduced-form coefficient.
    z = impacts(B0, np.zeros((2, 2)), {("y1", "x"): np.array([1.0])}, lam, dependents=["y1", "y2"],
                shocks=False)
    red = np.linalg.inv(np.eye(2) - B0)[:, 0] * 1.0
    np.testing.assert_allclose(z.impact.sel(effect="direct").values[0, :, 0], red)
    np.testing.assert_allclose(z.impact.sel(effect="indirect").values, 0.0, atol=1e-13)
    with pytest.raises(ValueError, match="unknown equation"):
        impacts(B0, B1, {("y3", "x"): np.ones(1)}, lam, dependents=["y1", "y2"])
    with pytest.raises(ValueError, match="admissible"):
        impacts(np.zeros((2, 2)), np.diag([1.2, 0.0]), betas, lam, dependents=["y1", "y2"])


def test_coefficient_matrices_from_posterior_layout():
    import xarray as xr

    from models.bayes.effects import coefficient_matrices

    terms = ["W(ER)", "W(PSS)", "PSS", "ER", "Intercept", "x1", "W(x1)", "z1"]
    nan = np.nan
    eq_er = [0.3, 0.2, 0.4, nan, 1.0, 1.0, 0.5, 0.8]
    eq_pss = [-0.15, 0.25, nan, -0.3, 0.5, 0.5, nan, nan]
    vals = np.array([eq_er, eq_pss])[None, None] * np.array([1.0, 1.1])[None, :, None, None]
    coef = xr.DataArray(vals, dims=("chain", "draw", "equation", "term"),
                        coords={"equation": ["ER", "PSS"], "term": terms})
    B0, B1, betas, deps = coefficient_matrices(coef)
    assert deps == ("ER", "PSS") and B0.shape == (2, 2, 2)
    np.testing.assert_allclose(B0[0], [[0, 0.4], [-0.3, 0]])
    np.testing.assert_allclose(B1[1], 1.1 * np.array([[0.3, 0.2], [-0.15, 0.25]]))
    assert set(betas) == {("ER", "x1"), ("PSS", "x1"), ("ER", "z1")}
    np.testing.assert_allclose(betas[("ER", "x1")][1], [0.5, 0.55])
    assert betas[("PSS", "x1")][1] is None
    ds = impacts(B0, B1, betas, np.linspace(-0.5, 1, 9), dependents=deps)
    assert list(ds.variable.values) == ["x1", "z1", "ER", "PSS"]
