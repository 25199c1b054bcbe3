"""Spectrum of W against numpy's dense eigenvalues, and its Dataset storage and check."""

import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr

from data_prep.errors import InputError
from data_prep.synthetic.simulate import lattice_weights
from data_prep.spectrum.exact import eigenvalues, spectrum_method
from data_prep.spectrum.stored import spectrum_from_dataset, spectrum_to_dataset
from data_prep.weights import (SpatialWeights, weights_from_coordinates, weights_to_dataset)


def sort_c(z):
    z = np.asarray(z, dtype=complex)
    return z[np.lexsort((np.round(z.imag, 8), np.round(z.real, 8)))]


@pytest.mark.parametrize("contiguity", ["rook", "queen"])
def test_symmetric_route_matches_dense_numpy(contiguity):
    w = lattice_weights(6, contiguity)
    eigs = eigenvalues(w)
    assert eigs.dtype == float and spectrum_method(w) == "symmetric"
    ref = np.sort(np.linalg.eigvals(w.matrix.toarray()).real)
    np.testing.assert_allclose(np.sort(eigs), ref, atol=1e-10)
    assert eigs.max() == pytest.approx(1.0)


def test_weighted_symmetric_relation_takes_the_symmetric_route():
    rng = np.random.default_rng(5)
    A = sp.random(25, 25, density=0.2, random_state=7)
    C = A + A.T
    C.setdiag(0)
    C = sp.csr_matrix(C)
    C.eliminate_zeros()
    C.data = rng.uniform(0.5, 3.0, C.nnz)
    C = sp.csr_matrix((C + C.T) / 2)  # symmetric values
    sums = np.asarray(C.sum(axis=1)).ravel()
    W = sp.csr_matrix(sp.diags(np.where(sums > 0, 1 / np.where(sums > 0, sums, 1), 0)) @ C)
    w = SpatialWeights(W, tuple(f"c{i}" for i in range(25)), "R", True, "t", "keep", (), 1)
    assert spectrum_method(w) == "symmetric"
    np.testing.assert_allclose(np.sort(eigenvalues(w)),
                               np.sort(np.linalg.eigvals(W.toarray()).real), atol=1e-10)


def test_general_route_for_knn_matches_dense_numpy():
    xy = np.random.default_rng(2).random((40, 2))
    w = weights_from_coordinates(xy, [f"p{i}" for i in range(40)], k=3)
    assert not w.symmetric_relation and spectrum_method(w) == "general"
    eigs = eigenvalues(w)
    assert np.iscomplexobj(eigs)
    np.testing.assert_allclose(sort_c(eigs), sort_c(np.linalg.eigvals(w.matrix.toarray())),
                               atol=1e-9)


def test_symmetric_pattern_with_asymmetric_values_falls_back_to_general():
    # 3-cycle with weights making the Kolmogorov cycle condition fail
    W = sp.csr_matrix(np.array([[0, 0.9, 0.1], [0.2, 0, 0.8], [0.7, 0.3, 0]]))
    w = SpatialWeights(W, ("a", "b", "c"), "R", True, "t", "refuse", (), 1)
    assert spectrum_method(w) == "general"
    np.testing.assert_allclose(sort_c(eigenvalues(w)), sort_c(np.linalg.eigvals(W.toarray())),
                               atol=1e-12)


def test_islands_give_zero_eigenvalues():
    side = 4
    base = lattice_weights(side, "rook").matrix
    W = sp.block_diag([base, sp.csr_matrix((2, 2))], format="csr")
    w = SpatialWeights(W, tuple(f"c{i}" for i in range(side * side + 2)), "R", True, "t",
                       "keep", ("c16", "c17"), 3)
    eigs = np.sort(eigenvalues(w))
    ref = np.sort(np.concatenate([np.linalg.eigvals(base.toarray()).real, [0.0, 0.0]]))
    np.testing.assert_allclose(eigs, ref, atol=1e-10)


def test_size_limit_points_to_quadrature():
    with pytest.raises(InputError, match="quadrature"):
        eigenvalues(lattice_weights(5), max_n=10)


def test_dataset_round_trip_and_consistency_check():
    w = lattice_weights(5, "queen")
    ds = weights_to_dataset(xr.Dataset(coords={"city": list(w.cities)}), w)
    eigs = eigenvalues(w)
    ds = spectrum_to_dataset(ds, eigs, "symmetric")
    assert ds.attrs["spectrum_method"] == "symmetric" and "W_eigenvalues_imag" not in ds
    np.testing.assert_array_equal(spectrum_from_dataset(ds), eigs)
    tampered = ds.copy()
    tampered["W_eigenvalues"] = ds["W_eigenvalues"] * 1.1
    with pytest.raises(InputError, match="does not match W"):
        spectrum_from_dataset(tampered)


def test_complex_spectrum_round_trip():
    xy = np.random.default_rng(4).random((20, 2))
    w = weights_from_coordinates(xy, [f"p{i}" for i in range(20)], k=2)
    ds = weights_to_dataset(xr.Dataset(coords={"city": list(w.cities)}), w)
    eigs = eigenvalues(w)
    ds = spectrum_to_dataset(ds, eigs)
    assert ds.attrs["spectrum_method"] == "general" and "W_eigenvalues_imag" in ds
    np.testing.assert_allclose(spectrum_from_dataset(ds), eigs)
    with pytest.raises(InputError, match="19 eigenvalues for 20 cities"):
        spectrum_to_dataset(ds, eigs[:-1])


def test_symmetriser_is_public_and_gives_the_row_sums():
    """For W = C / C1 with a symmetric relation C, d ∝ C1 and D^½ W D^-½ is symmetric."""
    import scipy.sparse as sp

    from data_prep.synthetic.simulate import lattice_weights
    from data_prep.spectrum.exact import symmetriser

    w = lattice_weights(5, "queen")
    W = sp.csr_matrix(w.matrix)
    d = symmetriser(W)
    counts = np.diff(W.indptr).astype(float)
    np.testing.assert_allclose(d, counts / counts.max(), rtol=1e-12)
    S = np.sqrt(d)[:, None] * W.toarray() / np.sqrt(d)[None, :]
    np.testing.assert_allclose(S, S.T, atol=1e-12)
    W[0, 1] = 0.0
    W.eliminate_zeros()
    assert symmetriser(W) is None          # a link without its reverse: no such d
