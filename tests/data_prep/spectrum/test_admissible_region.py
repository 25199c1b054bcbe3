"""The admissible region of the spatial system: every real eigenvalue of B0 + B1 λ_k below 1.

On today's rule "every factor det(I − B0 − B1 λ_k) positive" the explosive system B0 = 0,
B1 = 1.5 I (G = 2: two negative eigen-factors multiply to a positive one) was accepted.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr

from data_prep.errors import InputError
from data_prep.spectrum.stability import admissible_mask, inadmissible_intervals, is_admissible


def _rook(rows: int, cols: int) -> sp.csr_matrix:
    """Row-standardised rook contiguity on a rows × cols lattice (real spectrum)."""
    idx = np.arange(rows * cols).reshape(rows, cols)
    a = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    b = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    C = sp.csr_matrix((np.ones(2 * a.size), (np.r_[a, b], np.r_[b, a])), shape=(idx.size,) * 2)
    return sp.csr_matrix(sp.diags(1.0 / np.asarray(C.sum(axis=1)).ravel()) @ C)


def _knn(n: int, k: int, seed: int) -> sp.csr_matrix:
    """Row-standardised k-nearest-neighbour W: a non-symmetric relation, complex spectrum."""
    pts = np.random.default_rng(seed).random((n, 2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=2) + np.eye(n) * 1e9
    idx = np.argsort(d, axis=1)[:, :k]
    return sp.csr_matrix((np.full(n * k, 1.0 / k), (np.repeat(np.arange(n), k), idx.ravel())),
                         shape=(n, n))


W_ROOK = _rook(15, 16)
LAM = np.sort(np.linalg.eigvals(W_ROOK.toarray()).real)


def _model_logjac(B0, B1, lam, rho=None):
    import pytensor
    import pytensor.tensor as pt

    from models.bayes.jacobian import log_jacobian, spectral_basis

    G = B0.shape[0]
    b0, b1, r = pt.dmatrix(), pt.dmatrix(), pt.dvector()
    expr, _ = log_jacobian(b0, b1, spectral_basis(lam, G), G, rho=None if rho is None else r)
    fn = pytensor.function([b0, b1, r], expr, on_unused_input="ignore")
    return float(fn(B0, B1, np.zeros(1) if rho is None else rho))


def _dense(B0, B1, W):
    n, G = W.shape[0], B0.shape[0]
    return np.linalg.slogdet(np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W))


@pytest.mark.parametrize("G", [2, 3])
def test_explosive_system_is_outside_in_model_and_reference(G):
    from models.bayes.jacobian import log_jacobian_numpy

    B0, B1 = np.zeros((G, G)), 1.5 * np.eye(G)
    # today's rule: det(I − B1 λ) = (1 − 1.5λ)^G; for G = 2 it is ≥ 0 at every λ_k of the map
    assert not is_admissible(B0, B1, LAM)
    assert log_jacobian_numpy(B0, B1, LAM) == -np.inf
    assert _model_logjac(B0, B1, LAM) == -np.inf


def test_stable_systems_match_dense_slogdet_including_complex_eigenvalues_of_M():
    W = _rook(5, 6).toarray()
    lam = np.linalg.eigvals(W).real
    # a rotation-like B0 gives M_k complex eigenvalues; a large positive feedback with a
    # negative cross effect too; the last has a real eigenvalue above 1 in a complex-free
    # way only beyond the spectrum
    cases = [(np.array([[0.0, -0.9], [0.9, 0.0]]), np.array([[0.3, 0.2], [-0.2, 0.3]])),
             (np.array([[0.0, 0.4], [-0.3, 0.0]]), np.array([[0.3, 0.2], [-0.15, 0.25]])),
             (np.array([[0.0, 0.5, -0.8], [0.3, 0.0, 0.6], [0.9, -0.4, 0.0]]),
              np.array([[0.2, 0.1, 0.0], [0.0, 0.3, -0.2], [0.1, 0.0, 0.25]]))]
    from models.bayes.jacobian import log_jacobian_numpy

    for B0, B1 in cases:
        M = B0[None] + B1[None] * lam[:, None, None]
        assert np.iscomplex(np.linalg.eigvals(M)).any()
        sign, ref = _dense(B0, B1, W)
        assert sign > 0 and is_admissible(B0, B1, lam)
        assert log_jacobian_numpy(B0, B1, lam) == pytest.approx(ref, abs=1e-9)
        assert _model_logjac(B0, B1, lam) == pytest.approx(ref, abs=1e-9)


@pytest.mark.parametrize("G", [1, 2, 3])
def test_model_region_agrees_with_numpy_reference_on_random_systems(G):
    from models.bayes.jacobian import log_jacobian_numpy

    lam = np.linalg.eigvals(_rook(4, 5).toarray()).real
    rng = np.random.default_rng(7 + G)
    outside = 0
    for _ in range(60):
        sd = rng.choice([0.4, 1.0, 1.6])
        B0 = rng.normal(0, sd, (G, G)) * (1 - np.eye(G))
        B1 = rng.normal(0, sd, (G, G))
        ref, model = log_jacobian_numpy(B0, B1, lam), _model_logjac(B0, B1, lam)
        assert np.isfinite(ref) == np.isfinite(model)
        outside += not np.isfinite(ref)
        if np.isfinite(ref):
            assert model == pytest.approx(ref, abs=1e-8)
    assert 5 < outside < 55


def test_complex_spectrum_rule_agrees_with_reference():
    from models.bayes.jacobian import clean_spectrum, log_jacobian_numpy

    lam = clean_spectrum(np.linalg.eigvals(_knn(30, 3, 1).toarray()))
    assert np.iscomplexobj(lam)
    rng = np.random.default_rng(3)
    for G in (1, 2):
        for _ in range(40):
            B0 = rng.normal(0, 0.8, (G, G)) * (1 - np.eye(G))
            B1 = rng.normal(0, 0.8, (G, G))
            ref, model = log_jacobian_numpy(B0, B1, lam), _model_logjac(B0, B1, lam)
            assert np.isfinite(ref) == np.isfinite(model)
            if np.isfinite(ref):
                assert model == pytest.approx(ref, abs=1e-8)
    with pytest.raises(InputError, match="3 equations and a complex spectrum"):
        _model_logjac(np.zeros((3, 3)), np.zeros((3, 3)), lam)


def test_impacts_refuse_the_explosive_system():
    from models.bayes.effects import impacts

    B0, B1 = np.zeros((2, 2)), 1.5 * np.eye(2)
    with pytest.raises(ValueError, match="outside the admissible region"):
        impacts(B0, B1, {(0, "x"): np.ones(1)}, LAM)
    B0, B1 = np.zeros((3, 3)), 1.5 * np.eye(3)
    with pytest.raises(ValueError, match="outside the admissible region"):
        impacts(B0, B1, {(0, "x"): np.ones(1)}, LAM)


def test_city_effects_refuse_the_explosive_system():
    import arviz as az

    from models.bayes.city_effects import city_effects

    W = _rook(4, 5)
    coef = np.zeros((1, 2, 2, 3))
    coef[..., 0, 0] = coef[..., 1, 1] = 1.5       # own lags W(y1), W(y2)
    coef[..., :, 2] = 1.0                          # x
    post = xr.Dataset({"coef": (("chain", "draw", "equation", "term"), coef)},
                      coords={"equation": ["y1", "y2"], "term": ["W(y1)", "W(y2)", "x"]})
    with pytest.raises(InputError, match="outside the admissible region"):
        city_effects(az.InferenceData(posterior=post), W)


def test_gs3sls_impacts_refuse_the_explosive_estimate():
    import pandas as pd

    from models.study.figures import frequentist_effects

    index = pd.MultiIndex.from_tuples([("y1", "W(y1)"), ("y1", "x"), ("y2", "W(y2)"),
                                       ("y2", "x")], names=["equation", "term"])

    class Fit:
        params = pd.Series([1.5, 1.0, 1.5, 1.0], index=index)
        cov = pd.DataFrame(np.eye(4) * 1e-6, index=index, columns=index)

    with pytest.raises(InputError, match="outside the admissible region"):
        frequentist_effects(Fit(), LAM, draws=5)


# ------------------------------------------------------------------ frequentist warning

def test_stability_warning_fires_on_the_explosive_system_with_and_without_spectrum():
    from models.frequentist.diagnostics import stability_warning

    B0, B1 = np.zeros((2, 2)), np.diag([1.5, 1.5])
    assert stability_warning(B0, B1, W_ROOK, eigenvalues=LAM) is not None
    msg = stability_warning(B0, B1, W_ROOK)
    assert msg is not None and "lambda in [0.67, 1.00]" in msg


def test_stability_warning_accepts_an_admissible_rho_below_minus_one():
    from models.frequentist.diagnostics import stability_warning

    from data_prep.synthetic.simulate import lattice_weights

    W = lattice_weights(8, "queen").matrix      # not bipartite: λ_min ≈ −0.6
    lam = np.linalg.eigvals(W.toarray()).real
    lo = lam.min()
    rho = 0.9 / lo             # admissible (1/λ_min < ρ < 1/λ_max) and below −1
    assert rho < -1
    B0, B1 = np.zeros((1, 1)), np.array([[rho]])
    assert stability_warning(B0, B1, W, eigenvalues=lam) is None
    assert stability_warning(B0, B1, W) is None
    assert stability_warning(B0, np.array([[1.1 / lo]]), W) is not None


def test_stability_warning_without_lags_checks_I_minus_B0():
    from models.frequentist.diagnostics import stability_warning

    B0 = np.array([[0.0, 2.0], [1.0, 0.0]])   # det(I − B0) = −1
    assert stability_warning(B0, np.zeros((2, 2)), None) is not None
    assert stability_warning(B0 * 0.5, np.zeros((2, 2)), None) is None


def test_stability_warning_works_for_a_binary_w():
    from models.frequentist.diagnostics import stability_warning

    binary = (W_ROOK > 0).astype(float)        # λ_max ≈ 3.9: ρ = 0.3 is explosive
    assert stability_warning(np.zeros((1, 1)), np.array([[0.3]]), binary) is not None
    assert stability_warning(np.zeros((1, 1)), np.array([[0.2]]), binary) is None


def test_interval_rule_finds_a_complex_pair_turning_real_above_one():
    # M(λ) = [[1.2, λ − 0.5], [0.5, 1.2]]: a complex pair for λ < 0.5, two real eigenvalues
    # above 1 on [0.5, 0.58) although det(I − M) > 0 there, one through 1 at λ = 0.58
    B0, B1 = np.array([[1.2, -0.5], [0.5, 1.2]]), np.array([[0.0, 1.0], [0.0, 0.0]])
    bad = inadmissible_intervals(B0, B1, -1.0, 1.0)
    assert len(bad) == 1 and bad[0] == pytest.approx((0.5, 1.0), abs=1e-9)
    assert admissible_mask(B0, B1, [0.4, 0.55]).tolist() == [True, False]


def test_gm_bounds_come_from_the_spectrum():
    from models.frequentist.gm import spectral_bounds

    assert spectral_bounds(-1.0, 1.0) == pytest.approx((-0.99, 0.99))
    assert spectral_bounds(-0.5, 1.0) == pytest.approx((-1.98, 0.99))
