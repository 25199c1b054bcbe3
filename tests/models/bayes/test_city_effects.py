"""Per-city effects against a dense brute force (the dense inverse of 𝒜, in this test only)."""

import arviz as az
import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr

from data_prep.errors import InputError
from data_prep.synthetic.simulate import lattice_weights
from data_prep.spectrum.exact import eigenvalues
from data_prep.weights import SpatialWeights, row_standardise
from models.bayes.city_effects import city_effect_summary, city_effects, symmetrising_scale
from models.bayes.effects import coefficient_matrices, impacts

DEPS = ["A", "B"]
TERMS = ["W(A)", "W(B)", "B", "A", "Intercept", "x", "W(x)", "z"]


def posterior(seed: int = 1, chains: int = 2, draws: int = 5) -> az.InferenceData:
    rng = np.random.default_rng(seed)
    coef = np.full((chains, draws, 2, len(TERMS)), np.nan)
    values = {0: {"W(A)": 0.3, "W(B)": 0.1, "B": 0.2, "Intercept": 1.0, "x": 1.0, "W(x)": 0.5},
              1: {"W(B)": 0.2, "W(A)": -0.1, "A": -0.3, "Intercept": 2.0, "x": 0.4, "z": 0.7}}
    for g, terms in values.items():
        for t, v in terms.items():
            coef[:, :, g, TERMS.index(t)] = v + 0.05 * rng.normal(size=(chains, draws))
    return az.InferenceData(posterior=xr.Dataset(
        {"coef": (("chain", "draw", "equation", "term"), coef)},
        coords={"chain": np.arange(chains), "draw": np.arange(draws), "equation": DEPS,
                "term": TERMS}))


def weighted_symmetric(n: int, seed: int) -> sp.csr_matrix:
    """Row-standardised W of a symmetric but *weighted* relation (inverse distances on a ring
    with chords): D W is symmetric only for D = the relation's row sums."""
    rng = np.random.default_rng(seed)
    C = np.zeros((n, n))
    for i in range(n):
        for d in (1, 3):
            C[i, (i + d) % n] = C[(i + d) % n, i] = rng.uniform(0.5, 2.0)
    return row_standardise(sp.csr_matrix(C))


def brute_force(idata, W: np.ndarray, keep_draws: np.ndarray):
    """Dense S_g for x (with its Durbin lag) and the shocks: diag, column sums, per draw."""
    n = W.shape[0]
    B0, B1, betas, _ = coefficient_matrices(idata.posterior["coef"].isel(draw=keep_draws))
    out = {}
    for s in range(B0.shape[0]):
        A = np.eye(2 * n) - np.kron(B0[s], np.eye(n)) - np.kron(B1[s], W)
        Ai = np.linalg.inv(A)
        block = lambda g, h: Ai[g * n:(g + 1) * n, h * n:(h + 1) * n]  # noqa: E731
        for g, dep in enumerate(DEPS):
            Sx = sum(block(g, h) @ (betas[(d, "x")][0][s] * np.eye(n)
                                    + (0 if betas[(d, "x")][1] is None
                                       else betas[(d, "x")][1][s]) * W)
                     for h, d in enumerate(DEPS))
            Sz = block(g, 1) * betas[("B", "z")][0][s]
            for name, M in (("x", Sx), ("z", Sz), ("A", block(g, 0)), ("B", block(g, 1))):
                out[(s, dep, name)] = (np.diag(M), M.sum(axis=0))
    return out


@pytest.mark.parametrize("kind", ["queen lattice", "weighted symmetric"])
def test_matches_dense_brute_force(kind):
    if kind == "queen lattice":
        W = lattice_weights(4, "queen").matrix
    else:
        W = weighted_symmetric(14, seed=3)
    idata = posterior()
    eff = city_effects(idata, W, max_draws=6)["city_effect"]
    keep = np.arange(0, 5, 2)  # 2 chains × 5 draws thinned to ≤ 6: every second draw
    assert eff.sizes["sample"] == 2 * keep.size
    ref = brute_force(idata, W.toarray(), keep)
    samples = [0, 1, keep.size]  # chain 0 draws 0 and 2, chain 1 draw 0 (chain-major stacking)
    for s in samples:
        for dep in DEPS:
            for name in ("x", "z", "A", "B"):
                direct, total = ref[(s, dep, name)]
                at = eff.isel(sample=s).sel(response=dep, variable=name)
                np.testing.assert_allclose(at.sel(effect="direct"), direct, atol=1e-10)
                np.testing.assert_allclose(at.sel(effect="total"), total, atol=1e-10)
                np.testing.assert_allclose(at.sel(effect="indirect"), total - direct, atol=1e-10)
    assert list(eff["variable_kind"].values) == ["exogenous", "exogenous", "shock", "shock"]


def test_city_means_are_the_summary_impacts():
    w = lattice_weights(5)
    idata = posterior(seed=2)
    eff = city_effects(idata, w, max_draws=100)
    assert list(eff["city"].values) == list(w.cities)
    B0, B1, betas, deps = coefficient_matrices(idata.posterior["coef"])
    summary = impacts(B0, B1, betas, eigenvalues(w), dependents=deps)["impact"]
    means = eff["city_effect"].mean("city")
    np.testing.assert_allclose(means.transpose("sample", "effect", "response", "variable").values,
                               summary.sel(variable=list(means["variable"].values)).values,
                               atol=1e-10)
    summ = city_effect_summary(eff)
    np.testing.assert_allclose(summ["sd"].values, eff["city_effect"].std("sample", ddof=1).values)


def test_symmetrising_scale_and_refusals():
    W = weighted_symmetric(10, seed=5)
    d = symmetrising_scale(W)
    DW = (sp.diags(d) @ W).toarray()
    np.testing.assert_allclose(DW, DW.T, atol=1e-12)
    # k-nearest neighbours: an asymmetric relation, complex eigenvectors
    xy = np.random.default_rng(0).uniform(size=(12, 2))
    dist = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    C = np.zeros((12, 12))
    C[np.repeat(np.arange(12), 2), np.argsort(dist, axis=1)[:, :2].ravel()] = 1.0
    knn = row_standardise(sp.csr_matrix(C))
    with pytest.raises(InputError, match="symmetric neighbour relation"):
        city_effects(posterior(), knn)


def test_refuses_inadmissible_draws_and_large_maps(monkeypatch):
    idata = posterior()
    idata.posterior["coef"].loc[dict(equation="A", term="W(A)")] = 1.2  # ρ > 1: explosive
    with pytest.raises(InputError, match="outside the admissible region"):
        city_effects(idata, lattice_weights(3).matrix)
    import data_prep.spectrum.exact as spectrum

    monkeypatch.setattr(spectrum, "MAX_DENSE_N", 8)
    with pytest.raises(InputError, match="9 cities: .*skipped"):
        city_effects(posterior(), lattice_weights(3).matrix)


def test_spatial_weights_give_city_names():
    w = lattice_weights(3)
    named = SpatialWeights(w.matrix, w.cities, "R", True, "t", "refuse", (), 1)
    eff = city_effects(posterior(), named, max_draws=4)
    assert list(eff["city"].values) == list(w.cities)
