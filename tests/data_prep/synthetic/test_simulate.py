"""The structural simulator draws exactly from the system it claims to (docs/method.md §2)."""

import numpy as np
import pytest
import scipy.sparse as sp

from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, default_truth, lattice_weights, simulate_system


def structural_residuals(sim):
    """u_g = y_g − Σ B1 W y_h − Σ B0 y_h − X_g β_g, written out term by term."""
    d, W = sim.data, sim.W
    out = {}
    for dep, terms in sim.truth.coefficients.items():
        fit = np.zeros(len(d))
        for term, value in terms.items():
            if term == "Intercept":
                fit += value
            elif term.startswith("W("):
                fit += value * (W @ d[term[2:-1]].to_numpy())
            else:
                fit += value * d[term].to_numpy()
        out[dep] = d[dep].to_numpy() - fit
    return out


def test_lattice_degrees_and_row_standardisation():
    rook, queen = lattice_weights(4, "rook"), lattice_weights(4, "queen")
    C = (rook.matrix > 0).astype(int)
    assert (C != C.T).nnz == 0
    degrees = np.asarray(C.sum(axis=1)).ravel().reshape(4, 4)
    assert degrees[0, 0] == 2 and degrees[0, 1] == 3 and degrees[1, 1] == 4
    assert np.asarray((queen.matrix > 0).sum(axis=1)).ravel().reshape(4, 4)[1, 1] == 8
    np.testing.assert_allclose(np.asarray(queen.matrix.sum(axis=1)).ravel(), 1.0)
    assert rook.matrix.diagonal().max() == 0


def test_simulated_errors_have_the_true_covariance():
    sim = simulate_system(lattice_weights(50), seed=3)
    u = structural_residuals(sim)
    S = np.cov(np.column_stack([u["ER"], u["PSS"]]).T)
    # n = 2,500: the sample covariance is within a few Monte Carlo s.e. (~0.03) of Σ
    np.testing.assert_allclose(S, sim.truth.Sigma, atol=0.1)
    assert sim.formulas[0].startswith("ER ~ W(ER) + W(PSS) + PSS")


def test_spatial_errors_are_filtered():
    truth = default_truth()
    truth = SystemTruth(truth.coefficients, truth.Sigma, rho={"ER": 0.5})
    sim = simulate_system(lattice_weights(40), truth, seed=1)
    u = structural_residuals(sim)
    W = sim.W
    eps = u["ER"] - 0.5 * (W @ u["ER"])
    # the filtered error is white with variance Σ11 = 1; the unfiltered one is inflated
    assert abs(eps.var() - 1.0) < 0.12
    assert u["ER"].var() > 1.1
    lag_corr = np.corrcoef(eps, W @ eps)[0, 1]
    assert abs(lag_corr) < 0.1


def test_seed_reproducible_and_sparse_input():
    W = lattice_weights(6).matrix
    a = simulate_system(sp.csr_matrix(W), seed=7).data
    b = simulate_system(sp.csr_matrix(W), seed=7).data
    c = simulate_system(sp.csr_matrix(W), seed=8).data
    assert a.equals(b) and not a.equals(c)


def test_bad_sigma_is_reported():
    truth = default_truth()
    with pytest.raises(InputError, match="Sigma has shape"):
        simulate_system(lattice_weights(4), SystemTruth(truth.coefficients, np.eye(3)))


def test_given_exogenous_data_replace_the_draws():
    import pandas as pd

    lattice = lattice_weights(5)
    rng = np.random.default_rng(0)
    given = pd.DataFrame({name: rng.uniform(0, 1, 25) for name in ("x1", "x2", "z1", "z2")})
    sim = simulate_system(lattice, seed=2, exogenous=given)
    for name in given:
        np.testing.assert_array_equal(sim.data[name], given[name])
    # with X given, the paper's stream goes to the errors alone: other X, same errors
    other = simulate_system(lattice, seed=2, exogenous=given * 3.0 + 1.0)
    u, v = structural_residuals(sim), structural_residuals(other)
    np.testing.assert_allclose(u["ER"], v["ER"], atol=1e-10)
    np.testing.assert_allclose(u["PSS"], v["PSS"], atol=1e-10)
    with pytest.raises(InputError, match="lack column"):
        simulate_system(lattice, seed=2, exogenous=given.drop(columns="z2"))
    with pytest.raises(InputError, match="rows"):
        simulate_system(lattice, seed=2, exogenous=given.iloc[:5])


def test_student_t_errors_and_gross_outliers():
    """errors="student-t": ε_r = z_r/√w_r, so the scaled quadratic form ε'Σ⁻¹ε/G is F(G, ν)
    distributed; outlier_share scales that share of the cities' errors by 10."""
    from scipy import stats

    from data_prep.synthetic.simulate import OUTLIER_FACTOR

    w = lattice_weights(40)
    truth = default_truth()
    Sinv = np.linalg.inv(truth.Sigma)

    def quad(sim):
        u = structural_residuals(sim)
        E = np.column_stack([u[d] for d in truth.dependents])
        return np.einsum("ng,gh,nh->n", E, Sinv, E) / 2

    q = quad(simulate_system(w, seed=4, errors="student-t", nu=3.0))
    assert stats.kstest(q, stats.f(2, 3).cdf).pvalue > 0.01
    assert stats.kstest(quad(simulate_system(w, seed=4)), stats.f(2, 3).cdf).pvalue < 1e-6
    plain = quad(simulate_system(w, seed=4))
    spoiled = quad(simulate_system(w, seed=4, outlier_share=0.01))
    ratio = spoiled / plain
    assert np.sum(np.isclose(ratio, OUTLIER_FACTOR ** 2)) == 16
    assert np.sum(np.isclose(ratio, 1.0)) == 1600 - 16
    with pytest.raises(InputError, match="errors must be one of"):
        simulate_system(w, errors="cauchy")
