"""Spectrum without a dense eigendecomposition (data_prep.spectrum.quadrature) against dense algebra.

References: numpy/scipy dense eigenvalues and slogdet; Gauss rules known in closed form. The
relative log-det bounds below are measured figures with slack (stated at each test).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as la
import scipy.sparse as sp

from data_prep.errors import InputError
from data_prep.spectrum.quadrature import (_exact_moments, chebyshev_quadrature, gauss_from_chebyshev_moments, lanczos_quadrature)
from data_prep.spectrum.extremes import extreme_eigenvalues, symmetric_form
from data_prep.spectrum.chooser import spectrum
from data_prep.synthetic.simulate import lattice_weights
from data_prep.spectrum.exact import check_spectrum, eigenvalues
from data_prep.weights import weights_from_coordinates
from models.bayes.jacobian import log_jacobian_numpy

B0 = np.array([[0.0, 0.4], [-0.3, 0.0]])
B1 = np.array([[0.3, 0.2], [-0.15, 0.25]])


def _knn(n: int, k: int = 6, seed: int = 3, symmetrise=None):
    xy = np.random.default_rng(seed).random((n, 2))
    return weights_from_coordinates(xy, [f"c{i}" for i in range(n)], k=k, symmetrise=symmetrise)


def _rho_grid(lam: np.ndarray, points: int = 41) -> np.ndarray:
    """The benchmark's grid: 0.99/λ_min .. 0.99/λ_max without |ρ| < 0.05."""
    rho = np.linspace(0.99 / lam.min(), 0.99 / lam.max(), points)
    return rho[np.abs(rho) >= 0.05]


def _max_rel_logdet_error(nodes, weights, lam) -> float:
    errs = []
    for r in _rho_grid(lam):
        exact = np.sum(np.log1p(-r * lam))
        errs.append(abs(np.sum(weights * np.log1p(-r * nodes)) - exact) / abs(exact))
    return max(errs)


def _dense_sym_eigs(W) -> np.ndarray:
    return np.sort(np.linalg.eigvals(W.toarray()).real)


# ----------------------------------------------------------------- building blocks

@pytest.mark.parametrize("case", ["rook", "queen", "knn_union", "binary", "binary_even"])
def test_extreme_eigenvalues_match_dense(case):
    if case in ("rook", "queen"):
        W = lattice_weights(15, case).matrix           # rook: bipartite, closed form both ends
    elif case == "knn_union":
        W = _knn(300, symmetrise="union").matrix        # lower end from eigsh
    elif case == "binary":
        W = sp.csr_matrix((lattice_weights(15, "queen").matrix != 0).astype(float))  # eigsh both
    else:
        # binary rook lattice of even side: its bottom eigenvector is orthogonal to the constant
        # vector, a start that would miss it; closed form 2cos(πa/17) + 2cos(πb/17)
        W = sp.csr_matrix((lattice_weights(16, "rook").matrix != 0).astype(float))
        c = 2 * np.cos(np.pi * np.arange(1, 17) / 17)
        closed = np.sort((c[:, None] + c[None, :]).ravel())
        np.testing.assert_allclose(_dense_sym_eigs(W), closed, atol=1e-10)
    lam = _dense_sym_eigs(W)
    lo, hi = extreme_eigenvalues(W)
    assert lo == pytest.approx(lam[0], abs=1e-7)
    assert hi == pytest.approx(lam[-1], abs=1e-7)


def test_exact_chebyshev_moments_match_dense():
    """tr T_j(S̃) from sparse T_k products equals Σ T_j(λ̃) of the dense spectrum."""
    W = _knn(200, symmetrise="union").matrix
    S, _ = symmetric_form(W)
    lam = _dense_sym_eigs(W)
    c, h = 0.5 * (lam[-1] + lam[0]), 0.5 * (lam[-1] - lam[0])
    St = sp.csr_matrix((S - c * sp.identity(200)) / h)
    mu = _exact_moments(St, 24, 10**9)
    x = np.clip((lam - c) / h, -1, 1)
    ref = np.cos(np.arange(25)[:, None] * np.arccos(x)[None, :]).sum(axis=1)
    assert mu.size == 25
    np.testing.assert_allclose(mu, ref, atol=1e-9 * 200)
    assert _exact_moments(St, 24, 1).size == 3  # the fill-in budget stops at order 2
    # in blocks of columns (20 first, then about 40,000 / fill-in): the same sums
    np.testing.assert_allclose(_exact_moments(St, 24, 10**9, chunk_entries=40_000), mu,
                               rtol=1e-12, atol=1e-9)


def test_gauss_rule_from_moments_recovers_known_rules():
    """Chebyshev measure → Gauss–Chebyshev nodes; a 5-point discrete measure → its points."""
    N = 8
    mu = np.r_[np.pi, np.zeros(2 * N - 1)]  # ∫ T_j (1 − x²)^{-1/2} dx
    x, w = gauss_from_chebyshev_moments(mu)
    np.testing.assert_allclose(np.sort(x), np.sort(np.cos((2 * np.arange(1, N + 1) - 1)
                                                         * np.pi / (2 * N))), atol=1e-12)
    np.testing.assert_allclose(w, np.pi / N, atol=1e-12)
    pts, mass = np.array([-0.9, -0.2, 0.1, 0.5, 0.95]), np.array([1.0, 2.0, 0.5, 3.0, 1.5])
    mu = (mass * np.cos(np.arange(10)[:, None] * np.arccos(pts)[None, :])).sum(axis=1)
    x, w = gauss_from_chebyshev_moments(mu)
    np.testing.assert_allclose(x, pts, atol=1e-9)
    np.testing.assert_allclose(w, mass, atol=1e-9)


# ----------------------------------------------------------------- accuracy vs exact

@pytest.mark.parametrize("case", ["rook", "knn_union"])
def test_chebyshev_logdet_matches_exact(case):
    """Measured (n = 900, seed 0): max relative error 9.6e-7 (rook), 1.3e-5 (6-NN union) over
    the 41-point grid; asserted ≤ 1e-4. Also the G = 2 factor, ≤ 1e-4 relative."""
    W = (lattice_weights(30, "rook") if case == "rook" else _knn(900, symmetrise="union")).matrix
    lam = eigenvalues(W)
    details = {}
    nodes, weights = chebyshev_quadrature(W, seed=0, details=details)
    assert weights.sum() == pytest.approx(900, rel=1e-12) and np.all(weights > 0)
    assert nodes.min() == pytest.approx(lam.min(), abs=1e-8)   # the region's ends are nodes
    assert nodes.max() == pytest.approx(lam.max(), abs=1e-8)
    check_spectrum(nodes, W, weights=weights, tol=1e-9)        # n, tr W, tr W² reproduced
    assert _max_rel_logdet_error(nodes, weights, lam) <= 1e-4
    for s in (1.0, 1.5, 2.0):  # towards the boundary of the G = 2 region
        exact = log_jacobian_numpy(B0, B1 * s, lam)
        approx = log_jacobian_numpy(B0, B1 * s, nodes, weights=weights)
        assert np.isfinite(exact) and abs(approx - exact) <= 1e-4 * abs(exact)
    assert details["exact_order"] == 40 and details["deflated"] == 2


def test_lanczos_logdet_matches_exact():
    """Lanczos (40 steps, 100 probes) with its weights matched to the exact Chebyshev moments up
    to order 40: measured max relative error 1.4e-6 (rook, n = 900), asserted ≤ 1e-4. Without
    the matching it was 1.1e-2 (probe noise). Extremes are nodes; n, tr W, tr W² reproduced."""
    W = lattice_weights(30, "rook").matrix
    lam = eigenvalues(W)
    details = {}
    nodes, weights = lanczos_quadrature(W, steps=40, probes=100, seed=0, details=details)
    assert details["matched_order"] == 40 and np.all(weights >= 0)
    assert nodes.min() == pytest.approx(-1.0, abs=1e-10) and nodes.max() == pytest.approx(1.0)
    check_spectrum(nodes, W, weights=weights, tol=1e-9)
    assert _max_rel_logdet_error(nodes, weights, lam) <= 1e-4
    assert log_jacobian_numpy(B0, B1 * 2, nodes, weights=weights) == \
        pytest.approx(log_jacobian_numpy(B0, B1 * 2, lam), rel=1e-4)


def test_quadrature_is_reproducible_and_seeded():
    W = lattice_weights(12, "queen").matrix
    a, b = spectrum(W, threshold=0, seed=5), spectrum(W, threshold=0, seed=5)
    np.testing.assert_array_equal(a.nodes, b.nodes)
    np.testing.assert_array_equal(a.weights, b.weights)
    c = spectrum(W, threshold=0, seed=6)
    assert not np.array_equal(a.weights, c.weights)


def test_impacts_with_quadrature_match_exact():
    """n⁻¹ tr(𝒜⁻¹) blocks (T0, T1: direct effects) from quadrature nodes vs eigenvalues.
    Measured max relative difference about 1e-6 (rook 30 × 30); asserted ≤ 1e-4."""
    from models.bayes.effects import spectral_moments

    W = lattice_weights(30, "rook").matrix
    lam = eigenvalues(W)
    q = spectrum(W, threshold=0, seed=0)
    for s in (1.0, 2.0):
        T0, T1 = spectral_moments(B0, B1 * s, lam)
        Q0, Q1 = spectral_moments(B0, B1 * s, q.nodes, q.normalised_weights)
        np.testing.assert_allclose(Q0, T0, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(Q1, T1, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------- the chooser

def test_chooser_picks_by_threshold_and_records_it():
    W = lattice_weights(10, "rook").matrix
    exact = spectrum(W, threshold=100)
    assert exact.method == "exact" and exact.weights is None
    np.testing.assert_allclose(np.sort(exact.nodes), _dense_sym_eigs(W), atol=1e-10)
    quad = spectrum(W, threshold=99, seed=2)
    assert quad.method == "chebyshev" and quad.weights.sum() == pytest.approx(100)
    assert quad.details["threshold"] == 99 and quad.details["seed"] == 2
    assert spectrum(W, method="lanczos", probes=5).method == "lanczos"
    with pytest.raises(InputError, match="spectrum method"):
        spectrum(W, method="dense")


def test_nonsymmetric_exact_route_matches_dense_slogdet():
    """A k-NN W (not similar to a symmetric matrix): complex spectrum, log-det of I − ρW and of
    the G = 2 system matrix equal numpy's slogdet of the dense matrices."""
    w = _knn(120, k=4)
    W = w.matrix
    assert not w.symmetric_relation
    result = spectrum(W, threshold=50)  # above the threshold: no quadrature, the exact route
    assert result.method == "exact" and np.iscomplexobj(result.nodes)
    assert "not similar to a symmetric" in result.details["reason"]
    Wd, n = W.toarray(), W.shape[0]
    lam = result.nodes
    for r in (-0.8, 0.3, 0.9):
        sign, ref = np.linalg.slogdet(np.eye(n) - r * Wd)
        assert sign > 0
        assert log_jacobian_numpy(np.zeros((1, 1)), np.array([[r]]), lam) == \
            pytest.approx(ref, rel=1e-10)
    A = np.eye(2 * n) - (np.kron(B0, np.eye(n)) + np.kron(B1, Wd))
    sign, ref = np.linalg.slogdet(A)
    assert sign > 0 and log_jacobian_numpy(B0, B1, lam) == pytest.approx(ref, rel=1e-10)


def test_nonsymmetric_quadrature_refused_in_one_line(monkeypatch):
    W = _knn(120, k=4).matrix
    for method in ("chebyshev", "lanczos"):
        with pytest.raises(InputError, match="symmetrise='union'") as err:
            spectrum(W, method=method)
        assert "\n" not in str(err.value)
    import data_prep.spectrum.exact as dense

    monkeypatch.setattr(dense, "MAX_DENSE_N", 100)  # above the dense limit: refused too
    with pytest.raises(InputError, match="not similar to a symmetric matrix"):
        spectrum(W, threshold=50)


@pytest.mark.filterwarnings("ignore:.*disconnected components")  # this point set: 2 groups
def test_union_symmetrises_knn_and_keeps_its_links():
    plain, union = _knn(150, k=4), _knn(150, k=4, symmetrise="union")
    C, U = plain.matrix != 0, union.matrix != 0
    assert union.symmetric_relation and (U != U.T).nnz == 0
    assert (C > U).nnz == 0  # every k-NN link is kept
    assert "union" in union.source
    q = spectrum(union.matrix, threshold=0)
    assert q.method == "chebyshev"
    with pytest.raises(InputError, match="symmetrise"):
        weights_from_coordinates(np.zeros((3, 2)) + np.arange(3)[:, None], ["a", "b", "c"],
                                 k=1, symmetrise="both")


# ----------------------------------------------------------------- storage

def _prepare_data_script():
    """scripts/prepare_data.py loaded as a module (scripts are not a package)."""
    import importlib

    module = importlib.import_module("models.cli.prepare_data")
    return module


def test_prepared_dataset_stores_the_quadrature(tmp_path, capsys):
    """prepare_data --spectrum-threshold below n: nodes + weights + the choice round-trip."""
    import json

    from data_prep.dataset import load_dataset
    from data_prep.spectrum.stored import (spectrum_from_dataset, spectrum_to_dataset, stored_spectrum)

    module = _prepare_data_script()
    out = tmp_path / "demo.nc"
    assert module.main(["--demo", "--out", str(out), "--spectrum-threshold", "100"]) == 0
    assert "chebyshev quadrature" in capsys.readouterr().out
    ds = load_dataset(out)
    got = stored_spectrum(ds)
    assert got.method == "chebyshev" and got.weights.sum() == pytest.approx(ds.sizes["city"])
    assert got.details["threshold"] == 100 and got.details["method"] == "chebyshev"
    assert json.loads(ds.attrs["spectrum_details"])["seed"] == 0
    from data_prep.weights import weights_from_dataset

    again = spectrum(weights_from_dataset(ds).matrix, threshold=100)
    np.testing.assert_array_equal(again.nodes, got.nodes)
    with pytest.raises(InputError, match="quadrature"):
        spectrum_from_dataset(ds)
    tampered = spectrum_to_dataset(ds, got.nodes, "chebyshev", weights=got.weights * 1.0,
                                   details=got.details)
    tampered["W_eigenvalues"] = tampered["W_eigenvalues"] * 0.9
    with pytest.raises(InputError, match="does not match W"):
        stored_spectrum(tampered)
    with pytest.raises(InputError, match="weights"):
        spectrum_to_dataset(ds, got.nodes, "symmetric", weights=got.weights)


def test_dataset_without_quadrature_for_huge_nonsymmetric_w(monkeypatch):
    """Above the dense limit a non-symmetric W gets no spectrum in the dataset, with a warning
    that says why (the frequentist estimators do not need one)."""
    import xarray as xr

    import data_prep.spectrum.exact as dense
    from data_prep.dataset import _with_spectrum

    w = _knn(120, k=4)
    monkeypatch.setattr(dense, "MAX_DENSE_N", 100)
    with pytest.warns(UserWarning, match="not stored: W is not similar to a symmetric"):
        ds = _with_spectrum(xr.Dataset(), w, 50, "auto")
    assert "W_eigenvalues" not in ds
    with pytest.raises(InputError, match="threshold must be"):
        _with_spectrum(xr.Dataset(), w, -1, "auto")


def test_prepare_data_refuses_symmetrise_with_demo(tmp_path, capsys):
    module = _prepare_data_script()
    out = tmp_path / "x.nc"
    assert module.main(["--demo", "--out", str(out), "--symmetrise", "union"]) == 2
    assert "error: --symmetrise applies to a --weights file" in capsys.readouterr().err
    assert not out.exists()


def test_gal_file_symmetrised_like_coordinates(tmp_path):
    """A k-NN relation written to GAL and read back with symmetrise='union' equals the union
    built from the coordinates; read as given it warns and stays asymmetric."""
    from data_prep.weights import weights_from_gal, write_gal

    plain = _knn(80, k=3, seed=1)
    path = tmp_path / "knn.gal"
    write_gal(plain, path)
    union = weights_from_gal(path, symmetrise="union")
    ref = _knn(80, k=3, seed=1, symmetrise="union")
    order = [union.cities.index(c) for c in ref.cities]
    assert abs(union.matrix[order][:, order] - ref.matrix).max() < 1e-15
    with pytest.warns(UserWarning, match="symmetrise 'union'"):
        assert not weights_from_gal(path).symmetric_relation


def test_clustered_end_falls_back_to_plain_lanczos(monkeypatch):
    """When ARPACK stalls, the extreme pair comes from plain Lanczos steps (with a warning):
    checked against the closed-form end of a binary rook lattice (side 20, n = 400)."""
    import scipy.sparse.linalg as sla

    from data_prep.spectrum.extremes import _eigsh_end

    def stalled(*args, **kwargs):
        raise sla.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(sla, "eigsh", stalled)
    S = sp.csr_matrix((lattice_weights(20, "rook").matrix != 0).astype(float))
    end = 4 * np.cos(np.pi / 21)
    for which, sign in (("LA", 1.0), ("SA", -1.0)):
        with pytest.warns(UserWarning, match="plain Lanczos"):
            value, vector = _eigsh_end(S, 1, which, 1e-8)
        assert value[0] == pytest.approx(sign * end, abs=1e-9)
        assert np.linalg.norm(S @ vector[:, 0] - value[0] * vector[:, 0]) < 1e-4
