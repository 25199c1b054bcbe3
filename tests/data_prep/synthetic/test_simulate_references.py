"""The simulator solves exactly the stated system: 𝒜y − X̃b = u with the errors it drew.

The errors the simulator draws are captured by wrapping its random generator (whatever it calls,
``multivariate_normal`` returns the innovations ε), and the structural equations of the *stated*
truth are then checked to hold to rounding error, with the spatial-error filter
(I − ρW)u = ε. A coefficient off by a few per cent leaves a residual of order 0.01–0.1 per city,
nine orders above the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import data_prep.synthetic.simulate as simulate_module
from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, default_truth, lattice_weights, simulate_system

_DEFAULT_RNG = np.random.default_rng


class _Recorder:
    """Delegates to a numpy Generator and keeps every ``multivariate_normal`` draw."""

    def __init__(self, seed):
        self._rng = _DEFAULT_RNG(seed)
        self.mvn: list[np.ndarray] = []

    def multivariate_normal(self, *args, **kwargs):
        out = self._rng.multivariate_normal(*args, **kwargs)
        self.mvn.append(np.array(out))
        return out

    def __getattr__(self, name):
        return getattr(self._rng, name)


def _simulate_recording(monkeypatch, weights, truth, seed):
    recorders = []

    def factory(s=None):
        rec = _Recorder(s)
        recorders.append(rec)
        return rec

    monkeypatch.setattr(simulate_module.np.random, "default_rng", factory)
    sim = simulate_system(weights, truth, seed=seed)
    monkeypatch.undo()
    (rec,) = recorders
    (eps,) = rec.mvn
    return sim, eps


def _innovations(sim, truth: SystemTruth) -> np.ndarray:
    """ε_g = (I − ρ_g W)(y_g − Σ B1 W y_h − Σ B0 y_h − X_g β_g) from the data and the truth."""
    d, W = sim.data, sim.W.toarray()
    out = []
    for dep, terms in truth.coefficients.items():
        u = d[dep].to_numpy().copy()
        for term, value in terms.items():
            if term == "Intercept":
                u -= value
            elif term.startswith("W("):
                u -= value * (W @ d[term[2:-1]].to_numpy())
            else:
                u -= value * d[term].to_numpy()
        rho = truth.rho.get(dep, 0.0)
        out.append(u - rho * (W @ u))
    return np.column_stack(out)


def _three_equation_truth() -> SystemTruth:
    coefficients = {
        "y1": {"W(y1)": 0.2, "y2": 0.3, "W(y3)": 0.1, "Intercept": 1.0, "x1": 1.0, "z1": 0.7},
        "y2": {"W(y2)": 0.3, "y3": -0.2, "Intercept": -0.5, "x1": 0.5, "W(x1)": 0.4, "z2": 1.0},
        # names sorting before "Intercept" and ending in ")" are plain exogenous variables
        "y3": {"W(y3)": -0.2, "W(y1)": 0.2, "y1": 0.25, "Intercept": 0.2, "x2": -0.7, "z3": 0.9,
               "Gov": 0.3, "log(x3)": -0.4},
    }
    Sigma = np.array([[1.0, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 0.6]])
    return SystemTruth(coefficients, Sigma, rho={"y2": -0.4})


@pytest.mark.parametrize("case", ["default", "spatial_error", "three_equations"])
def test_structural_equations_hold_exactly(monkeypatch, case):
    w = lattice_weights(9, "queen")
    if case == "three_equations":
        truth = _three_equation_truth()
    else:
        truth = default_truth()
        if case == "spatial_error":
            truth.rho["PSS"] = 0.5
    sim, eps = _simulate_recording(monkeypatch, w, truth, seed=4)
    assert eps.shape == (81, len(truth.dependents))
    got = _innovations(sim, truth)
    np.testing.assert_allclose(got, eps, rtol=0, atol=1e-10)
    # sensitivity: the same check with one lag coefficient 5 % off fails by far
    first = truth.dependents[0]
    lag = f"W({first})"
    shifted = SystemTruth({k: dict(v) for k, v in truth.coefficients.items()}, truth.Sigma,
                          dict(truth.rho))
    shifted.coefficients[first][lag] *= 1.05
    assert np.abs(_innovations(sim, shifted) - eps).max() > 1e-3


def test_innovations_have_the_stated_covariance(monkeypatch):
    """The innovations are N(0, Σ): with n = 2,500 the sample covariance is within 0.08 (about
    4 Monte Carlo standard errors, max entry) of Σ."""
    truth = default_truth()
    sim, eps = _simulate_recording(monkeypatch, lattice_weights(50), truth, seed=3)
    np.testing.assert_allclose(np.cov(eps.T), truth.Sigma, atol=0.08)
    np.testing.assert_allclose(eps.mean(axis=0), 0.0, atol=0.08)


def test_reduced_form_mean_and_covariance_monte_carlo():
    """Reduced form y = 𝒜⁻¹(X̃b + u): conditional on X, E y = 𝒜⁻¹X̃b and Cov y = 𝒜⁻¹(Σ⊗I)𝒜⁻ᵀ.
    Over R = 400 seeds on a 4 × 4 lattice (the exogenous draws vary with the seed, so each
    replicate is whitened by its own mean and covariance): the whitened values are N(0, 1), their
    mean within 4 SE and the mean square within 4 SE of 1 (SE² = 2/(R·Gn))."""
    w = lattice_weights(4)
    truth = default_truth()
    W = w.matrix.toarray()
    n, G = W.shape[0], 2
    deps = truth.dependents
    B0 = np.array([[0.0, 0.40], [-0.30, 0.0]])
    B1 = np.array([[0.30, 0.20], [-0.15, 0.25]])
    A = np.eye(G * n) - np.kron(B0, np.eye(n)) - np.kron(B1, W)
    Ai = np.linalg.inv(A)
    L = np.linalg.cholesky(Ai @ np.kron(truth.Sigma, np.eye(n)) @ Ai.T)
    zs = []
    for seed in range(400):
        d = simulate_system(w, truth, seed=seed).data
        xb = []
        for dep in deps:
            v = np.zeros(n)
            for term, value in truth.coefficients[dep].items():
                if term == "Intercept":
                    v += value
                elif term in d and term not in deps:
                    v += value * d[term].to_numpy()
            xb.append(v)
        mu = Ai @ np.concatenate(xb)
        y = np.concatenate([d[dep].to_numpy() for dep in deps])
        zs.append(np.linalg.solve(L, y - mu))
    z = np.concatenate(zs)
    se = np.sqrt(1.0 / z.size)
    assert abs(z.mean()) < 4 * se
    assert abs((z ** 2).mean() - 1.0) < 4 * np.sqrt(2.0) * se


def test_default_truth_is_the_documented_system():
    """The recovery tests and the demo rely on these values (data_prep.synthetic.simulate.default_truth)."""
    truth = default_truth()
    assert truth.coefficients == {
        "ER": {"W(ER)": 0.30, "W(PSS)": 0.20, "PSS": 0.40, "Intercept": 1.0, "x1": 1.0,
               "x2": -0.5, "z1": 0.8},
        "PSS": {"W(PSS)": 0.25, "W(ER)": -0.15, "ER": -0.30, "Intercept": 0.5, "x1": 0.5,
                "x2": 0.7, "z2": 1.0}}
    np.testing.assert_array_equal(truth.Sigma, [[1.0, 0.3], [0.3, 0.8]])
    assert truth.rho == {}


def test_formulas_default_seed_and_singular_system():
    from data_prep.errors import InputError
    from models.spec.system import parse_system

    w = lattice_weights(4)
    truth = SystemTruth({"a": {"b": 0.5, "Intercept": 1.0, "x": 1.0},
                         "b": {"x": 0.5, "q": 1.0}}, np.eye(2))
    sim = simulate_system(w, truth, seed=0)
    assert sim.formulas == ["a ~ b + x", "b ~ x + q - 1"]
    spec = parse_system(sim.formulas)
    assert "Intercept" in spec.equations[0].exogenous
    assert "Intercept" not in spec.equations[1].exogenous
    assert simulate_system(w, truth).data.equals(sim.data)          # default seed is 0
    assert list(sim.cities) == list(w.cities) and len(sim.data) == 16
    singular = SystemTruth({"a": {"b": 1.0, "x": 1.0}, "b": {"a": 1.0, "x": 0.5}}, np.eye(2))
    with pytest.raises(InputError, match="singular"):
        simulate_system(w, singular, seed=0)


def test_formulas_name_every_true_term():
    """Each formula's right-hand side is exactly the truth's terms (the dependents' names sort
    either side of "Intercept": ER < Intercept < PSS)."""
    from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system

    truth = default_truth()
    sim = simulate_system(lattice_weights(4), truth, seed=0)
    for formula, (dep, terms) in zip(sim.formulas, truth.coefficients.items()):
        left, right = formula.split(" ~ ")
        assert left == dep
        assert set(right.split(" + ")) == set(terms) - {"Intercept"}


def test_exogenous_and_sigma_shapes_are_checked():
    import numpy as np
    import pandas as pd
    import pytest

    from data_prep.errors import InputError
    from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system

    w = lattice_weights(17)                       # 289 cities: more than Python's cached ints
    truth = default_truth()
    rng = np.random.default_rng(0)
    bases = ["x1", "x2", "z1", "z2"]
    exog = pd.DataFrame(rng.normal(size=(w.n, 4)), columns=bases)
    sim = simulate_system(w, truth, seed=0, exogenous=exog)
    np.testing.assert_array_equal(sim.data["x1"].to_numpy(), exog["x1"].to_numpy())
    longer = pd.DataFrame(rng.normal(size=(w.n + 1, 4)), columns=bases)
    with pytest.raises(InputError, match="290 rows, the weights 289 cities"):
        simulate_system(w, truth, seed=0, exogenous=longer)
    small = default_truth()
    small.Sigma = np.eye(1)
    with pytest.raises(InputError, match=r"Sigma has shape \(1, 1\), expected \(2, 2\)"):
        simulate_system(w, small, seed=0)


def test_lattice_is_a_symmetric_relation():
    from data_prep.synthetic.simulate import lattice_weights

    side = 4
    for contiguity, degrees in (("rook", (2, 3, 4)), ("queen", (3, 5, 8))):
        w = lattice_weights(side, contiguity)
        pattern = (w.matrix != 0).astype(int)
        assert w.symmetric_relation and (pattern != pattern.T).nnz == 0
        assert w.n_components == 1 and len(w.islands) == 0
        assert len(set(w.cities)) == side * side == w.matrix.shape[0]
        # neighbours of a corner, an edge and an interior cell, and no link across a border
        degree = np.asarray(pattern.sum(axis=1)).ravel().reshape(side, side)
        assert (degree[0, 0], degree[0, 1], degree[1, 1]) == degrees
        rows, cols = pattern.nonzero()
        assert np.all(np.abs(rows // side - cols // side) <= 1)
        assert np.all(np.abs(rows % side - cols % side) <= 1)


def test_names_built_at_run_time_work_like_literals():
    """Names read from a file are new string objects, not the interned literals of the source:
    a truth and a contiguity that come through JSON give the same data and map."""
    import json

    truth = default_truth()
    loaded = json.loads(json.dumps({"coefficients": truth.coefficients, "queen": "queen"}))
    # json shares one object per repeated key; rebuild each name so no two are the same object
    fresh = lambda name: "".join(list(name))  # noqa: E731
    again = SystemTruth({fresh(dep): {fresh(t): v for t, v in terms.items()}
                         for dep, terms in loaded["coefficients"].items()}, truth.Sigma)
    w = lattice_weights(4, loaded["queen"])
    assert (w.matrix != lattice_weights(4, "queen").matrix).nnz == 0
    a = simulate_system(w, truth, seed=3)
    b = simulate_system(w, again, seed=3)
    assert a.formulas == b.formulas
    assert a.data.equals(b.data)
    own = SystemTruth({fresh("yy"): {fresh("yy"): 0.5, "Intercept": 1.0}}, np.eye(1))
    with pytest.raises(InputError, match="equation yy: a dependent cannot be its own regressor"):
        simulate_system(w, own, seed=0)
